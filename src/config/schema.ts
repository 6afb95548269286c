/**
 * The configuration schema: the one strict description of what a Switchboard config may say.
 *
 * Only shape lives here. Defaults live in `defaults.ts`, conversion of durations and sizes and the
 * wiring of names in `resolve.ts`, file reading and line:column errors in `load.ts`. Every object is
 * strict: an unknown key is an error (with a "did you mean" suggestion from the loader).
 */
import { z } from 'zod';
import { BALANCER_NAMES } from '../upstream/balancers/names.ts';

/** `250ms`, `5s`, `1m`, `1h`, or 0 to disable. */
export const DURATION_PATTERN = /^(0|\d+(\.\d+)?(ms|s|m|h|d))$/;
/** `512B`, `16KiB`, `10MB`, `1GiB`, or a whole number of bytes. */
export const SIZE_PATTERN = /^\d+(\.\d+)?\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/;

export const duration = z
  .union([z.literal(0), z.string().regex(DURATION_PATTERN)])
  .meta({ title: 'duration', description: 'A duration such as `250ms`, `5s`, `1m`, `1h`, `365d`; `0` disables.' });

export const size = z
  .union([z.number().int().nonnegative(), z.string().regex(SIZE_PATTERN)])
  .meta({ title: 'size', description: 'A size such as `16KiB`, `10MB`, `1GiB`, or a number of bytes.' });

const cidrList = z
  .array(z.string())
  .meta({ description: 'Addresses or CIDR ranges, e.g. `10.0.0.0/8`, `::1`.' });

export const timeouts = z
  .strictObject({
    connect: duration.optional().meta({ description: 'Time to open a connection to an endpoint.' }),
    responseHeaders: duration
      .optional()
      .meta({ description: 'Time from the request being sent to the response headers arriving.' }),
    bodyIdle: duration
      .optional()
      .meta({ description: 'Longest silence between two chunks of the response body.' }),
    request: duration
      .optional()
      .meta({ description: 'Whole-exchange limit, from the request arriving to the response ending. 0 disables.' }),
    tunnelIdle: duration
      .optional()
      .meta({ description: 'WebSocket and other upgraded connections: longest silence in both directions before the tunnel is closed. 0 disables.' }),
  })
  .meta({ description: 'Upstream timeouts. Set per upstream; a route may override any of them.' });

const pemFile = z.string().meta({ description: 'Path to a PEM file, relative to the config file.' });

export const certificate = z
  .strictObject({
    cert: pemFile.meta({ description: 'Certificate chain (PEM), leaf first. Its names (subjectAltName DNS entries, else the CN) select it by SNI.' }),
    key: pemFile.meta({ description: 'Private key (PEM) of the certificate.' }),
  })
  .meta({ description: 'One certificate and its key.' });

export const listenerTls = z
  .strictObject({
    certificates: z
      .array(certificate)
      .min(1)
      .meta({ description: 'Certificates chosen by SNI (exact names before wildcards). The first is the default for clients whose SNI matches none, unless strictSni.' }),
    strictSni: z
      .boolean()
      .optional()
      .meta({ description: 'Refuse the handshake when the SNI matches no certificate (or is absent), instead of serving the default certificate.' }),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional().meta({ description: 'Lowest TLS version accepted.' }),
    ciphers: z
      .string()
      .optional()
      .meta({ description: 'OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed). Default: Node\'s (forward-secret AEAD first).' }),
    sessionTickets: z.boolean().optional().meta({ description: 'Offer TLS session tickets for resumption (keys rotate with the process).' }),
    sessionTimeout: duration.optional().meta({ description: 'How long a TLS session may be resumed.' }),
    alpn: z
      .array(z.enum(['h2', 'http/1.1']))
      .min(1)
      .optional()
      .meta({ description: 'Protocols offered by ALPN, in order of preference.' }),
    clientCertificate: z
      .strictObject({
        ca: pemFile.meta({ description: 'CA bundle (PEM) client certificates must chain to.' }),
        required: z
          .boolean()
          .optional()
          .meta({ description: 'true: the handshake fails without a valid client certificate. false: a client may present none, but one it presents must be valid.' }),
        subjectHeader: z
          .string()
          .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/)
          .optional()
          .meta({ description: "Request header that carries the verified client certificate's subject to the upstream." }),
        fingerprintHeader: z
          .string()
          .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/)
          .optional()
          .meta({ description: "Request header that carries the verified client certificate's SHA-256 fingerprint (hex) to the upstream." }),
      })
      .optional()
      .meta({ description: 'Mutual TLS: verify client certificates. Client-sent copies of the two headers are always removed.' }),
  })
  .meta({ description: 'TLS termination settings of an https listener.' });

