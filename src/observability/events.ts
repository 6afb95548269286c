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
/**
 * Published when a TLS handshake with a client ends (https, tls listeners): a `TlsHandshakeEvent`.
 * Once per connection.
 */
export const tlsHandshake = diagnostics.channel('switchboard:tls:handshake');
/**
 * Published when an HTTP/2 client connection resets a stream or is sent a GOAWAY: an
 * `Http2Event`. Once per reset stream or per GOAWAY, never per frame.
 */
export const http2Event = diagnostics.channel('switchboard:http2:event');
/**
 * Published when a layer 4 (tcp, tls, tls-passthrough) listener's connection to an endpoint opens,
 * and when it ends (with its byte counts): a `Layer4ConnectionEvent`. Twice per connection.
 */
export const layer4Connection = diagnostics.channel('switchboard:l4:connection');
/**
 * Published when a socks5 listener's connection closes, handshake refused or tunnel ended: a
 * `SocksConnectionEvent`. Once per connection, never per byte or datagram.
 */
export const socksConnection = diagnostics.channel('switchboard:socks:connection');
/**
 * Published when a forward listener's destination guard refuses a destination (forward/): a
 * `ForwardRefusalEvent`. Once per refused request or tunnel. (Forward requests and tunnels
 * themselves are counted from `requestEnd`, by their `forward` record.)
 */
export const forwardRefusal = diagnostics.channel('switchboard:forward:refusal');

/** What `forwardRefusal` publishes: the listener, the refusal's code, and the rule that decided (config-derived: `rules[2]`, a rule's name, `default:…`). */
export interface ForwardRefusalEvent {
  readonly listener: string;
  readonly code: string;
  readonly rule: string;
}

/**
 * Published when a forward listener's parent proxy goes down (a connect or handshake through it
 * failed, or its active health checks did) or up again (a tunnel through it opened, or its checks
 * passed `rise` times): a `ForwardParentEvent`. Once per flip.
 */
export const forwardParentState = diagnostics.channel('switchboard:forward:parent');

/** What `forwardParentState` publishes. Every value comes from the config, never from a request. */
export interface ForwardParentEvent {
  listener: string;
  /** The parent as `protocol://host:port` (no credentials). */
  parent: string;
  up: boolean;
  /** Why it went down: the error's code or message (no credentials), `health check: …` for active checks; '' when up. */
  reason: string;
  /** An active check's flip the supervisor decided and passed on to this worker: counted by the supervisor, not again here. */
  peer?: boolean;
}

/** What `tlsHandshake` publishes. */
export interface TlsHandshakeEvent {
  listener: string;
  ok: boolean;
  /** Why it failed: Node's or OpenSSL's error code (`ERR_SSL_…`, `ECONNRESET`), or `CLIENT_CERTIFICATE` (an invalid optional one). */
  error?: string;
}

/** What `http2Event` publishes. */
export interface Http2Event {
  listener: string;
  /** `reset`: a stream reset before its response was complete; `goaway`: the gateway sent a GOAWAY. */
  kind: 'reset' | 'goaway';
  /** For a GOAWAY: `drain` (reload or shutdown), `rapid_reset` (too many resets), `protocol` (a malformed connection). */
  reason?: 'drain' | 'rapid_reset' | 'protocol';
}

/** How a SOCKS5 connection ended: a fixed set (a metrics label). */
export type SocksOutcome =
  | 'connect'
  | 'udp'
  | 'denied'
  | 'unresolved'
  | 'unreachable'
  | 'auth_missing'
  | 'auth_failed'
  | 'malformed'
  | 'unsupported'
  | 'timeout'
  | 'closed';

/** What `socksConnection` publishes. */
export interface SocksConnectionEvent {
  listener: string;
  /** `connect` (a tunnel was made), `udp` (an association), or why none was: refused by the rules (`denied`), unresolved, unreachable, … */
  outcome: SocksOutcome;
  /** Bytes from the client through the tunnel (UDP: datagram payloads), and back. */
  bytesIn: number;
  bytesOut: number;
}

/** What `layer4Connection` publishes. */
export interface Layer4ConnectionEvent {
  listener: string;
  upstream: string;
  /** The endpoint's origin, `tcp://host:port`. */
  endpoint: string;
  event: 'open' | 'close';
  /** Bytes from the client to the endpoint, and back (close only). */
  bytesIn: number;
  bytesOut: number;
}
