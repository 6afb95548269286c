/**
 * The destination guard's connection: TCP to one of a permit's checked addresses, never to a name
 * (node:net skips the lookup for an IP literal, so no second resolution can happen and DNS
 * rebinding has no window, EDGE-CASES 35 and 49). The addresses are tried in order, the next one
 * when one fails (refused, unreachable), within one overall timeout.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { ProxyError } from '../errors.ts';
import type { Permit } from './destination-guard.ts';

/**
 * Resolves with the connected socket (its connect timeout cleared), or rejects with the last
 * address's error (`ECONNREFUSED`, …; `upstreamError` maps it), a `ProxyError`
 * `UPSTREAM_CONNECT_TIMEOUT` after `timeout` ms, or the signal's reason when it aborts.
 */
export function connectToPermit(permit: Permit, timeout: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    let socket: Socket | undefined;
    let next = 0;
    let settled = false;
    const finish = (err: unknown, done?: Socket) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (done) resolve(done);
      else {
        socket?.destroy();
        reject(err);
      }
    };
    const onAbort = () => finish(signal?.reason);
    const timer = setTimeout(
      () => finish(new ProxyError('UPSTREAM_CONNECT_TIMEOUT', new Error(`connecting to ${permit.host}:${permit.port} took over ${timeout} ms`))),
      timeout,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    const attempt = () => {
      const address = permit.addresses[next++];
      const s = netConnect({ host: address, port: permit.port });
      socket = s;
      s.once('connect', () => {
        s.removeAllListeners('error');
        finish(undefined, s);
      });
      s.once('error', (err) => {
        s.destroy();
        if (settled) return;
        if (next < permit.addresses.length) attempt();
        else finish(err);
      });
    };
    attempt();
  });
}
