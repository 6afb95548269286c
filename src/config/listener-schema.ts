/**
 * The schema of one listener: its address and protocol, TLS termination (certificates by SNI,
 * mutual TLS), HTTP/2 limits, HSTS, udp sessions, the PROXY protocol and the client-side limits
 * and timeouts. Shape only; `resolve-listener.ts` checks and converts it.
 */
import { z } from 'zod';
import { forwardSettings } from './forward-schema.ts';
import { policyList } from './policy-schema.ts';
import { hstsPolicy } from '../policies/registry.ts';
import { cidrList, duration, headerName, pemFile, size } from '../util/config-primitives.ts';

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
    ciphers: z.string().optional().meta({ description: "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed). Default: Node's (forward-secret AEAD first)." }),
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
        subjectHeader: headerName.optional().meta({ description: "Request header that carries the verified client certificate's subject to the upstream." }),
        fingerprintHeader: headerName
          .optional()
          .meta({ description: "Request header that carries the verified client certificate's SHA-256 fingerprint (hex) to the upstream." }),
      })
      .optional()
      .meta({ description: 'Mutual TLS: verify client certificates. Client-sent copies of the two headers are always removed.' }),
  })
  .meta({ description: 'TLS termination settings of an https listener.' });

export const http2Settings = z
  .strictObject({
    maxConcurrentStreams: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .optional()
      .meta({ description: 'Streams a client may have open at once on one connection; more are refused (REFUSED_STREAM).' }),
    initialWindowSize: size.optional().meta({ description: 'Flow-control window of each stream (how much a client may send before we read).' }),
    connectionWindowSize: size.optional().meta({ description: 'Flow-control window of the whole connection.' }),
    maxResets: z.number().int().min(1).optional().meta({
      description: 'Streams a client may reset (RST_STREAM) within resetWindow before the connection is closed with GOAWAY (HTTP/2 rapid reset, CVE-2023-44487).',
    }),
    resetWindow: duration.optional().meta({ description: 'The window maxResets counts over.' }),
  })
  .meta({ description: 'HTTP/2 limits for clients (https listeners with h2 in ALPN, and h2c). Header list size is maxHeaderSize.' });

/** The listener shorthand for an `hsts` policy: that policy type's own keys. */
export const hsts = hstsPolicy.config.meta({
  description: 'https listeners: add Strict-Transport-Security to responses, unless the upstream set one (a shorthand for an `hsts` policy on the listener).',
});

