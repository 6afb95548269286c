/**
 * Switchboard's programmatic API.
 *
 * ```ts
 * import { startGateway } from 'switchboard';
 * const gw = await startGateway({ config: 'switchboard.yaml', accessLog: 'stdout' });
 * await gw.reload();   // re-read the file; a bad config keeps the old one serving
 * await gw.stop();     // drain and close
 * ```
 */
export { Gateway, startGateway, ConfigLoadError, type GatewayOptions, type ReloadResult } from './gateway.ts';
export { loadConfigObject, formatConfigError, type ConfigError, type LoadResult } from './config/load.ts';
export { loadConfigFile, loadConfigText } from './config/load-text.ts';
export { jsonSchema, type RawConfig } from './config/schema.ts';
export type { GatewayConfig, ListenerConfig, RouteConfig, UpstreamConfig, EndpointConfig, Timeouts } from './config/types.ts';
export type { Balancer, PickContext, BalancerFactory } from './upstream/balancers/balancer.ts';
export type { Endpoint } from './upstream/endpoint.ts';
export { registerPolicyType } from './policies/registry.ts';
export type { Filter, PolicyType, Session, Reply, ResponseHead, UpstreamRequestHead, Headers } from './policies/filter.ts';
export type { RequestSession } from './http/session.ts';
export { ERRORS, ProxyError, type ErrorCode } from './errors.ts';
export { requestEnd, configReload } from './observability/events.ts';
