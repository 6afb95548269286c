/**
 * The `content-filter` policy's keys (the config schema adds `type: content-filter`). What zod
 * cannot check (each URL pattern and media type, the regexes' linear-time form, the files) is
 * checked by `resolve` in index.ts. The lists follow Squid's `url_regex` and `rep_mime_type` ACLs
 * and its `reply_body_max_size`; files, like Squid's `"/path"` ACL values, hold one pattern a line.
 */
import { z } from 'zod';
import { size } from '../../util/config-primitives.ts';

/** The raw `policies.<name>` map of a content-filter policy, before resolve. */
export const contentFilterConfig = z.strictObject({
  urls: z.array(z.string().min(1)).optional().meta({
    description:
      'Request URLs refused with 403 CONTENT_BLOCKED. The URL is `scheme://host[:port]/path?query` (the forward proxy’s absolute-form target; on a reverse-proxy route the listener’s scheme, Host and path), scheme and host lower-cased, a default port dropped, the path normalised. A pattern is a prefix (`http://ads.example/`), a glob where `*` is any run of characters and the whole URL must match (`*.exe`, `http://*.example/banner/*`), or `~` and a regular expression searched anywhere in the URL (`~^http://[^/]+/dl/[0-9]+$`). Prefixes and globs compare case-insensitively; without `://` they are matched against the URL after its `scheme://`. Regexes are case-sensitive and must run in linear time (no backreferences or lookarounds): they are compiled by V8’s non-backtracking engine.',
  }),
  urlFiles: z.array(z.string()).optional().meta({
    description:
      'Files adding to urls, relative to the config file: one pattern a line, in the forms of urls; blank lines ignored, `#` to the end of a line is a comment (a URL never holds a `#`: the fragment is not sent). Read on every config load and reload; editing a file alone does not reload.',
  }),
  types: z.array(z.string()).optional().meta({
    description:
      'Response media types refused with 403 CONTENT_BLOCKED before the head goes out (the upstream’s body is not read): `type/subtype` or `type/*`, case-insensitive, parameters of the response’s Content-Type ignored. A response without Content-Type passes.',
  }),
  maxSize: size.optional().meta({
    description:
      'The largest response body let through. A declared Content-Length above it is refused with 403 CONTENT_BLOCKED before the head goes out; a body without a length (chunked, or read to the close) that grows past it is cut: the head already went out, so the response is aborted (HTTP/1.1: the connection closed before the body’s end; HTTP/2: RST_STREAM) and the access log shows its status with error CONTENT_BLOCKED. Counted as it streams, never buffered.',
  }),
});

/** A content-filter policy's keys as written (validated by zod, not yet resolved). */
export type RawContentFilterConfig = z.infer<typeof contentFilterConfig>;
