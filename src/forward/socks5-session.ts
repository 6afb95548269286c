/**
 * One SOCKS5 connection (RFC 1928), from greeting to tunnel, under the listener's rules and its
 * destination guard (forward/destination-guard.ts):
 *
 *   greeting ─► method: 0x02 username/password (RFC 1929) when the listener has basic-auth
 *               policies, else 0x00 none; 0xFF and close when the client offers neither
 *   0x02     ─► the credentials checked by those policies (the consumers, htpasswd files)
 *   request  ─► CONNECT: guard.check (the name resolved by the guard, every address checked)
 *                 refused ─► REP 0x02 (0x04 when unresolved), close
 *                 allowed ─► guard.connect (a checked address only) ─► REP 0x00 with BND.ADDR/PORT
 *                            of the outgoing socket ─► bytes piped both ways (transport/tunnel.ts:
 *                            backpressure, half-close, forward.tunnelIdleTimeout)
 *               UDP ASSOCIATE ─► a relay (forward/socks5-udp.ts) until this connection closes
 *               BIND ─► REP 0x07; an unknown address type ─► REP 0x08
 *
 * The greeting, credentials and request must all arrive within the listener's headerTimeout;
 * anything malformed closes the connection (with a reply where RFC 1928 has one). Each connection
 * publishes one `socksConnection` event and writes one access-log line when it closes.
 */
import type { Socket } from 'node:net';
import type { ErrorCode } from '../errors.ts';
import type { ConnectionRecord } from '../observability/access-log.ts';
import { socksConnection, type SocksOutcome } from '../observability/events.ts';
import type { Consumer, CredentialMatch } from '../policies/filter.ts';
import type { PasswordCheck, SocksGeneration } from './socks5-generation.ts';
import { clientAddressOf } from '../transport/connection-info.ts';
import type { Tunnel } from '../transport/tunnel.ts';
import type { Permit } from './destination-guard.ts';
import { HandshakeError, MessageReader } from './message-reader.ts';
import {
  AUTH_VERSION,
  CMD_CONNECT,
  CMD_UDP_ASSOCIATE,
  encodeReply,
  METHOD_NONE,
  METHOD_PASSWORD,
  METHOD_UNACCEPTABLE,
  parseCredentials,
  parseGreeting,
  parseRequest,
  REP,
  SOCKS_VERSION,
} from './socks5.ts';
import { UdpAssociation } from './socks5-udp.ts';

/** Per listener config: what a connection reads of the listener itself. */
export interface SocksSettings {
  /** ms for the whole handshake (the listener's headerTimeout). */
  readonly handshakeTimeout: number;
  /** The host UDP relays bind on (the listener's). */
  readonly udpHost: string;
}

/** A connection's outcome as the metrics and the access log see it. */
interface Ending {
  outcome: SocksOutcome;
  error: ErrorCode | undefined;
  tunnel: Tunnel | undefined;
  udp: UdpAssociation | undefined;
}

const ignore = (): void => undefined;

/**
 * Answers a refusal and ends the connection: the reply (when RFC 1928 has one) and our FIN; what
 * the client still sends is read and dropped, and its FIN, or `linger` ms, closes the socket (a
 * destroy right after the write could reset the connection before the client read the reply).
 */
function refuse(client: Socket, reader: MessageReader, reply: Buffer | undefined, linger: number): void {
  if (reply === undefined) return void client.destroy();
  reader.detach();
  client.on('data', ignore);
  client.once('end', () => client.destroy());
  const timer = setTimeout(() => client.destroy(), linger);
  client.once('close', () => clearTimeout(timer));
  client.end(reply);
  client.resume();
}

/** REP for a connect that failed (RFC 1928 §6). */
function connectReply(err: unknown): { rep: number; error: ErrorCode } {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ECONNREFUSED') return { rep: REP.connectionRefused, error: 'UPSTREAM_CONNECT_REFUSED' };
  if (code === 'ENETUNREACH') return { rep: REP.networkUnreachable, error: 'UPSTREAM_UNREACHABLE' };
  if (code === 'PARENT_PROXY_FAILED') return { rep: REP.generalFailure, error: 'PARENT_PROXY_FAILED' };
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'UPSTREAM_CONNECT_TIMEOUT' || (err as Error | null)?.message === 'connect timeout')
    return { rep: REP.hostUnreachable, error: code === 'EHOSTUNREACH' ? 'UPSTREAM_UNREACHABLE' : 'UPSTREAM_CONNECT_TIMEOUT' };
  return { rep: REP.generalFailure, error: 'UPSTREAM_UNREACHABLE' };
}

async function authenticate(passwords: readonly PasswordCheck[], user: string, password: string): Promise<CredentialMatch | undefined> {
  for (const check of passwords) {
    const match = await check(user, password);
    if (match !== undefined) return match;
  }
  return undefined;
}

/**
 * Serves one accepted connection of `gen` to its end. `record` (when the access log is on) gets the
 * destination, the rule, the consumer and, when no tunnel was made, why. Never rejects.
 */
