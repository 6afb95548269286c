/**
 * The `forward:` section of a forward or socks5 listener: ports and times parsed, defaults applied,
 * domain files read (relative to the config file). The rules are compiled for the hot path later,
 * per generation, by forward/rules.ts.
 */
import { parseDuration } from '../util/units.ts';
import type { RawForward } from './forward-schema.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
import type { ForwardConfig, ForwardRuleConfig, PortRange } from './types.ts';

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

function minutes(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

/** Checks and converts one listener's `forward:` (absent = every default). */
export function resolveForward(raw: RawForward | undefined, at: KeyPath, _baseDir: string, problems: Problem[]): ForwardConfig {
  const r = raw ?? {};
  const rules: ForwardRuleConfig[] = (r.rules ?? []).map((rule, i) => ({
    name: rule.name ?? `rules[${i}]`,
    action: rule.action,
    clients: rule.clients,
    consumers: rule.consumers,
    groups: rule.groups,
    domains: rule.domains?.map((d) => (d.startsWith('~') ? d : d.toLowerCase())),
    destinations: rule.destinations,
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
    resolverServers: r.resolver?.servers ?? [],
    resolverTimeout: parseDuration(r.resolver?.timeout ?? '5s'),
    connectTimeout: parseDuration(r.connectTimeout ?? '10s'),
    tunnelIdleTimeout: parseDuration(r.tunnelIdleTimeout ?? '5m'),
    parents: parents.map((p) => ({
      urls: Array.isArray(p.url) ? p.url : [p.url],
      domains: (p.domains ?? []).map((d) => d.toLowerCase()),
      balance: p.balance ?? 'round-robin',
    })),
    pac: r.pac === false ? undefined : { proxy: typeof r.pac === 'object' ? r.pac.proxy : undefined },
    allowUnauthenticated: r.allowUnauthenticated ?? false,
  };
}