export const http2Settings = z
  .strictObject({
    maxConcurrentStreams: z.number().int().min(1).max(10_000).optional().meta({ description: 'Streams a client may have open at once on one connection; more are refused (REFUSED_STREAM).' }),
    initialWindowSize: size.optional().meta({ description: 'Flow-control window of each stream (how much a client may send before we read).' }),
    connectionWindowSize: size.optional().meta({ description: 'Flow-control window of the whole connection.' }),
    maxResets: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'Streams a client may reset (RST_STREAM) within resetWindow before the connection is closed with GOAWAY (HTTP/2 rapid reset, CVE-2023-44487).' }),
    resetWindow: duration.optional().meta({ description: 'The window maxResets counts over.' }),
  })
  .meta({ description: 'HTTP/2 limits for clients (https listeners with h2 in ALPN, and h2c). Header list size is maxHeaderSize.' });

export const hsts = z
  .strictObject({
    maxAge: duration.optional().meta({ description: 'max-age of the Strict-Transport-Security header.' }),
    includeSubDomains: z.boolean().optional().meta({ description: 'Add `includeSubDomains`: the policy covers every subdomain too.' }),
    preload: z.boolean().optional().meta({ description: 'Add `preload` (for the browsers\' HSTS preload lists).' }),
  })
  .meta({ description: 'Add Strict-Transport-Security to responses (https listeners), unless the upstream set one.' });

export const udpSettings = z
  .strictObject({
    sessionIdle: duration
      .optional()
      .meta({ description: 'A session (one client address:port, one endpoint) ends after this long without a datagram either way; the next datagram from that client starts a new one, balanced again.' }),
    maxSessions: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'Sessions open at once; datagrams from new clients past it are dropped (existing sessions go on).' }),
  })
  .meta({ description: 'udp listeners: client sessions.' });

