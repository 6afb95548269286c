/**
 * The forwarding step of layer 4 listeners (tcp, tls, tls-passthrough): one accepted connection
 * goes to one endpoint, chosen by the one selection loop (upstream/selection.ts) with the client
 * address as hash key; a dial that fails (nothing was sent) is retried on an endpoint not tried
 * yet; then the bytes are spliced both ways (transport/tunnel.ts), a PROXY header first when the
 * upstream sends one.
 */
import net, { type Socket } from 'node:net';
import type { GenerationTracker } from '../http/listener-generation.ts';
import type { ConnectionRecord } from '../observability/access-log.ts';
import { ProxyError } from '../errors.ts';
import { clientAddressOf, clientPortOf } from '../transport/connection-info.ts';
import { encodeProxyV1, encodeProxyV2, type ProxyAddresses } from '../transport/proxy-protocol.ts';
import type { Tunnel, Tunnels } from '../transport/tunnel.ts';
import { layer4Connection, type Layer4ConnectionEvent } from '../observability/events.ts';
import { dial } from '../transport/upgrade-exchange.ts';
import { Selection } from '../upstream/selection.ts';
import type { Upstream } from '../upstream/upstream.ts';

/** What a tcp listener's connections depend on that a reload may change. One per generation. */
export interface TcpGeneration {
  readonly name: string;
  /** tls-passthrough: the upstream when no `sni` entry matches (undefined: such clients are closed). */
  readonly upstream: Upstream | undefined;
  /** tls-passthrough only: server name (or `*.` wildcard) to upstream. */
  readonly sni?: ReadonlyMap<string, Upstream>;
  readonly generation: GenerationTracker;
  /** ms the connections of a replaced generation may live on. */
  readonly drainTimeout: number;
  /** This generation's open connections (cut together when its drain time is up). */
  readonly tunnels: Tunnels;
  /** The access log's hook for an ended connection; undefined when it is off (then no record is built). */
  readonly onConnectionEnd: ((c: ConnectionRecord) => void) | undefined;
}

/** The PROXY header an endpoint gets first: the client's address, and the address it connected to. */
function proxyHeaderFor(client: Socket, version: 'v1' | 'v2'): Buffer {
  const source = clientAddressOf(client);
  const destination = (client.localAddress ?? '').replace(/^::ffff:/, '');
  const v6 = net.isIPv6(source) || net.isIPv6(destination);
  const addresses: ProxyAddresses = {
    family: v6 ? 'tcp6' : 'tcp4',
    sourceAddress: v6 && net.isIPv4(source) ? `::ffff:${source}` : source,
    sourcePort: clientPortOf(client),
    destinationAddress: v6 && net.isIPv4(destination) ? `::ffff:${destination}` : destination,
    destinationPort: client.localPort ?? 0,
  };
  return version === 'v1' ? encodeProxyV1(addresses) : encodeProxyV2(addresses);
}

const EMPTY = Buffer.alloc(0);

/** Publishes the connection's opening now and its end (with its bytes) when the client side closes. */
function publishConnection(listener: string, upstream: string, endpoint: string, client: Socket, tunnel: Tunnel): void {
  const event: Layer4ConnectionEvent = { listener, upstream, endpoint, event: 'open', bytesIn: 0, bytesOut: 0 };
  layer4Connection.publish(event);
  client.once('close', () => {
    if (!layer4Connection.hasSubscribers) return;
    layer4Connection.publish({ ...event, event: 'close', bytesIn: tunnel.bytesIn, bytesOut: tunnel.bytesOut } satisfies Layer4ConnectionEvent);
  });
}

/**
 * Forwards one accepted connection of `gen` to `upstream`: pick, dial (retrying what sent nothing),
 * splice; `head` goes first. `record` (when the access log is on) gets the upstream, the endpoint
 * tried last and, when none was reached, why.
 */
export async function forwardConnection(gen: TcpGeneration, client: Socket, upstream: Upstream, head?: Buffer, record?: ConnectionRecord): Promise<void> {
  const config = upstream.config;
  if (record !== undefined) record.upstream = config.name;
  const selection = new Selection(upstream, upstream.hashes ? clientAddressOf(client) : undefined, undefined, 'CONNECT');
  try {
    for (;;) {
      const endpoint = selection.next();
      if (endpoint === undefined) {
        // No endpoint at all, or the last dial's failure (recorded below) stands.
        if (record !== undefined) record.error ??= 'NO_ENDPOINT';
        return void client.destroy();
      }
      if (record !== undefined) record.endpoint = endpoint.origin;
      const { socket, connected } = dial(endpoint, config.timeouts.connect);
      const state = endpoint.state;
      state.begin();
      socket.once('close', () => state.end());
      const abandon = (): void => void socket.destroy();
      client.once('close', abandon);
      try {
        await connected;
      } catch (err) {
        client.off('close', abandon);
        if (record !== undefined) record.error = client.destroyed ? 'CLIENT_CLOSED' : err instanceof ProxyError ? err.code : 'UPSTREAM_UNREACHABLE';
        if (client.destroyed) return;
        upstream.state.record(state, true);
        if (selection.retry(endpoint, 'connect', { sent: false, committed: false, body: false, replayable: true })) continue;
        return void client.destroy();
      }
      client.off('close', abandon);
      if (client.destroyed) {
        if (record !== undefined) record.error = 'CLIENT_CLOSED';
        return void socket.destroy();
      }
      if (record !== undefined) record.error = undefined;
      upstream.state.record(state, false);
      const header = config.proxyProtocol === undefined ? EMPTY : proxyHeaderFor(client, config.proxyProtocol);
      const clientRest = head === undefined ? header : header.length === 0 ? head : Buffer.concat([header, head]);
      const tunnel = gen.tunnels.open(client, socket, config.timeouts.tunnelIdle, { answer: EMPTY, upstreamRest: EMPTY, clientRest });
      if (layer4Connection.hasSubscribers) publishConnection(gen.name, upstream.name, state.origin, client, tunnel);
      return;
    }
  } finally {
    selection.finish();
  }
}
