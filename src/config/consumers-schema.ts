/**
 * The `consumers` section: who may call the API, with groups, metadata and credentials. Shape only;
 * `resolve-consumers.ts` hashes keys, checks password hashes and finds duplicates, and builds the
 * directory the authentication policies look credentials up in (src/policies/consumers.ts).
 */
import { z } from 'zod';
import { duration } from '../util/config-primitives.ts';

const apiKey = z
  .strictObject({
    type: z.literal('api-key').meta({ description: 'An API key (the `api-key` policy).' }),
    key: z.string().optional().meta({
      description:
        'The key itself, at least 16 characters (e.g. from `openssl rand -hex 24`), usually taken from an environment variable: it is hashed (SHA-256) at load and only the hash is kept. Exactly one of key and keyHash.',
    }),
    keyHash: z.string().optional().meta({ description: 'The key as `sha256:<64 hex digits>` (`printf %s "$KEY" | sha256sum`), so the config never holds the key.' }),
  })
  .meta({ title: 'api-key', description: 'An API key: presented in a header, a query parameter or a cookie.' });

const basic = z
  .strictObject({
    type: z.literal('basic').meta({ description: 'A username and password (the `basic-auth` policy).' }),
    username: z.string().min(1).meta({ description: 'The username; case-sensitive, unique across consumers, no `:`.' }),
    password: z.string().meta({
      description:
        "A bcrypt (`$2b$…`, `$2y$…`) or argon2 (`$argon2id$v=19$…`) hash of the password, never the password: `htpasswd -nbBC 12 USER 'PASSWORD'` prints `USER:<hash>`.",
    }),
  })
  .meta({ title: 'basic', description: 'A username and a password hash.' });

const jwt = z
  .strictObject({
    type: z.literal('jwt').meta({ description: 'A verified token (the `jwt` policy) whose subject maps to this consumer.' }),
    subject: z.string().min(1).meta({ description: 'The token’s `sub` claim.' }),
    issuer: z.string().optional().meta({ description: 'The token’s `iss`; any issuer the route trusts when absent.' }),
  })
  .meta({ title: 'jwt', description: 'A token subject.' });

export const credential = z.discriminatedUnion('type', [apiKey, basic, jwt]).meta({ description: 'A credential: `type` names its kind (api-key, basic, jwt).' });

/** One entry of a consumer's `limits`: its own numbers for one counting policy. */
export const limitOverride = z
  .strictObject({
    limit: z.union([z.number().int().positive(), z.literal('unlimited')]).meta({
      description:
        'The consumer’s own `limit` instead of the policy’s: requests per window (rate-limit), per period (quota) or in flight (concurrency-limit). `unlimited`: the policy lets the consumer’s requests through uncounted, without response fields.',
    }),
    window: duration.optional().meta({ description: 'rate-limit only: the window of this `limit`; default the policy’s.' }),
    burst: z
      .number()
      .int()
      .positive()
      .optional()
      .meta({ description: 'rate-limit only: the bucket’s size (mode delay: how many may wait per worker); default this override’s `limit`.' }),
  })
  .meta({ description: 'A consumer’s own numbers for one rate-limit, quota or concurrency-limit policy.' });

export const consumer = z
  .strictObject({
    groups: z.array(z.string()).optional().meta({ description: 'Groups the consumer belongs to, for `authorize` and the X-Consumer-Groups header.' }),
    metadata: z.record(z.string(), z.unknown()).optional().meta({ description: 'Free-form values (a plan, a team): usable in templates and logs; never secrets.' }),
    credentials: z.array(credential).optional().meta({
      description:
        'The consumer’s credentials, any number of each kind: `{ type: api-key, key }` (at least 16 characters; hashed at load) or `{ type: api-key, keyHash: "sha256:<hex>" }`; `{ type: basic, username, password }` with a bcrypt or argon2 hash as the password (`htpasswd -nbBC 12 USER PASSWORD`), never a plain one; `{ type: jwt, subject, issuer? }`. Ids such as `alice/api-key/0` (consumer, type, place in this list) name them in logs and rate limits.',
    }),
    limits: z.record(z.string(), limitOverride).optional().meta({
      description:
        'The consumer’s own limits, by policy name: `{ per-second: { limit: 100, window: 1s, burst: 200 }, monthly: { limit: 5000000 }, in-flight: { limit: unlimited } }`. Each key names a `rate-limit` (limit, window, burst), `quota` or `concurrency-limit` (limit only) policy; anything else is a config error. The consumer keeps its own count: when the policy’s `key` has no `consumer` or `credential` part, the consumer’s name is added to it for the consumer’s requests.',
    }),
  })
  .meta({ description: 'A consumer: a client of the API, known by its credentials.' });

/** A consumers file: the same map as the section, without `file`. */
export const consumersMap = z.record(z.string(), consumer);

export const consumersSection = z
  .record(
    z.string(),
    z.union([
      consumer,
      z.string().meta({
        description:
          'Under the key `file` only: a YAML or JSON file of more consumers in the same shape (a map of names to consumers), relative to the config file, read again on every reload (edit it, then reload).',
      }),
    ]),
  )
  .meta({
    description:
      'Consumers by name (letters, digits and `._@-`): the clients the authentication policies (api-key, basic-auth) identify. A route’s upstream gets the consumer’s name and groups in headers; the access log has its name. `file: users.yaml` adds the consumers of a file.',
  });

export type RawConsumer = z.infer<typeof consumer>;
export type RawCredential = z.infer<typeof credential>;
