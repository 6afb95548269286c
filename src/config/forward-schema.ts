/**
 * The schema of a forward-proxy listener's `forward:` section (`protocol: forward` and
 * `protocol: socks5`): the ordered access rules, the built-in safe defaults that follow them, the
 * resolver, anonymity and Via, parent proxies. Shape only; `resolve-forward.ts` checks and converts
 * it. Squid's http_access, Safe_ports and SSL_ports are the model.
 */
import { z } from 'zod';
import { cidrList, duration } from '../util/config-primitives.ts';
import { BALANCER_NAMES } from './balancer-names.ts';
import { healthCheck } from './upstream-schema.ts';

const portSpec = z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d{1,5}-\d{1,5}$/)]).meta({ description: 'A port, or a range such as `"1025-65535"`.' });

export const forwardRule = z
  .strictObject({
    name: z.string().optional().meta({ description: 'A name for the access log and metrics (default: `rules[i]`).' }),
    action: z.enum(['allow', 'deny']).meta({ description: 'What a request that matches every condition given gets. The first matching rule wins.' }),
    clients: cidrList.optional().meta({ description: 'Client addresses or CIDR ranges.' }),
    consumers: z.array(z.string()).optional().meta({ description: 'Authenticated consumers (by name), as the listener policies identified them.' }),
    groups: z.array(z.string()).optional().meta({ description: 'Consumer groups; any one of them matches.' }),
    domains: z.array(z.string()).optional().meta({
      description:
        'Destination names: `example.com` (exactly), `*.example.com` (any name under it, not itself), `~regex` (a regular expression on the whole name, case-insensitive).',
    }),
    domainFiles: z.array(z.string()).optional().meta({
      description:
        'Files of destination names, relative to the config file: one name (or `*.suffix`) per line, or hosts format (`0.0.0.0 name`); `#` comments. Reloaded with the config; looked up in O(1) per label.',
    }),
    destinations: cidrList.optional().meta({ description: 'Destination addresses or CIDR ranges, matched against every resolved address.' }),
    ports: z.array(portSpec).optional().meta({ description: 'Destination ports.' }),
    methods: z.array(z.string()).optional().meta({ description: 'Request methods (`CONNECT` for tunnels, `UDP` for SOCKS UDP ASSOCIATE).' }),
    schemes: z
      .array(z.enum(['http', 'https', 'udp']))
      .optional()
      .meta({ description: '`http` (absolute-form requests), `https` (CONNECT tunnels, HTTP or SOCKS), `udp` (SOCKS UDP).' }),
    time: z
      .strictObject({
        from: z
          .string()
          .regex(/^([01]\d|2[0-3]):[0-5]\d$/)
          .meta({ description: 'Start, `HH:MM` (inclusive).' }),
        to: z
          .string()
          .regex(/^([01]\d|2[0-3]):[0-5]\d$/)
          .meta({ description: 'End, `HH:MM` (exclusive); before `from` means the span crosses midnight.' }),
        days: z
          .array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']))
          .optional()
          .meta({ description: 'Days of the week (default: every day).' }),
        zone: z.enum(['local', 'utc']).optional().meta({ description: "Clock the times are read on: the machine's local time (default) or UTC." }),
      })
      .optional()
      .meta({ description: 'Time of day (and days of the week) when the rule applies.' }),
  })
  .meta({ description: 'One access rule: every condition given must hold for it to match.' });

/** An upstream's `healthCheck` keys that mean something for a proxy: a TCP connect to each parent, on the same schedule keys. */
export const parentHealthCheck = healthCheck
  .pick({ interval: true, timeout: true, jitter: true, rise: true, fall: true, initialState: true })
  .extend({
    type: z.enum(['tcp']).optional().meta({ description: '`tcp` (the only type, the default): a connection to the parent’s host and port must open.' }),
  })
  .meta({
    description:
      'Active health checks of this entry’s parents, run once per parent for the machine: a parent that fails `fall` checks in a row gets no tunnels until it passes `rise`. Defaults as an upstream’s healthCheck (interval 5s, timeout 2s, rise 2, fall 3).',
  });

