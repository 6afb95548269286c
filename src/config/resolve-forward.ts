/**
 * The `forward:` section of a forward or socks5 listener: ports and times parsed, defaults applied,
 * domain files read (relative to the config file). The rules are compiled for the hot path later,
 * per generation, by forward/rules.ts.
 */
import { isIP } from 'node:net';
import { parseAddressRange } from '../util/address-ranges.ts';
import { parseDuration } from '../util/units.ts';
import { checkDomainPattern, readDomainFile } from './domain-file.ts';
import type { RawForward, RawForwardRule } from './forward-schema.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
import { parseParentUrl } from './parent-url.ts';
import { healthCheckConfig } from './resolve-upstream.ts';
import type { ForwardConfig, ForwardParentConfig, ForwardRuleConfig, PortRange } from './types.ts';

/** Squid's default Safe_ports. */
const SAFE_PORTS: readonly (number | string)[] = [80, 21, 443, 70, 210, '1025-65535', 280, 488, 591, 777];
/** Squid's default SSL_ports. */
const CONNECT_PORTS: readonly (number | string)[] = [443];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

function ports(list: readonly (number | string)[], at: KeyPath, problems: Problem[]): PortRange[] {
  const out: PortRange[] = [];
  list.forEach((p, i) => {
    if (typeof p === 'number') {
      out.push({ from: p, to: p });
      return;
    }
    const [a, b] = p.split('-').map(Number);
    if (!(a >= 1 && b <= 65535 && a <= b)) problems.push({ path: [...at, i], expected: 'a port range `from-to` within 1-65535, from ≤ to', found: show(p) });
    else out.push({ from: a, to: b });
  });
  return out;
}

/** A rule's `domains` checked and lower-cased, its `domainFiles` read and appended; undefined when it gives neither. */
function domains(rule: RawForwardRule, at: KeyPath, baseDir: string, problems: Problem[]): string[] | undefined {
  if (rule.domains === undefined && rule.domainFiles === undefined) return undefined;
  const out: string[] = [];
  rule.domains?.forEach((d, i) => {
    const p = checkDomainPattern(d, [...at, 'domains', i], problems);
    if (p !== undefined) out.push(p);
  });
  rule.domainFiles?.forEach((file, i) => {
    readDomainFile(file, baseDir, [...at, 'domainFiles', i], out, problems);
  });
  return out;
}

/** Addresses or CIDR ranges as the forward rules read them (util/address-ranges.ts: no shorthands, no zones). */
function ranges(list: string[] | undefined, at: KeyPath, problems: Problem[]): string[] | undefined {
  list?.forEach((text, i) => {
    if (!parseAddressRange(text)) problems.push({ path: [...at, i], expected: 'an IP address or CIDR range (`10.0.0.0/8`, `::1`)', found: show(text) });
  });
  return list;
}

/** DNS servers as node:dns `setServers` takes them: `ip`, `ip:port`, `[ipv6]:port`. */
function servers(list: string[], at: KeyPath, problems: Problem[]): string[] {
  list.forEach((text, i) => {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
    const host = m ? (m[1] ?? m[2]) : text;
    const port = m ? Number(m[3]) : 53;
    const ok = (m?.[1] !== undefined ? isIP(host) === 6 : isIP(host) !== 0) && port >= 1 && port <= 65535;
    if (!ok) problems.push({ path: [...at, i], expected: 'a DNS server address: `ip`, `ipv4:port` or `[ipv6]:port`', found: show(text) });
  });
  return list;
}

function minutes(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

/** A host name (letters, digits, hyphens, dots), an IPv4 literal, or a bracketed IPv6 literal, then `:port`. */
const PROXY_HOST_PORT = /^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\]):(\d{1,5})$/i;