export const listener = z
  .strictObject({
    address: z
      .string()
      .meta({ description: 'host:port to listen on, e.g. `127.0.0.1:8080`, `[::1]:8080`, `:8080`; port 0 picks a free one.' }),
    protocol: z
      .enum(['http', 'https', 'tcp', 'tls', 'tls-passthrough', 'udp'])
      .meta({
        description:
          '`http` (plain; HTTP/1.1, and HTTP/2 with h2c), `https` (TLS; HTTP/1.1 and HTTP/2 by ALPN), `tcp` (layer 4: each connection to an endpoint of `upstream`, bytes untouched), `tls` (layer 4 behind TLS termination: the `tls` certificates as for https, plain TCP to the endpoints), `tls-passthrough` (layer 4 routed by the ClientHello\'s server name, see `sni`; TLS is not terminated, so the endpoint\'s own certificate is what clients see) or `udp` (datagrams: each client address is a session held by one endpoint of `upstream`).',
      }),
    upstream: z
      .string()
      .optional()
      .meta({ description: 'tcp and tls listeners: the upstream (with tcp:// endpoints) connections are balanced over. Its timeouts.connect bounds each dial, timeouts.tunnelIdle closes silent connections. tls-passthrough listeners: the upstream for clients whose server name (or lack of one) matches no `sni` entry; without it they are closed. udp listeners: the upstream (with udp:// endpoints) sessions are balanced over.' }),
    sni: z
      .record(z.string(), z.string())
      .optional()
      .meta({
        description:
          'tls-passthrough listeners: server name (SNI of the ClientHello) to the upstream (with tcp:// endpoints) its connections go to. Matched case-insensitively: the exact name first, then a `*.example.com` wildcard one label up.',
      }),
    udp: udpSettings.optional(),
    tls: listenerTls.optional().meta({ description: 'TLS settings; required for https and tls listeners.' }),
    h2c: z.boolean().optional().meta({ description: 'http listeners: also accept HTTP/2 with prior knowledge (cleartext) on the same port.' }),
    http2: http2Settings.optional(),
    httpsRedirect: z
      .union([z.boolean(), z.strictObject({ port: z.number().int().min(1).max(65535).optional().meta({ description: 'Port of the https URL; 443 is left out of it.' }) })])
      .optional()
      .meta({ description: 'http listeners: answer every request with a 308 redirect to the same host, path and query over https.' }),
    hsts: hsts.optional(),
    proxyProtocol: z
      .strictObject({
        trusted: cidrList.min(1).meta({ description: 'Peers allowed to send a PROXY header (load balancers in front); a connection from any other address is refused.' }),
        timeout: duration.optional().meta({ description: 'Time the PROXY header has to arrive in full; past it, or when it is malformed, the connection is closed.' }),
      })
      .optional()
      .meta({ description: 'Accept the PROXY protocol (v1 and v2) at the start of every connection, so that the real client address reaches routing, ip-hash, logs and forwarding headers. The header is then required.' }),
    trustedProxies: cidrList
      .optional()
      .meta({ description: 'Peers whose X-Forwarded-* and Forwarded headers are trusted and extended; from anyone else they are replaced.' }),
    headerTimeout: duration
      .optional()
      .meta({ description: 'Time a client has to send the whole request header block (slowloris guard) before 408.' }),
    requestTimeout: duration
      .optional()
      .meta({
        description:
          'Time a client has to send the whole request, headers and body (slow-upload guard); past it the connection is closed (408 when nothing was answered yet). At least headerTimeout; 0 disables.',
      }),
    sendTimeout: duration
      .optional()
      .meta({
        description:
          'Time a client may take to accept more of its response once its connection is full (a client that stops reading); past it the connection and the upstream request are closed. 0 disables.',
      }),
    keepAliveTimeout: duration.optional().meta({ description: 'Idle time before a keep-alive client connection is closed.' }),
    maxHeaderSize: size.optional().meta({ description: 'Largest request header block; larger gets 431.' }),
    maxConnections: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .meta({ description: 'Open client connections this listener accepts at once; past it new ones get 503 and are closed. 0 means no limit.' }),
    maxConnectionsPerClient: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .meta({
        description:
          'Open connections one client address may hold at once; past it its new ones get 503 and are closed. 0 means no limit (the default: behind a NAT or another proxy many clients share an address).',
      }),
    maxRequestsPerConnection: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .meta({ description: 'Requests served on one keep-alive connection before it is closed. 0 means no limit.' }),
    headersWithUnderscores: z
      .enum(['allow', 'drop', 'reject'])
      .optional()
      .meta({ description: 'What to do with request header names containing `_`: pass them, drop them (as nginx does), or answer 400.' }),
  })
  .meta({ description: 'A listening socket.' });

const stringMatch = z.union([
  z.string().meta({ description: 'Exact value.' }),
  z.strictObject({ exact: z.string() }),
  z.strictObject({ regex: z.string() }),
  z.strictObject({ present: z.boolean() }),
]);

export const pathMatch = z.union([
  z.string().meta({ description: 'Prefix match.' }),
  z.strictObject({ prefix: z.string() }),
  z.strictObject({ exact: z.string() }),
  z.strictObject({ regex: z.string() }),
]);

export const match = z
  .strictObject({
    host: z
      .union([z.string(), z.array(z.string()).min(1)])
      .optional()
      .meta({ description: 'Host names: exact (`api.example.com`), wildcard (`*.example.com`), optionally with `:port`.' }),
    path: pathMatch
      .optional()
      .meta({ description: 'A string is a prefix; or `{ prefix }`, `{ exact }`, `{ regex }`.' }),
    methods: z.array(z.string().regex(/^[A-Z]+$/)).min(1).optional().meta({ description: 'Allowed methods, upper case.' }),
    headers: z
      .record(z.string(), stringMatch)
      .optional()
      .meta({ description: 'Header name to a value (exact), `{ exact }`, `{ regex }` or `{ present: true|false }`.' }),
    query: z
      .record(z.string(), stringMatch)
      .optional()
      .meta({ description: 'Query parameter name to a value (exact), `{ exact }`, `{ regex }` or `{ present: true|false }`.' }),
  })
  .meta({ description: 'Every condition given must hold.' });