export async function serveSocks(gen: SocksGeneration, client: Socket, settings: SocksSettings, record: ConnectionRecord | undefined): Promise<void> {
  const ending: Ending = { outcome: 'closed', error: 'CLIENT_CLOSED', tunnel: undefined, udp: undefined };
  client.once('close', () => {
    if (record !== undefined) {
      record.error = ending.error;
      if (ending.tunnel !== undefined) {
        record.bytesIn = ending.tunnel.bytesIn;
        record.bytesOut = ending.tunnel.bytesOut;
      } else if (ending.udp !== undefined) {
        record.bytesIn = ending.udp.bytesIn;
        record.bytesOut = ending.udp.bytesOut;
      }
    }
    if (!socksConnection.hasSubscribers) return;
    const bytes = ending.tunnel ?? ending.udp;
    socksConnection.publish({ listener: gen.name, outcome: ending.outcome, bytesIn: bytes?.bytesIn ?? 0, bytesOut: bytes?.bytesOut ?? 0 });
  });
  const end = (outcome: SocksOutcome, error: ErrorCode | undefined): void => {
    ending.outcome = outcome;
    ending.error = error;
  };
  const reader = new MessageReader(client);
  const linger = settings.handshakeTimeout;
  const timer = setTimeout(() => {
    end('timeout', 'HEADER_TIMEOUT');
    client.destroy();
  }, settings.handshakeTimeout);
  try {
    const methods = await reader.next(parseGreeting);
    const method = gen.passwords.length > 0 ? METHOD_PASSWORD : METHOD_NONE;
    if (!methods.includes(method)) {
      end('auth_missing', 'PROXY_AUTH_REQUIRED');
      return refuse(client, reader, Buffer.from([SOCKS_VERSION, METHOD_UNACCEPTABLE]), linger);
    }
    client.write(Buffer.from([SOCKS_VERSION, method]));
    let consumer: Consumer | undefined;
    if (method === METHOD_PASSWORD) {
      const { user, password } = await reader.next(parseCredentials);
      const match = await authenticate(gen.passwords, user, password);
      if (client.destroyed) return;
      if (match === undefined) {
        end('auth_failed', 'AUTH_INVALID');
        return refuse(client, reader, Buffer.from([AUTH_VERSION, 0x01]), linger);
      }
      consumer = match.consumer;
      if (record !== undefined) record.consumer = consumer.name;
      client.write(Buffer.from([AUTH_VERSION, 0x00]));
    }
    const request = await reader.next(parseRequest);
    clearTimeout(timer);
    if (request.command === CMD_UDP_ASSOCIATE) {
      if (reader.ended) return void client.destroy(); // its FIN would end the association at once
      end('udp', undefined);
      reader.detach();
      ending.udp = await UdpAssociation.open(gen, client, settings.udpHost, request.destination, consumer, record);
      return;
    }
    if (request.command !== CMD_CONNECT) {
      end('unsupported', 'METHOD_NOT_ALLOWED');
      return refuse(client, reader, encodeReply(REP.commandNotSupported), linger);
    }
    const { host, port } = request.destination;
    if (record !== undefined) record.destination = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const decision = await gen.guard.check({
      client: clientAddressOf(client),
      consumer: consumer?.name,
      groups: consumer?.groups ?? [],
      method: 'CONNECT',
      scheme: 'https',
      host,
      port,
    });
    if (record !== undefined) record.rule = decision.rule;
    if (client.destroyed) return;
    if (!decision.allowed) {
      const unresolved = decision.code === 'DESTINATION_UNRESOLVED';
      end(unresolved ? 'unresolved' : 'denied', decision.code);
      return refuse(client, reader, encodeReply(unresolved ? REP.hostUnreachable : REP.notAllowed), linger);
    }
    await tunnel(gen, client, decision, reader, ending, end);
  } catch (err) {
    if (!(err instanceof HandshakeError)) {
      end('unreachable', 'UPSTREAM_ERROR');
      return void client.destroy();
    }
    if (err.closed) return void client.destroy(); // 'closed' (or 'timeout': the timer destroyed it) stands
    end('malformed', 'BAD_REQUEST');
    refuse(client, reader, err.reply === undefined ? undefined : encodeReply(err.reply), linger);
  } finally {
    clearTimeout(timer);
  }
}

/** Connects to the permit's addresses and, once connected, splices; the reply says how it went. */
async function tunnel(
  gen: SocksGeneration,
  client: Socket,
  permit: Permit,
  reader: MessageReader,
  ending: Ending,
  end: (outcome: SocksOutcome, error: ErrorCode | undefined) => void,
): Promise<void> {
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  client.once('close', onClose);
  let upstream: Socket;
  try {
    upstream = await gen.guard.connect(permit, gen.forward.connectTimeout, abort.signal);
  } catch (err) {
    client.off('close', onClose);
    if (client.destroyed) return;
    const { rep, error } = connectReply(err);
    end('unreachable', error);
    return refuse(client, reader, encodeReply(rep), gen.forward.connectTimeout);
  }
  client.off('close', onClose);
  if (client.destroyed) return void upstream.destroy();
  end('connect', undefined);
  const answer = encodeReply(REP.succeeded, { host: upstream.localAddress ?? '0.0.0.0', port: upstream.localPort ?? 0 });
  const ended = reader.ended;
  const clientRest = reader.detach();
  ending.tunnel = gen.tunnels.open(client, upstream, gen.forward.tunnelIdleTimeout, { answer, upstreamRest: Buffer.alloc(0), clientRest });
  // The client's FIN came during the handshake, before the pipe could see it: passed on now.
  if (ended) upstream.end();
}