function resolvePac(pac: { proxy?: string | undefined; direct?: string[] | undefined }, at: KeyPath, problems: Problem[]): ForwardConfig['pac'] {
  const m = pac.proxy === undefined ? null : PROXY_HOST_PORT.exec(pac.proxy);
  if (pac.proxy !== undefined && (m === null || Number(m[5]) < 1 || Number(m[5]) > 65535)) {
    problems.push({ path: [...at, 'proxy'], expected: 'host:port (a name, an IPv4 address or [IPv6], port 1-65535)', found: show(pac.proxy) });
  }
  // Host names only (no `~regex`): nothing in them can be read as code in the PAC file, which escapes them all the same.
  const direct: string[] = [];
  pac.direct?.forEach((d, i) => {
    if (d.startsWith('~')) {
      problems.push({ path: [...at, 'direct', i], expected: 'a host name or `*.` and a host name (no regular expressions in a PAC file)', found: show(d) });
      return;
    }
    const pattern = checkDomainPattern(d, [...at, 'direct', i], problems);
    if (pattern !== undefined) direct.push(pattern);
  });
  return { proxy: pac.proxy, direct };
}

/** Checks and converts one listener's `forward:` (absent = every default). */
export function resolveForward(raw: RawForward | undefined, at: KeyPath, baseDir: string, problems: Problem[]): ForwardConfig {
  const r = raw ?? {};
  const rules: ForwardRuleConfig[] = (r.rules ?? []).map((rule, i) => ({
    name: rule.name ?? `rules[${i}]`,
    action: rule.action,
    clients: ranges(rule.clients, [...at, 'rules', i, 'clients'], problems),
    consumers: rule.consumers,
    groups: rule.groups,
    domains: domains(rule, [...at, 'rules', i], baseDir, problems),
    destinations: ranges(rule.destinations, [...at, 'rules', i, 'destinations'], problems),
    ports: rule.ports === undefined ? undefined : ports(rule.ports, [...at, 'rules', i, 'ports'], problems),
    methods: rule.methods?.map((m) => m.toUpperCase()),
    schemes: rule.schemes,
    time:
      rule.time === undefined
        ? undefined
        : {
            from: minutes(rule.time.from),
            to: minutes(rule.time.to),
            days: (rule.time.days ?? DAYS).map((d) => DAYS.indexOf(d)),
            utc: rule.time.zone === 'utc',
          },
  }));
  const parents = r.parent === undefined ? [] : Array.isArray(r.parent) ? r.parent : [r.parent];
  return {
    rules,
    safePorts: ports(r.safePorts ?? SAFE_PORTS, [...at, 'safePorts'], problems),
    connectPorts: ports(r.connectPorts ?? CONNECT_PORTS, [...at, 'connectPorts'], problems),
    connectToHttp: r.connectToHttp ?? false,
    anonymity: r.anonymity ?? 'anonymous',
    via: r.via === false ? undefined : r.via === undefined || r.via === true ? 'switchboard' : r.via,
    resolverServers: servers(r.resolver?.servers ?? [], [...at, 'resolver', 'servers'], problems),
    resolverTimeout: parseDuration(r.resolver?.timeout ?? '5s'),
    resolverMaxTtl: parseDuration(r.resolver?.maxTtl ?? '30s'),
    connectTimeout: parseDuration(r.connectTimeout ?? '10s'),
    tunnelIdleTimeout: parseDuration(r.tunnelIdleTimeout ?? '5m'),
    parents: parents.flatMap((p, i): ForwardParentConfig[] => {
      const entryAt = Array.isArray(r.parent) ? [...at, 'parent', i] : [...at, 'parent'];
      const urls = Array.isArray(p.url) ? p.url : [p.url];
      const proxies = urls.map((u, j) => parseParentUrl(u, Array.isArray(p.url) ? [...entryAt, 'url', j] : [...entryAt, 'url'], problems));
      const checked = proxies.filter((x) => x !== undefined);
      if (checked.length < proxies.length) return [];
      const domains: string[] = [];
      p.domains?.forEach((d, j) => {
        const pattern = checkDomainPattern(d, [...entryAt, 'domains', j], problems);
        if (pattern !== undefined) domains.push(pattern);
      });
      // The upstream healthCheck's checks and defaults; a parent is checked with a TCP connect.
      const healthCheck = p.healthCheck === undefined ? undefined : healthCheckConfig({ ...p.healthCheck, type: 'tcp' }, [...entryAt, 'healthCheck'], problems);
      return [{ proxies: checked, domains, balance: p.balance ?? 'round-robin', healthCheck }];
    }),
    pac: r.pac === false ? undefined : resolvePac(r.pac === true || r.pac === undefined ? {} : r.pac, [...at, 'pac'], problems),
    allowUnauthenticated: r.allowUnauthenticated ?? false,
  };
}
