/**
 * `protocol: tls-passthrough`: a tcp listener that routes each connection by the server name (SNI)
 * of its ClientHello, read without decrypting, and passes every byte on untouched, so the client's
 * TLS session is with the endpoint and sees the endpoint's own certificate.
 *
 *   accept ─► read until the ClientHello is whole (listener headerTimeout, ~16 KiB at most)
 *                malformed, too slow, too large, client gone ─► closed
 *          ─► upstream: exact sni entry ─► `*.` wildcard one label up ─► `upstream` ─► none: closed
 *          ─► pick / dial / retry / splice as any tcp connection, the bytes read so far sent first
 */
import type { Socket } from 'node:net';
import { parseClientHello } from '../transport/client-hello.ts';
import { readPrefix, type Verdict } from './read-prefix.ts';
import { sniLookup } from './sni-lookup.ts';
import type { Upstream } from '../upstream/upstream.ts';
import type { TcpGeneration } from './tcp-forward.ts';
import type { ConnectionRecord } from '../observability/access-log.ts';

/** A ClientHello read whole, and every byte read for it (to send on first). */
export interface ClientHelloRead {
  /** Lower-case; undefined when the client sent no server name. */
  readonly serverName: string | undefined;
  readonly bytes: Buffer;
}

/** Reads past this many chunks without a whole ClientHello close the connection (each is re-parsed). */
const MAX_READS = 256;

/**
 * Reads `client` until its first bytes are a whole ClientHello, then pauses it (the caller pipes
 * it on). Resolves undefined, the client destroyed, when they cannot be one, when the client ends
 * or closes first, or when `timeout` ms pass first.
 */
export function readClientHello(client: Socket, timeout: number): Promise<ClientHelloRead | undefined> {
  return new Promise((resolve) => {
    let reads = 0;
    let serverName: string | undefined;
    const judge = (seen: Buffer): Verdict => {
      const verdict = parseClientHello(seen);
      if (verdict.kind === 'ok') {
        serverName = verdict.serverName;
        return 'ok';
      }
      return verdict.kind === 'invalid' || ++reads >= MAX_READS ? 'bad' : 'more';
    };
    readPrefix(client, timeout, judge, (bytes) => resolve({ serverName, bytes }));
    client.once('close', () => resolve(undefined));
  });
}

/** The tcp listener's forwarding step: to `upstream`, `head` sent to the endpoint first. */
export type Forward = (rt: TcpGeneration, client: Socket, upstream: Upstream, head: Buffer, record?: ConnectionRecord) => Promise<void>;

/**
 * Routes one accepted connection of a tls-passthrough listener (see the module comment): the
 * ClientHello within `timeout` ms, its upstream by `rt.sni` (else `rt.upstream`), then `forward`.
 */
export async function forwardBySni(rt: TcpGeneration, client: Socket, timeout: number, forward: Forward, record?: ConnectionRecord): Promise<void> {
  const hello = await readClientHello(client, timeout);
  if (hello === undefined) {
    // Not a ClientHello, too slow, or the client left first.
    if (record !== undefined) record.error = 'BAD_REQUEST';
    return;
  }
  const upstream = sniLookup(rt.sni ?? new Map<string, Upstream>(), hello.serverName, rt.upstream);
  if (upstream === undefined) {
    if (record !== undefined) record.error = 'ROUTE_NOT_FOUND';
    return void client.destroy();
  }
  return forward(rt, client, upstream, hello.bytes, record);
}
