/**
 * `content-filter`: refuses requests by URL and responses by media type or size, with 403
 * CONTENT_BLOCKED; cuts a body without a length that grows past `maxSize`. Made for forward
 * listeners (issue 15: content filtering on plain HTTP), it works on reverse-proxy routes alike.
 *
 * - Squid's `url_regex` / `urlpath_regex` ACLs (URL patterns, lists from files), `rep_mime_type`
 *   (a reply's Content-Type) and `reply_body_max_size` (a declared length refused before the
 *   reply goes out, a body without one cut once it passes the limit): the same three checks, in
 *   the same phases. Squid's regexes backtrack; here they run in V8's linear-time engine
 *   (util/linear-regexp.ts, EDGE-CASES 54), and prefixes and globs need no regex at all.
 * - Traefik `pkg/middlewares/ipallowlist` for the shape: `resolve` reads and compiles everything
 *   once per config load (files again on reload); the hooks only look up.
 *
 * Phases: `onRequest` (the URL; not for CONNECT, whose tunnel is opaque: nothing in it is seen),
 * `onResponse` (the upstream's head: type, declared length; our own answers pass), and
 * `onResponseBody` (counting, only for a response without a length and only with `maxSize`). A
 * filter has only the hooks its keys need, so a policy with `urls` alone costs no response phase.
 * Decisions go to `switchboard_policy_decisions_total` (events.ts): results `blocked_url`,
 * `blocked_type`, `blocked_size`, `cut_size`; requests let through are not published.
 */
import { Decisions } from '../events.ts';
import { ResponseCut, type Filter, type PolicyType, type Reply, type ResolveContext } from '../filter.ts';
import { readListFile, type ListFileKind } from '../list-file.ts';
import { parseSize } from '../../util/units.ts';
import { contentFilterConfig } from './config.ts';
import { BlockedTypes } from './media-types.ts';
import { requestUrl, UrlPatterns } from './url-patterns.ts';

/** A content-filter policy's config once resolved: patterns compiled, files read. Shared by the generations built from one load. */
export interface ResolvedContentFilter {
  /** URLs refused; undefined without `urls` and `urlFiles`. */
  readonly urls: UrlPatterns | undefined;
  /** Response media types refused; undefined without `types`. */
  readonly types: BlockedTypes | undefined;
  /** Bytes; undefined: no size limit. */
  readonly maxSize: number | undefined;
}

type Result = 'blocked_url' | 'blocked_type' | 'blocked_size' | 'cut_size';
const RESULTS: readonly Result[] = ['blocked_url', 'blocked_type', 'blocked_size', 'cut_size'];

/** The answers, built once and returned for every refusal (never mutated). They name the rule, never the URL (its query may hold credentials). */
function blocked(rule: 'url' | 'type' | 'size', message: string): Reply {
  return Object.freeze({ status: 403, error: Object.freeze({ code: 'CONTENT_BLOCKED', message: `${message} (content filter rule: ${rule})` }) });
}
const URL_BLOCKED = blocked('url', 'the request URL is blocked');
const TYPE_BLOCKED = blocked('type', 'the response media type is blocked');
const SIZE_BLOCKED = blocked('size', 'the response is larger than allowed');

/** A body without a length, counted as it streams (per request, in `s.local`). */
interface Counted {
  bytes: number;
}

/** The content-filter policy type (registered in src/policies/registry.ts). */
export const contentFilterPolicy = {
  type: 'content-filter',
  description:
    'Refuses requests by URL (prefixes, `*` globs, linear-time `~regex`es, inline or from files) and upstream responses by media type or size with 403 CONTENT_BLOCKED; a body without a length that grows past maxSize is cut. Not applied inside CONNECT tunnels. At least one of urls, urlFiles, types, maxSize is required.',
  config: contentFilterConfig,

  resolve(raw, ctx): ResolvedContentFilter {
    if (raw.urls === undefined && raw.urlFiles === undefined && raw.types === undefined && raw.maxSize === undefined) {
      ctx.problem({ path: [], expected: 'at least one of urls, urlFiles, types, maxSize', found: 'none of them' });
    }
    let types: BlockedTypes | undefined;
    if (raw.types !== undefined) {
      const t = new BlockedTypes();
      raw.types.forEach((text, i) => {
        if (!t.add(text)) ctx.problem({ path: ['types', i], expected: 'a media type `type/subtype` or `type/*`', found: JSON.stringify(text) });
      });
      types = t;
    }
    return { urls: compileUrls(raw.urls, raw.urlFiles, ctx), types, maxSize: raw.maxSize === undefined ? undefined : parseSize(raw.maxSize) };
  },

  create(config, deps) {
    const { urls, types, maxSize } = config;
    const decisions = new Decisions<Result>(deps.name, deps.type, RESULTS);
    const filter: Filter = {};
    if (urls !== undefined) {
      filter.onRequest = (s) => {
        const r = s.request;
        if (r.method === 'CONNECT') return undefined;
        if (!urls.matches(requestUrl(r.scheme, r.authority, r.path, r.query))) return undefined;
        decisions.publish('blocked_url');
        return URL_BLOCKED;
      };
    }
    if (types === undefined && maxSize === undefined) return filter;
    const key = {};
    filter.onResponse = (s, head) => {
      if (!head.fromUpstream) return undefined;
      if (types !== undefined) {
        const type = head.headers.get('content-type');
        if (type !== undefined && types.matches(type)) {
          decisions.publish('blocked_type');
          return TYPE_BLOCKED;
        }
      }
      if (maxSize === undefined || s.request.method === 'HEAD' || head.status === 204 || head.status === 304) return undefined;
      const length = head.headers.get('content-length');
      if (length === undefined) s.local<Counted>(key, { bytes: 0 });
      else if (Number(length) > maxSize) {
        decisions.publish('blocked_size');
        return SIZE_BLOCKED;
      }
      return undefined;
    };
    if (maxSize === undefined) return filter;
    return Object.assign(filter, {
      // Counts, never changes the bytes: the response keeps its Content-Length.
      bodyUnchanged: true,
      onResponseBody(s, chunk) {
        const counted = s.local<Counted>(key);
        if (counted === undefined) return undefined;
        counted.bytes += chunk.length;
        if (counted.bytes <= maxSize) return undefined;
        decisions.publish('cut_size');
        throw new ResponseCut('CONTENT_BLOCKED', `the response body grew past ${maxSize} bytes (content filter rule: size); cut`);
      },
    } satisfies Filter);
  },
} satisfies PolicyType<typeof contentFilterConfig, ResolvedContentFilter>;

const EXPECTED_PATTERN = 'a URL prefix, a `*` glob, or `~` and a regular expression that runs in linear time';
/** Bad lines reported per file; the rest are counted in one more problem. */
const URL_FILE: ListFileKind = { what: 'URL patterns', one: 'one URL pattern a line', expected: EXPECTED_PATTERN };

/** `urls` and the lines of `urlFiles`, compiled; undefined when neither key is given. */
function compileUrls(inline: readonly string[] | undefined, files: readonly string[] | undefined, ctx: ResolveContext): UrlPatterns | undefined {
  if (inline === undefined && files === undefined) return undefined;
  const patterns = new UrlPatterns();
  inline?.forEach((text, i) => {
    const reason = patterns.add(text);
    if (reason !== undefined) ctx.problem({ path: ['urls', i], expected: EXPECTED_PATTERN, found: `${JSON.stringify(text)} (${reason})` });
  });
  files?.forEach((file, i) => {
    readListFile(file, ['urlFiles', i], URL_FILE, ctx, (line) => patterns.add(line));
  });
  return patterns;
}
