/**
 * Asks an HTTP parent proxy for a tunnel (RFC 9110 §9.3.6): `CONNECT address:port`, with
 * `Proxy-Authorization: Basic` (RFC 7617) when the parent's URL carries credentials, then reads the
 * response head. A 2xx makes the connection the tunnel; anything else is a ParentReplyError.
 */
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import type { ForwardParentProxy } from '../config/types.ts';
import type { HandshakeReader } from './handshake-reader.ts';
import { ParentReplyError } from './parent-reply.ts';

const HEAD_END = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: ([^\r\n]*))?$/;

/** The response head's status code and reason, once the whole head is there. */
function responseHead(bytes: Buffer): { value: { status: number; reason: string }; used: number } | undefined {
  const end = bytes.indexOf(HEAD_END);
  if (end < 0) return undefined;
  const lineEnd = bytes.indexOf('\r\n');
  const match = STATUS_LINE.exec(bytes.toString('latin1', 0, lineEnd));
  if (match === null) throw new ParentReplyError('broken', 'the parent did not answer CONNECT with an HTTP/1.x status line');
  return { value: { status: Number(match[1]), reason: match[2] ?? '' }, used: end + HEAD_END.length };
}

/** The `Proxy-Authorization` line for `proxy`'s credentials, or '' (built once per parent). */
export function proxyAuthorization(proxy: ForwardParentProxy): string {
  if (proxy.username === undefined) return '';
  return `Proxy-Authorization: Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}\r\n`;
}

/** Sends CONNECT for `address:port` (an IP literal: the checked address) and waits for the answer. */
export async function httpConnect(socket: Socket, reader: HandshakeReader, authorization: string, address: string, port: number): Promise<void> {
  const authority = isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${authorization}\r\n`);
  const { status, reason } = await reader.read(responseHead);
  if (status >= 200 && status < 300) return;
  const what = `${status}${reason === '' ? '' : ` ${reason}`}`;
  if (status === 502 || status === 503 || status === 504) throw new ParentReplyError('unreachable', `the parent could not reach ${authority} (${what})`);
  if (status >= 400 && status < 500) throw new ParentReplyError('refused', `the parent refused CONNECT ${authority} (${what})`);
  throw new ParentReplyError('broken', `the parent answered CONNECT ${authority} with ${what}`);
}