export const forwardParent = z
  .strictObject({
    url: z
      .union([z.string(), z.array(z.string()).min(1)])
      .meta({ description: 'The parent proxy: `http://[user:pass@]host:port` (CONNECT) or `socks5://[user:pass@]host:port`; several are balanced and health-checked.' }),
    domains: z.array(z.string()).optional().meta({ description: 'Destination names sent through this parent (as in rules); none = every destination.' }),
    balance: z.enum(BALANCER_NAMES).optional().meta({ description: 'Balancing algorithm among several parents (the upstream algorithms; default round-robin).' }),
    healthCheck: parentHealthCheck.optional(),
  })
  .meta({ description: 'A parent (upstream) forward proxy that some destinations go through.' });

export const forwardSettings = z
  .strictObject({
    rules: z
      .array(forwardRule)
      .optional()
      .meta({ description: 'Ordered access rules; the first that matches decides. After them the built-in safe defaults apply, then allow.' }),
    safePorts: z
      .array(portSpec)
      .optional()
      .meta({ description: "Ports any request may go to (Squid's Safe_ports). Default: 80, 21, 443, 70, 210, 1025-65535, 280, 488, 591, 777." }),
    connectPorts: z.array(portSpec).optional().meta({ description: "Ports a CONNECT tunnel may go to (Squid's SSL_ports). Default: 443." }),
    connectToHttp: z.boolean().optional().meta({
      description:
        "Let CONNECT reach port 80 too: clients such as undici's ProxyAgent and Node 24's NODE_USE_ENV_PROXY tunnel http:// URLs through CONNECT. Off by default (Squid denies CONNECT outside SSL_ports).",
    }),
    anonymity: z.enum(['transparent', 'anonymous', 'elite']).optional().meta({
      description: '`transparent` adds X-Forwarded-For and Forwarded; `anonymous` (default) adds Via but no client address; `elite` adds neither.',
    }),
    via: z
      .union([z.boolean(), z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/)])
      .optional()
      .meta({ description: 'Add a Via header (RFC 9110 §7.6.3) with this pseudonym (default `switchboard`); false: none (except that elite adds none anyway).' }),
    resolver: z
      .strictObject({
        servers: z
          .array(z.string())
          .min(1)
          .optional()
          .meta({ description: "DNS servers (`ip` or `ip:port`) to resolve destinations with; default: the system's resolver (getaddrinfo)." }),
        timeout: duration.optional().meta({ description: 'How long a lookup may take before the request gets 502 DESTINATION_UNRESOLVED (default 5s).' }),
        maxTtl: duration.optional().meta({
          description:
            'The longest a worker reuses an answer (default 30s; 0: resolve for every request). Answers from `servers` live at most their DNS TTL; the system resolver gives none, so its answers live this long. Every address is checked on every request, cached or not.',
        }),
      })
      .optional()
      .meta({ description: 'How destination names are resolved (once per request; the checked addresses are connected to).' }),
    connectTimeout: duration.optional().meta({ description: 'How long connecting to a destination may take (default 10s).' }),
    tunnelIdleTimeout: duration.optional().meta({ description: 'A tunnel with no bytes either way for this long is closed (default 5m; 0: never).' }),
    parent: z
      .union([forwardParent, z.array(forwardParent)])
      .optional()
      .meta({ description: 'Parent proxies: destinations they name go through them, the rest go direct.' }),
    pac: z
      .union([
        z.boolean(),
        z.strictObject({
          proxy: z
            .string()
            .optional()
            .meta({ description: 'The `PROXY host:port` the file tells browsers to use (default: this listener as the request reached it, by its Host header).' }),
          direct: z.array(z.string()).optional().meta({
            description:
              'Names browsers reach without the proxy (intranet hosts): `name` exactly or `*.name` for any name under it. Plain host names and loopback are always direct.',
          }),
        }),
      ])
      .optional()
      .meta({
        description: 'Serve a proxy auto-config file at /proxy.pac (and /wpad.dat) on this listener, generated from the rules (default true on forward listeners).',
      }),
    allowUnauthenticated: z.boolean().optional().meta({
      description:
        'socks5 listeners without an authentication policy in `policies`: serve clients without credentials (SOCKS method 0x00) although the listener’s address is not a loopback one, i.e. an open proxy for whoever reaches the address (restrict it with rules on `clients`). Default false: such a listener must listen on loopback only, or be given a basic-auth policy.',
    }),
  })
  .meta({ description: 'Forward-proxy settings (protocol forward and socks5).' });

export type RawForward = z.infer<typeof forwardSettings>;
export type RawForwardRule = z.infer<typeof forwardRule>;
