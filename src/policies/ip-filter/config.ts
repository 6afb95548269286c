/**
 * The `ip-filter` policy's keys (the config schema adds `type: ip-filter`). What zod cannot check,
 * that every entry is an address or a CIDR range and that each file reads, `resolve` in index.ts
 * checks. Lists follow nginx's `allow`/`deny` and HAProxy's `src` ACL, whose `-f` loads a file of
 * networks, one a line.
 */
import { z } from 'zod';
import { cidrList } from '../../util/config-primitives.ts';

const files = z.array(z.string());

/** The raw `policies.<name>` map of an ip-filter policy, before resolve. */
export const ipFilterConfig = z.strictObject({
  allow: cidrList.optional().meta({
    description:
      'Client addresses let through, as addresses or CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`); with an allow list (here or in allowFiles), every other address is refused with 403 IP_FORBIDDEN. IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`) means its IPv4 range; IPv6 ranges match only IPv6 clients (`::/0` does not cover IPv4).',
  }),
  deny: cidrList.optional().meta({
    description: 'Client addresses refused with 403 IP_FORBIDDEN, even when an allow list holds them too (deny wins). With only deny lists, every other address passes.',
  }),
  allowFiles: files.optional().meta({
    description:
      'Files adding to allow, relative to the config file: one address or CIDR range a line; blank lines and `#` comments ignored. Read on every config load and reload; editing a list file alone does not reload. An allow list that ends up empty refuses everyone.',
  }),
  denyFiles: files.optional().meta({
    description: 'Files adding to deny, in the format of allowFiles, read on every config load and reload.',
  }),
});

/** An ip-filter policy's keys as written (validated by zod, not yet resolved). */
export type RawIpFilterConfig = z.infer<typeof ipFilterConfig>;