export const udpSettings = z
  .strictObject({
    sessionIdle: duration.optional().meta({
      description:
        'A session (one client address:port, one endpoint) ends after this long without a datagram either way; the next datagram from that client starts a new one, balanced again.',
    }),
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
    address: z.string().meta({ description: 'host:port to listen on, e.g. `127.0.0.1:8080`, `[::1]:8080`, `:8080`; port 0 picks a free one.' }),
    protocol: z.enum(['http', 'https', 'tcp', 'tls', 'tls-passthrough', 'udp', 'forward', 'socks5']).meta({
      description:
        "`http` (plain; HTTP/1.1, and HTTP/2 with h2c), `https` (TLS; HTTP/1.1 and HTTP/2 by ALPN), `tcp` (layer 4: each connection to an endpoint of `upstream`, bytes untouched), `tls` (layer 4 behind TLS termination: the `tls` certificates as for https, plain TCP to the endpoints), `tls-passthrough` (layer 4 routed by the ClientHello's server name, see `sni`; TLS is not terminated, so the endpoint's own certificate is what clients see) `udp` (datagrams: each client address is a session held by one endpoint of `upstream`), `forward` (a forward proxy: HTTP absolute-form requests and CONNECT tunnels, see `forward`) or `socks5` (a SOCKS5 proxy, RFC 1928, see `forward`).",
    }),
    upstream: z.string().optional().meta({
      description:
        'tcp and tls listeners: the upstream (with tcp:// endpoints) connections are balanced over. Its timeouts.connect bounds each dial, timeouts.tunnelIdle closes silent connections. tls-passthrough listeners: the upstream for clients whose server name (or lack of one) matches no `sni` entry; without it they are closed. udp listeners: the upstream (with udp:// endpoints) sessions are balanced over.',
    }),
    sni: z.record(z.string(), z.string()).optional().meta({
      description:
        'tls-passthrough listeners: server name (SNI of the ClientHello) to the upstream (with tcp:// endpoints) its connections go to. Matched case-insensitively: the exact name first, then a `*.example.com` wildcard one label up.',
    }),
    udp: udpSettings.optional(),
    tls: listenerTls.optional().meta({ description: 'TLS settings; required for https and tls listeners.' }),
    h2c: z.boolean().optional().meta({
      description:
        'http and forward listeners: also accept HTTP/2 with prior knowledge (cleartext) on the same port (on a forward listener: CONNECT streams, RFC 9113 §8.5).',
    }),
    http2: http2Settings.optional(),
    httpsRedirect: z
      .union([
        z.boolean(),
        z.strictObject({ port: z.number().int().min(1).max(65535).optional().meta({ description: 'Port of the https URL; 443 is left out of it.' }) }),
      ])
      .optional()
      .meta({ description: 'http listeners: answer every request with a 308 redirect to the same host, path and query over https.' }),
    hsts: hsts.optional(),
    proxyProtocol: z
      .strictObject({
        trusted: cidrList.min(1).meta({ description: 'Peers allowed to send a PROXY header (load balancers in front); a connection from any other address is refused.' }),
        timeout: duration.optional().meta({ description: 'Time the PROXY header has to arrive in full; past it, or when it is malformed, the connection is closed.' }),
      })
      .optional()
      .meta({
        description:
          'Accept the PROXY protocol (v1 and v2) at the start of every connection, so that the real client address reaches routing, ip-hash, logs and forwarding headers. The header is then required.',
      }),
    trustedProxies: cidrList
      .optional()
      .meta({ description: 'Peers whose X-Forwarded-* and Forwarded headers are trusted and extended; from anyone else they are replaced.' }),
    headerTimeout: duration.optional().meta({ description: 'Time a client has to send the whole request header block (slowloris guard) before 408.' }),
    requestTimeout: duration.optional().meta({
      description:
        'Time a client has to send the whole request, headers and body (slow-upload guard); past it the connection is closed (408 when nothing was answered yet). At least headerTimeout; 0 disables.',
    }),
    sendTimeout: duration.optional().meta({
      description:
        'Time a client may take to accept more of its response once its connection is full (a client that stops reading); past it the connection and the upstream request are closed. 0 disables.',
    }),
    policyTimeout: duration.optional().meta({
      description:
        'http and https listeners: time a policy may take to decide (an async hook: a token introspection, a shared rate-limit counter); past it the request gets 503 POLICY_TIMEOUT, the policy named in the log. 0 disables.',
    }),
    keepAliveTimeout: duration.optional().meta({ description: 'Idle time before a keep-alive client connection is closed.' }),
    maxHeaderSize: size.optional().meta({ description: 'Largest request header block; larger gets 431.' }),
    maxConnections: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .meta({ description: 'Open client connections this listener accepts at once; past it new ones get 503 and are closed. 0 means no limit.' }),
    maxConnectionsPerClient: z.number().int().nonnegative().optional().meta({
      description:
        'Open connections one client address may hold at once; past it its new ones get 503 and are closed. 0 means no limit (the default: behind a NAT or another proxy many clients share an address).',
    }),
    maxRequestsPerConnection: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .meta({ description: 'Requests served on one keep-alive connection before it is closed. 0 means no limit.' }),
    reusePort: z.boolean().optional().meta({
      description:
        'Bind with SO_REUSEPORT so that other processes (another Switchboard instance) may listen on the same address and share its connections. Off by default: a second instance on a used address is refused with a clear error. With workers, each worker then binds its own socket instead of sharing the one the supervisor holds.',
    }),
    headersWithUnderscores: z
      .enum(['allow', 'drop', 'reject'])
      .optional()
      .meta({ description: 'What to do with request header names containing `_`: pass them, drop them (as nginx does), or answer 400.' }),
    policies: policyList.optional().meta({
      description:
        "http and https listeners: policies run for every request before routing, in order (then the route's). Their response phases apply to every response, the gateway's own errors included. socks5 listeners: basic-auth policies only, whose credentials RFC 1929 username/password authentication checks (none: no authentication, on a loopback address only unless `forward.allowUnauthenticated`). forward listeners (no routes): every request's only policies, of any type (authentication answers 407 there).",
    }),
    forward: forwardSettings.optional().meta({ description: 'forward and socks5 listeners: access rules, safe defaults, resolver, anonymity, parents.' }),
  })
  .meta({ description: 'A listening socket.' });

/** A listener as written (durations and sizes still strings, defaults not applied). */
export type RawListener = z.infer<typeof listener>;
/** A listener's `tls` as written. */
export type RawListenerTls = z.infer<typeof listenerTls>;
