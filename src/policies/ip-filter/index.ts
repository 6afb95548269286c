/**
 * `ip-filter`: lets a request through or refuses it (403 IP_FORBIDDEN) by its client address, the
 * address after trusted-proxy resolution (`s.client.ip`), against allow and deny lists of CIDR
 * ranges written inline or read from files.
 *
 * - Traefik `pkg/middlewares/ipallowlist`: `New()` parses the ranges once, before the first
 *   request; the request path only looks up. Here `resolve` reads and compiles the lists once per
 *   config load (so files are read again on reload), and `onRequest` parses one address and does at
 *   most two binary searches, without allocating for IPv4.
 * - nginx `allow`/`deny`: nginx takes the first rule that matches, in the order written. Here deny
 *   always wins, whatever the order: the same as nginx with every `deny` before every `allow`, and
 *   a final `deny all` when there is an allow list.
 * - HAProxy `acl ... src -f file`: networks from a file, one a line, `#` comments; HAProxy keeps
 *   them in a tree, here they are sorted ranges (src/util/address-ranges.ts).
 */
import type { PolicyType, Reply, ResolveContext } from '../filter.ts';
import { readListFile, type ListFileKind } from '../list-file.ts';
import { AddressRanges, parseAddressRange, type AddressRange } from '../../util/address-ranges.ts';
import { ParsedAddress } from '../../util/ip-address.ts';
import { ipFilterConfig } from './config.ts';

/** An ip-filter policy's config once resolved: the lists compiled, files read. Shared by the generations built from one load. */
export interface ResolvedIpFilter {
  /** Addresses let through; undefined when there is no allow list (then all that is not denied passes). */
  readonly allow: AddressRanges | undefined;
  /** Addresses refused even when allowed; undefined when there is no deny list. */
  readonly deny: AddressRanges | undefined;
}

/** The one answer to a refused address, built once and returned for every refusal (never mutated). */
const FORBIDDEN: Reply = Object.freeze({
  status: 403,
  error: Object.freeze({ code: 'IP_FORBIDDEN', message: 'the client address is not allowed here' }),
});

const EXPECTED_RANGE = 'an IP address or CIDR range, e.g. 10.0.0.0/8 or 2001:db8::/32';
/** Bad lines reported per file; the rest are counted in one more problem. */
const RANGE_FILE: ListFileKind = { what: 'addresses or CIDR ranges', one: 'one address or CIDR range a line', expected: EXPECTED_RANGE };

/** The ip-filter policy type (registered in src/policies/registry.ts). */
export const ipFilterPolicy = {
  type: 'ip-filter',
  description:
    'Allows or refuses requests by client address (after trusted proxies) with allow and deny CIDR lists, inline or from files; deny wins over allow; a refusal is 403 IP_FORBIDDEN. At least one list is required.',
  config: ipFilterConfig,

  resolve(raw, ctx): ResolvedIpFilter {
    if (raw.allow === undefined && raw.allowFiles === undefined && raw.deny === undefined && raw.denyFiles === undefined) {
      ctx.problem({ path: [], expected: 'at least one of allow, allowFiles, deny, denyFiles', found: 'none of them' });
    }
    return {
      allow: compileList(raw.allow, raw.allowFiles, 'allow', ctx),
      deny: compileList(raw.deny, raw.denyFiles, 'deny', ctx),
    };
  },

  create(config) {
    const { allow, deny } = config;
    // One parse buffer per filter: onRequest is synchronous, so requests never share it at once.
    const address = new ParsedAddress();
    return {
      onRequest(s) {
        // An address that does not parse (the pipeline should never hand one over) is refused.
        if (!address.parse(s.client.ip)) return FORBIDDEN;
        if (deny?.includes(address)) return FORBIDDEN;
        if (allow !== undefined && !allow.includes(address)) return FORBIDDEN;
        return undefined;
      },
    };
  },
} satisfies PolicyType<typeof ipFilterConfig, ResolvedIpFilter>;

/** One list (allow or deny): its inline entries and its files' lines, compiled; undefined when neither key is given. */
function compileList(inline: readonly string[] | undefined, files: readonly string[] | undefined, key: 'allow' | 'deny', ctx: ResolveContext): AddressRanges | undefined {
  if (inline === undefined && files === undefined) return undefined;
  const ranges: AddressRange[] = [];
  inline?.forEach((text, i) => {
    const range = parseAddressRange(text);
    if (range) ranges.push(range);
    else ctx.problem({ path: [key, i], expected: EXPECTED_RANGE, found: JSON.stringify(text) });
  });
  files?.forEach((file, i) => {
    readListFile(file, [`${key}Files`, i], RANGE_FILE, ctx, (line) => {
      const range = parseAddressRange(line);
      if (range === undefined) return '';
      ranges.push(range);
      return undefined;
    });
  });
  return new AddressRanges(ranges);
}
