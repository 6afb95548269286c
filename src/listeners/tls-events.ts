/** The `tlsHandshake` event (observability/events.ts) as the https and tls listeners publish it. */
import { tlsHandshake, type TlsHandshakeEvent } from '../observability/events.ts';

/** Publishes a TLS handshake's outcome; callers check `tlsHandshake.hasSubscribers` first. */
export function publishHandshake(listener: string, ok: boolean, error?: string): void {
  tlsHandshake.publish({ listener, ok, error } satisfies TlsHandshakeEvent);
}

/** The code of a failed handshake's error (Node's or OpenSSL's), or `UNKNOWN`. */
export function handshakeError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}
