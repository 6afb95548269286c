/**
 * The schema of one upstream: its endpoints and how they are balanced, active and passive health,
 * circuit breaking, retries, sticky sessions, TLS to the endpoints and the timeouts (which routes
 * may override). Shape only; `resolve-upstream.ts` checks and converts it.
 */
import { z } from 'zod';
import { BALANCER_NAMES } from './balancer-names.ts';
import { duration, pemFile, size, TOKEN_CHAR, TOKEN_PATTERN } from '../util/config-primitives.ts';

export const timeouts = z
  .strictObject({
    connect: duration.optional().meta({ description: 'Time to open a connection to an endpoint.' }),
    responseHeaders: duration.optional().meta({ description: 'Time from the request being sent to the response headers arriving.' }),
    bodyIdle: duration.optional().meta({ description: 'Longest silence between two chunks of the response body.' }),
    request: duration.optional().meta({ description: 'Whole-exchange limit, from the request arriving to the response ending. 0 disables.' }),
    tunnelIdle: duration
      .optional()
      .meta({ description: 'WebSocket and other upgraded connections: longest silence in both directions before the tunnel is closed. 0 disables.' }),
  })
  .meta({ description: 'Upstream timeouts. Set per upstream; a route may override any of them.' });

export const endpoint = z
  .strictObject({
    url: z.string().meta({
      description:
        'Endpoint origin, `http://host:port`, or `https://host:port` for TLS to the endpoint; `tcp://host:port` for upstreams of tcp listeners, `udp://host:port` for those of udp listeners.',
    }),
    weight: z.number().int().min(1).max(1000).optional().meta({ description: "Relative share of the upstream's requests, 1-1000." }),
  })
  .meta({ description: 'One server in an upstream.' });

const percent = z.number().min(0).max(100);

/** `header:NAME`, `cookie:NAME`, `query:NAME` or `path`. */
const HASH_KEY_PATTERN = new RegExp(`^(header:${TOKEN_CHAR}+|cookie:${TOKEN_CHAR}+|query:[^&=\\s]+|path)$`);

export const healthCheck = z
  .strictObject({
    type: z.enum(['http', 'tcp']).optional().meta({ description: '`http`: a request that must get an expected status (and body); `tcp`: a connection that must open.' }),
    method: z
      .string()
      .regex(/^[A-Z]+$/)
      .optional()
      .meta({ description: 'HTTP method of the check request.' }),
    path: z.string().optional().meta({ description: 'Path (and query) of the check request; starts with `/`.' }),
    host: z.string().optional().meta({ description: "Host header of the check request; the endpoint's host:port when absent." }),
    statuses: z
      .union([z.string(), z.array(z.union([z.number().int(), z.string()])).min(1)])
      .optional()
      .meta({ description: 'Statuses that count as healthy: `"200-399"`, or a list such as `[200, "300-308"]`.' }),
    bodyContains: z.string().optional().meta({ description: 'When set, the response body (first 64 KiB) must contain this text.' }),
    interval: duration.optional().meta({ description: 'Time between the end of one check and the start of the next.' }),
    timeout: duration.optional().meta({ description: 'Time one check may take; longer counts as a failure.' }),
    jitter: duration
      .optional()
      .meta({ description: 'Random extra delay, up to this much, added to each interval so checks of many endpoints spread out. Default: a tenth of the interval.' }),
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
    baseEjectionTime: duration
      .optional()
      .meta({ description: 'How long the first ejection lasts; each further ejection of the same endpoint lasts one base time more.' }),
    maxEjectionTime: duration.optional().meta({ description: 'Longest an ejection may last.' }),
    maxEjectedPercent: percent.optional().meta({ description: 'At most this share of the endpoints is ejected at once (at least one endpoint may always be).' }),
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
    perTryTimeout: duration
      .optional()
      .meta({ description: 'Time one try has to produce response headers before it is abandoned (and retried when allowed). 0 disables.' }),
    retryOn: z
      .array(z.enum(['reset', 'timeout']))
      .optional()
      .meta({ description: 'Failures after the request was sent that are retried, for idempotent methods without a body. Connect failures are always retried.' }),
    statuses: z
      .array(z.number().int().min(400).max(599))
      .optional()
      .meta({ description: 'Response statuses that are retried (the response is discarded), under the same rule as retryOn.' }),
    bodyBuffer: size.optional().meta({
      description:
        'Request bodies up to this size are kept until the response starts, so that a retry can send them again (Envoy buffers the same way); a larger body is streamed and, once sent, never retried. 0 disables.',
    }),
    nonIdempotent: z.boolean().optional().meta({
      description:
        "Also retry methods that are not idempotent (POST, PATCH) after the request was sent, as nginx's `proxy_next_upstream non_idempotent`: only when the endpoints tolerate a request arriving twice.",
    }),
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
      .regex(TOKEN_PATTERN)
      .meta({ description: 'Name of the cookie that pins a client to an endpoint. Its value is an opaque endpoint id, never the address.' }),
    ttl: duration.optional().meta({ description: 'Cookie lifetime (Max-Age); 0 makes it a session cookie.' }),
    path: z.string().optional().meta({ description: 'Cookie Path.' }),
    secure: z.boolean().optional().meta({ description: 'Mark the cookie Secure (sent over HTTPS only).' }),
    sameSite: z.enum(['Strict', 'Lax', 'None']).optional().meta({ description: 'Cookie SameSite attribute.' }),
  })
  .meta({
    description:
      'Session persistence: the first response sets a cookie naming its endpoint; later requests go there while it is available, and are balanced again when not.',
  });

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
    protocol: z.enum(['http1', 'h2', 'h2c']).optional().meta({
      description:
        'Protocol to the endpoints: `http1`, `h2` (HTTP/2 over TLS, https:// endpoints; ALPN) or `h2c` (HTTP/2 cleartext with prior knowledge, http:// endpoints).',
    }),
    tls: upstreamTls.optional(),
    proxyProtocol: z.enum(['v1', 'v2']).optional().meta({
      description: 'Send a PROXY protocol header (v1 text, v2 binary) with the client address at the start of each connection to an endpoint. tcp:// endpoints only.',
    }),
    balancer: z.enum(BALANCER_NAMES).optional().meta({ description: 'How requests are spread over the endpoints. See docs/balancing.md for how to choose.' }),
    hashKey: z
      .string()
      .regex(HASH_KEY_PATTERN)
      .optional()
      .meta({ description: 'consistent-hash only: what is hashed, `header:NAME`, `cookie:NAME`, `query:NAME` or `path`. A request without it is balanced at random.' }),
    hashTable: z.enum(['ring', 'maglev']).optional().meta({ description: 'ip-hash and consistent-hash: a weighted ring hash (`ring`) or a Maglev table (`maglev`).' }),
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
    connectionsPerEndpoint: z.number().int().min(1).optional().meta({ description: 'Largest number of connections in each endpoint pool.' }),
    keepAliveTimeout: duration.optional().meta({ description: 'How long an idle pooled connection is kept.' }),
  })
  .meta({ description: 'A pool of endpoints.' });

/** An upstream as written (durations still strings, defaults not applied). */
export type RawUpstream = z.infer<typeof upstream>;
/** Timeouts as written, an upstream's or a route's overrides. */
export type RawTimeouts = z.infer<typeof timeouts>;
/** An upstream's `healthCheck` as written. */
export type RawHealthCheck = z.infer<typeof healthCheck>;
/** An upstream's `tls` as written. */
export type RawUpstreamTls = z.infer<typeof upstreamTls>;