export const rewrite = z
  .strictObject({
    stripPrefix: z.string().optional().meta({ description: 'Remove this prefix from the path before forwarding.' }),
    replacePrefix: z
      .strictObject({
        from: z.string().meta({ description: 'The prefix to replace; starts with `/`.' }),
        to: z.string().meta({ description: 'What replaces it; starts with `/`.' }),
      })
      .optional()
      .meta({ description: 'Replace the leading `from` of the path with `to`.' }),
  })
  .meta({ description: 'Path rewriting before forwarding. At most one of the two.' });

export const route = z
  .strictObject({
    listeners: z
      .array(z.string())
      .optional()
      .meta({ description: 'Names of the listeners this route serves; when absent, every http listener.' }),
    match: match
      .optional()
      .meta({ description: 'Which requests this route takes. Every condition given must hold; none given matches every request.' }),
    upstream: z.string().meta({ description: 'Name of the upstream requests go to.' }),
    priority: z
      .number()
      .int()
      .optional()
      .meta({ description: 'Among matching routes, higher priority wins before specificity is considered.' }),
    rewrite: rewrite.optional(),
    timeouts: timeouts
      .optional()
      .meta({ description: "This route's overrides of its upstream's timeouts; each one not given is the upstream's." }),
    maxBodySize: size.optional().meta({ description: 'Largest request body; larger gets 413. 0 means no limit.' }),
  })
  .meta({ description: 'Which requests go to which upstream.' });

export const endpoint = z
  .strictObject({
    url: z.string().meta({ description: 'Endpoint origin, `http://host:port`, or `https://host:port` for TLS to the endpoint; `tcp://host:port` for upstreams of tcp listeners, `udp://host:port` for those of udp listeners.' }),
    weight: z.number().int().min(1).max(1000).optional().meta({ description: "Relative share of the upstream's requests, 1-1000." }),
  })
  .meta({ description: 'One server in an upstream.' });

const percent = z.number().min(0).max(100);

export const healthCheck = z
  .strictObject({
    type: z.enum(['http', 'tcp']).optional().meta({ description: '`http`: a request that must get an expected status (and body); `tcp`: a connection that must open.' }),
    method: z.string().regex(/^[A-Z]+$/).optional().meta({ description: 'HTTP method of the check request.' }),
    path: z.string().optional().meta({ description: 'Path (and query) of the check request; starts with `/`.' }),
    host: z.string().optional().meta({ description: "Host header of the check request; the endpoint's host:port when absent." }),
    statuses: z
      .union([z.string(), z.array(z.union([z.number().int(), z.string()])).min(1)])
      .optional()
      .meta({ description: 'Statuses that count as healthy: `"200-399"`, or a list such as `[200, "300-308"]`.' }),
    bodyContains: z.string().optional().meta({ description: 'When set, the response body (first 64 KiB) must contain this text.' }),
    interval: duration.optional().meta({ description: 'Time between the end of one check and the start of the next.' }),
    timeout: duration.optional().meta({ description: 'Time one check may take; longer counts as a failure.' }),
    jitter: duration.optional().meta({ description: 'Random extra delay, up to this much, added to each interval so checks of many endpoints spread out. Default: a tenth of the interval.' }),
    rise: z.number().int().min(1).optional().meta({ description: 'Consecutive successes that mark an unhealthy endpoint healthy.' }),
    fall: z.number().int().min(1).optional().meta({ description: 'Consecutive failures that mark a healthy endpoint unhealthy.' }),
    initialState: z
      .enum(['healthy', 'unhealthy'])
      .optional()
      .meta({ description: 'State of a new endpoint until checks decide (at startup, and for endpoints added by a reload).' }),
  })
  .meta({ description: 'Active health checks: each endpoint is checked on its own schedule, independent of traffic; a down endpoint gets no requests.' });

