/**
 * Switchboard's programmatic API.
 *
 * ```ts
 * import { startGateway } from 'switchboard';
 * const gw = await startGateway({ config: 'switchboard.yaml', accessLog: 'stdout' });
 * await gw.reload();   // re-read the file; a bad config keeps the old one serving
 * await gw.stop();     // drain and close
 * ```
 *
 * This file sits above src/admin/ in the layers (docs/architecture.md): `startGateway` here wires
 * the admin listener into the gateway, which cannot import it.
 */
import { startGateway as startCore, type Gateway, type GatewayOptions } from './gateway.ts';
import { gatewayAdmin } from './admin/local.ts';

export { Gateway, ConfigLoadError, type GatewayOptions, type ReloadResult, type AdminHost } from './gateway.ts';
export type { MetricsProvider } from './observability/metrics-provider.ts';
export type { RuntimeChange, UpstreamView, EndpointView } from './upstream/state.ts';

/**
 * Starts a gateway: `const gw = await startGateway({ config: 'switchboard.yaml' })`. With an
 * `admin` section in the config, its admin listener (docs/admin.md) runs in this process, started,
 * re-bound and stopped with the gateway; `gw.adminUrl()` is its address.
 */
export function startGateway(opts: GatewayOptions): Promise<Gateway> {
  return startCore({ admin: gatewayAdmin, ...opts });
}
export { loadConfigObject, formatConfigError, type ConfigError, type LoadResult } from './config/load.ts';
export { loadConfigFile, loadConfigText } from './config/load-text.ts';
export { jsonSchema, type RawConfig } from './config/schema.ts';
export type { GatewayConfig, ListenerConfig, RouteConfig, UpstreamConfig, EndpointConfig, Timeouts } from './config/types.ts';
export type { Balancer, PickContext, BalancerFactory } from './upstream/balancers/balancer.ts';
export type { Endpoint } from './upstream/endpoint.ts';
export { registerPolicyType } from './policies/registry.ts';
export type { Filter, PolicyType, Session, Reply, ResponseHead, UpstreamRequestHead, Headers, Usage, UsageQuery } from './policies/filter.ts';
export type { RequestSession } from './http/session.ts';
export { ERRORS, ProxyError, type ErrorCode } from './errors.ts';
export { requestEnd, configReload } from './observability/events.ts';
