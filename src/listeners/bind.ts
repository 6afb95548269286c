/**
 * Binding a listener's stream server (node:net, node:tls, node:http, node:https) to its address,
 * with `reusePort` so that a replacement can bind the same port before the old one stops
 * accepting (a reload never refuses a connection).
 */
import type { AddressInfo, Server } from 'node:net';
import type { ListenAddress } from '../config/types.ts';

/** Listens on `address`; resolves with the bound address (port 0 resolved), rejects on a bind error. */
export function listenOn(server: Server, address: ListenAddress): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port, reusePort: true }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** The bound address of `server`, or undefined when it is not listening. */
export function boundAddress(server: Server): AddressInfo | undefined {
  const a = server.address();
  return a && typeof a === 'object' ? a : undefined;
}
