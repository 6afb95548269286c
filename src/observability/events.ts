/**
 * Named telemetry events (node:diagnostics_channel), so that metrics, tracing and logs subscribe
 * instead of being woven into the request path. Publishing costs nothing without subscribers.
 */
import diagnostics from 'node:diagnostics_channel';

/** Published once per request, when the client response is over; the message is the RequestSession (http/session.ts). */
export const requestEnd = diagnostics.channel('switchboard:request:end');
/** Published after each config reload attempt: `{ ok: boolean, errors?: string[] }`. */
export const configReload = diagnostics.channel('switchboard:config:reload');
/** Published when an endpoint's health or ejection changes: an `EndpointStateEvent` (upstream/state.ts). */
export const endpointState = diagnostics.channel('switchboard:endpoint:state');
/**
 * Published when a udp listener's session opens or ends: a `UdpSessionEvent` (listeners/udp-listener.ts).
 * Once per session, never per datagram.
 */
export const udpSession = diagnostics.channel('switchboard:udp:session');
/**
 * Published when a shared-state backend stops answering: a `StateOutageEvent` (state/state-guard.ts)
 * with the backend and the error. Once per outage, never per operation.
 */
export const stateUnavailable = diagnostics.channel('switchboard:state:unavailable');
/** Published when a shared-state backend answers again after an outage: a `StateOutageEvent` with `downMs`. */
export const stateRestored = diagnostics.channel('switchboard:state:restored');
