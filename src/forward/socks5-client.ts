/**
 * Asks a SOCKS5 parent proxy for a tunnel: the RFC 1928 method negotiation, RFC 1929
 * username/password when the parent's URL carries credentials, then CONNECT with the address type
 * of the checked address (IPv4 or IPv6, never a name). A reply with REP 0 makes the connection the
 * tunnel; anything else is a ParentReplyError. The client side of what forward/socks5.ts serves
 * (its constants are shared); the CONNECT request is encoded here, from the parsed address, so that
 * every IPv6 spelling is sent as the 16 bytes it means and a name never is.
 */
import { isIP, type Socket } from 'node:net';
import type { ForwardParentProxy } from '../config/types.ts';
import { parseIPv4, parseIPv6 } from '../util/ip-address.ts';
import type { HandshakeReader } from './handshake-reader.ts';
import { ParentReplyError } from './parent-reply.ts';
import { AUTH_VERSION, CMD_CONNECT, METHOD_NONE, METHOD_PASSWORD, METHOD_UNACCEPTABLE, SOCKS_VERSION } from './socks5.ts';

const VERSION = SOCKS_VERSION;
const NO_AUTH = METHOD_NONE;
const USER_PASS = METHOD_PASSWORD;
const NO_METHOD = METHOD_UNACCEPTABLE;

/** RFC 1928 §6 reply codes. */
const REPLIES: Record<number, string> = {
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

function twoBytes(bytes: Buffer): { value: [number, number]; used: number } | undefined {
  return bytes.length < 2 ? undefined : { value: [bytes[0], bytes[1]], used: 2 };
}

/** The CONNECT reply: REP, once the whole reply (with its bound address) is there. */
function connectReply(bytes: Buffer): { value: number; used: number } | undefined {
  if (bytes.length < 5) return undefined;
  if (bytes[0] !== VERSION) throw new ParentReplyError('broken', 'the parent answered CONNECT with a version other than SOCKS5');
  const atyp = bytes[3];
  const length = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? 1 + bytes[4] : -1;
  if (length < 0) throw new ParentReplyError('broken', `the parent answered CONNECT with address type ${atyp}`);
  const used = 4 + length + 2;
  return bytes.length < used ? undefined : { value: bytes[1], used };
}

/** The RFC 1929 request for `proxy`'s credentials, or undefined (built once per parent). */
export function socksCredentials(proxy: ForwardParentProxy): Buffer | undefined {
  if (proxy.username === undefined) return undefined;
  const user = Buffer.from(proxy.username);
  const pass = Buffer.from(proxy.password ?? '');
  return Buffer.concat([Buffer.from([AUTH_VERSION, user.length]), user, Buffer.from([pass.length]), pass]);
}

/** The CONNECT request for an IP literal. */
function connectRequest(address: string, port: number): Buffer {
  if (isIP(address) === 4) {
    const v4 = parseIPv4(address, 0, address.length);
    const out = Buffer.from([VERSION, CMD_CONNECT, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    out.writeUInt32BE(v4 >>> 0, 4);
    out.writeUInt16BE(port, 8);
    return out;
  }
  const words = new Uint32Array(4);
  if (!parseIPv6(address, 0, address.length, words)) throw new ParentReplyError('refused', `${address} is not an IP address`);
  const out = Buffer.alloc(22);
  out.set([VERSION, CMD_CONNECT, 0x00, 0x04]);
  for (let i = 0; i < 4; i++) out.writeUInt32BE(words[i] >>> 0, 4 + i * 4);
  out.writeUInt16BE(port, 20);
  return out;
}

/** Negotiates with the parent and asks it for `address:port` (an IP literal: the checked address). */
export async function socks5Connect(socket: Socket, reader: HandshakeReader, credentials: Buffer | undefined, address: string, port: number): Promise<void> {
  socket.write(Buffer.from([VERSION, 1, credentials === undefined ? NO_AUTH : USER_PASS]));
  const [version, method] = await reader.read(twoBytes);
  if (version !== VERSION) throw new ParentReplyError('broken', 'the parent did not answer as a SOCKS5 server');
  if (method === NO_METHOD) throw new ParentReplyError('refused', `the parent accepts no ${credentials === undefined ? 'unauthenticated' : 'username/password'} clients`);
  if (method === USER_PASS && credentials !== undefined) {
    socket.write(credentials);
    const [, status] = await reader.read(twoBytes);
    if (status !== 0) throw new ParentReplyError('refused', 'the parent rejected the username and password');
  } else if (method !== NO_AUTH) throw new ParentReplyError('broken', `the parent chose method ${method}, which was not offered`);
  socket.write(connectRequest(address, port));
  const rep = await reader.read(connectReply);
  if (rep === 0) return;
  const what = `${isIP(address) === 6 ? `[${address}]` : address}:${port}: ${REPLIES[rep] ?? `reply ${rep}`}`;
  if (rep >= 3 && rep <= 6) throw new ParentReplyError('unreachable', `the parent could not reach ${what}`);
  throw new ParentReplyError('refused', `the parent refused ${what}`);
}