export const outlierDetection = z
  .strictObject({
    consecutiveFailures: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .meta({ description: 'Consecutive failures (5xx responses, connect failures, resets, timeouts) that eject an endpoint. 0 disables outlier detection.' }),
    baseEjectionTime: duration.optional().meta({ description: 'How long the first ejection lasts; each further ejection of the same endpoint lasts one base time more.' }),
    maxEjectionTime: duration.optional().meta({ description: 'Longest an ejection may last.' }),
    maxEjectedPercent: percent
      .optional()
      .meta({ description: 'At most this share of the endpoints is ejected at once (at least one endpoint may always be).' }),
  })
  .meta({ description: 'Passive health: endpoints that keep failing real requests are taken out of rotation for a while.' });

export const circuitBreaker = z
  .strictObject({
    maxRequests: z.number().int().nonnegative().optional().meta({ description: 'Requests in flight to this upstream at once; 0 means no limit.' }),
    maxQueued: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .meta({ description: 'Requests that may wait for a free slot when maxRequests is reached; past it, 503 at once.' }),
    queueTimeout: duration.optional().meta({ description: 'Longest a request waits in that queue before 503.' }),
  })
  .meta({ description: 'Circuit breaking: bounds on the load this upstream is given; past them, requests get 503 UPSTREAM_OVERLOADED at once.' });

export const retries = z
  .strictObject({
    attempts: z
      .number()
      .int()
      .min(1)
      .max(10)
      .optional()
      .meta({ description: 'Tries per request, the first included (1 disables retries); each try goes to an endpoint not tried yet.' }),
    perTryTimeout: duration.optional().meta({ description: 'Time one try has to produce response headers before it is abandoned (and retried when allowed). 0 disables.' }),
    retryOn: z
      .array(z.enum(['reset', 'timeout']))
      .optional()
      .meta({ description: 'Failures after the request was sent that are retried, for idempotent methods without a body. Connect failures are always retried.' }),
    statuses: z
      .array(z.number().int().min(400).max(599))
      .optional()
      .meta({ description: 'Response statuses that are retried (the response is discarded), under the same rule as retryOn.' }),
    budget: z
      .strictObject({
        percent: percent.optional().meta({ description: "Retries in flight at most this share of the upstream's requests in flight." }),
        minConcurrent: z.number().int().nonnegative().optional().meta({ description: 'Retries always allowed in flight, whatever the share.' }),
      })
      .optional()
      .meta({ description: 'Retry budget, so that retries cannot multiply an outage.' }),
  })
  .meta({ description: 'Retrying failed tries on another endpoint.' });

export const sticky = z
  .strictObject({
    cookie: z
      .string()
      .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/)
      .meta({ description: 'Name of the cookie that pins a client to an endpoint. Its value is an opaque endpoint id, never the address.' }),
    ttl: duration.optional().meta({ description: 'Cookie lifetime (Max-Age); 0 makes it a session cookie.' }),
    path: z.string().optional().meta({ description: 'Cookie Path.' }),
    secure: z.boolean().optional().meta({ description: 'Mark the cookie Secure (sent over HTTPS only).' }),
    sameSite: z.enum(['Strict', 'Lax', 'None']).optional().meta({ description: 'Cookie SameSite attribute.' }),
  })
  .meta({ description: 'Session persistence: the first response sets a cookie naming its endpoint; later requests go there while it is available, and are balanced again when not.' });

export const upstreamTls = z
  .strictObject({
    ca: pemFile.optional().meta({ description: "CA bundle (PEM) the endpoints' certificates are verified against; the system's when absent." }),
    serverName: z.string().optional().meta({ description: "Name sent as SNI and verified in the endpoint's certificate; the endpoint URL's host when absent." }),
    cert: pemFile.optional().meta({ description: 'Client certificate (PEM) presented to endpoints (mutual TLS).' }),
    key: pemFile.optional().meta({ description: 'Private key (PEM) of the client certificate.' }),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional().meta({ description: 'Lowest TLS version accepted from endpoints.' }),
    insecureSkipVerify: z
      .boolean()
      .optional()
      .meta({ description: 'Do not verify endpoint certificates at all. For testing only: anyone on the path can read and change the traffic. Logged as a warning.' }),
  })
  .meta({ description: 'TLS to the endpoints (https:// endpoint URLs).' });

export const upstream = z
  .strictObject({
    protocol: z
      .enum(['http1', 'h2', 'h2c'])
      .optional()
      .meta({ description: 'Protocol to the endpoints: `http1`, `h2` (HTTP/2 over TLS, https:// endpoints; ALPN) or `h2c` (HTTP/2 cleartext with prior knowledge, http:// endpoints).' }),
    tls: upstreamTls.optional(),
    proxyProtocol: z
      .enum(['v1', 'v2'])
      .optional()
      .meta({ description: 'Send a PROXY protocol header (v1 text, v2 binary) with the client address at the start of each connection to an endpoint. tcp:// endpoints only.' }),
    balancer: z
      .enum(BALANCER_NAMES)
      .optional()
      .meta({ description: 'How requests are spread over the endpoints. See docs/balancing.md for how to choose.' }),
    hashKey: z
      .string()
      .regex(/^(header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|cookie:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|query:[^&=\s]+|path)$/)
      .optional()
      .meta({ description: 'consistent-hash only: what is hashed, `header:NAME`, `cookie:NAME`, `query:NAME` or `path`. A request without it is balanced at random.' }),
    hashTable: z
      .enum(['ring', 'maglev'])
      .optional()
      .meta({ description: 'ip-hash and consistent-hash: a weighted ring hash (`ring`) or a Maglev table (`maglev`).' }),
    sticky: sticky.optional(),
    slowStart: duration
      .optional()
      .meta({ description: 'A new or recovered endpoint starts at a tenth of its weight and ramps up to all of it over this time. 0 disables.' }),
    endpoints: z.array(endpoint).min(1).meta({ description: 'The servers of this upstream; at least one.' }),
    healthCheck: healthCheck.optional(),
    outlierDetection: outlierDetection.optional(),
    panicThreshold: percent
      .optional()
      .meta({ description: 'When fewer than this share (%) of the endpoints are healthy, requests go to all of them rather than overload the few. 0 disables.' }),
    circuitBreaker: circuitBreaker.optional(),
    retries: retries.optional(),
    timeouts: timeouts.optional(),
    hostHeader: z
      .enum(['preserve', 'endpoint'])
      .optional()
      .meta({ description: "Host sent upstream: the client's (`preserve`) or the endpoint's host:port (`endpoint`)." }),
    connectionsPerEndpoint: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'Largest number of connections in each endpoint pool.' }),
    keepAliveTimeout: duration.optional().meta({ description: 'How long an idle pooled connection is kept.' }),
  })
  .meta({ description: 'A pool of endpoints.' });

export const configSchema = z
  .strictObject({
    listeners: z.record(z.string(), listener).meta({ description: 'Listening sockets by name; at least one is needed to serve anything.' }),
    routes: z
      .record(z.string(), route)
      .optional()
      .meta({ description: 'Routes by name. A request takes the matching route with the highest priority, then the most specific, then the first written.' }),
    upstreams: z
      .record(z.string(), upstream)
      .optional()
      .meta({ description: 'Upstreams (pools of endpoints) by name; routes refer to them by that name.' }),
    drainTimeout: duration
      .optional()
      .meta({ description: 'On shutdown and reload, how long in-flight requests may take to finish.' }),
  })
  .meta({ title: 'Switchboard configuration' });

/** The config as written (durations and sizes still strings, defaults not applied). */
export type RawConfig = z.infer<typeof configSchema>;
export type RawListener = z.infer<typeof listener>;
export type RawRoute = z.infer<typeof route>;
export type RawUpstream = z.infer<typeof upstream>;
export type RawTimeouts = z.infer<typeof timeouts>;
export type RawHealthCheck = z.infer<typeof healthCheck>;
export type RawListenerTls = z.infer<typeof listenerTls>;
export type RawUpstreamTls = z.infer<typeof upstreamTls>;
export type RawStringMatch = z.infer<typeof stringMatch>;
export type RawPathMatch = z.infer<typeof pathMatch>;

/** The JSON Schema of the config, for editors (`switchboard schema`). */
export function jsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
