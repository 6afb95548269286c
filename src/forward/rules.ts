/**
 * Compiles a forward listener's rules into its DestinationGuard, once per generation (Traefik's
 * ipallowlist `New()`: everything parsed and built before the first request; the per-request path
 * only looks things up). The order of a decision, for each address a destination resolves to:
 *   1. the rules, first match wins (a rule matches when every condition it gives holds);
 *   2. the safe defaults (safe-defaults.ts): ports outside `safePorts`, CONNECT outside
 *      `connectPorts` (80 too with `connectToHttp`), then the address classes a proxy must not reach;
 *   3. allow.
 * A rule that decides without looking at addresses (no `destinations`) decides before any lookup: a
 * denied domain is never resolved. Addresses a rule or a default denies are dropped from the permit;
 * when none remain, the first address's refusal is the answer.
 */
import type { ForwardConfig, ForwardRuleConfig, PortRange } from '../config/types.ts';
import { AddressRanges, parseAddressRange, type AddressRange } from '../util/address-ranges.ts';
import { ParsedAddress } from '../util/ip-address.ts';
import { connectToPermit } from './connect.ts';
import type { Decision, DestinationGuard, ForwardAsk, Permit, Refusal } from './destination-guard.ts';
import { DomainSet } from './domain-set.ts';
import { readHost } from './host-address.ts';
import { DestinationResolver } from './resolver.ts';
import { addressClass, portIn } from './safe-defaults.ts';

/** What tests (and only tests) change about a compiled guard. */
export interface CompileOptions {
  /** The clock for `time` conditions and the DNS cache, in ms since the epoch (default Date.now). */
  readonly now?: () => number;
}

/** One rule, compiled: undefined = the rule gives no such condition. */
interface CompiledRule {
  readonly name: string;
  readonly allow: boolean;
  readonly clients: AddressRanges | undefined;
  readonly consumers: ReadonlySet<string> | undefined;
  readonly groups: ReadonlySet<string> | undefined;
  readonly domains: DomainSet | undefined;
  readonly destinations: AddressRanges | undefined;
  readonly ports: readonly PortRange[] | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly schemes: ReadonlySet<string> | undefined;
  readonly time: CompiledTime | undefined;
  /** A deny's refusal code: DOMAIN_BLOCKED when it matched on a domain. */
  readonly code: Refusal['code'];
}

/** Minutes since midnight; `days` a bit mask, bit 0 = Sunday. */
interface CompiledTime {
  readonly from: number;
  readonly to: number;
  readonly days: number;
  readonly utc: boolean;
}

/**
 * Scratch for the client's and a destination's parsed address: module state, so per worker (each
 * process has its own); used synchronously only, never across an await, so every guard shares them.
 */
const client = new ParsedAddress();
const address = new ParsedAddress();
/** No rule has matched the ask's conditions apart from destinations. */
const NONE = -1;

function ranges(list: readonly string[] | undefined): AddressRanges | undefined {
  if (list === undefined) return undefined;
  const out: AddressRange[] = [];
  for (const text of list) {
    const r = parseAddressRange(text); // checked when the config was resolved
    if (r) out.push(r);
  }
  return new AddressRanges(out);
}

function compileRule(rule: ForwardRuleConfig): CompiledRule {
  return {
    name: rule.name,
    allow: rule.action === 'allow',
    clients: ranges(rule.clients),
    consumers: rule.consumers && new Set(rule.consumers),
    groups: rule.groups && new Set(rule.groups),
    domains: rule.domains && new DomainSet(rule.domains),
    destinations: ranges(rule.destinations),
    ports: rule.ports,
    methods: rule.methods && new Set(rule.methods),
    schemes: rule.schemes && new Set(rule.schemes),
    time: rule.time && { from: rule.time.from, to: rule.time.to, days: rule.time.days.reduce((m, d) => m | (1 << d), 0), utc: rule.time.utc },
    code: rule.domains ? 'DOMAIN_BLOCKED' : 'DESTINATION_FORBIDDEN',
  };
}

/** Whether the time condition holds at `now`. A span that crosses midnight belongs to the day it starts; from = to is the whole day. */
function inTime(t: CompiledTime, now: number): boolean {
  const d = new Date(now);
  const minute = t.utc ? d.getUTCHours() * 60 + d.getUTCMinutes() : d.getHours() * 60 + d.getMinutes();
  const day = t.utc ? d.getUTCDay() : d.getDay();
  const on = (wd: number) => (t.days & (1 << wd)) !== 0;
  if (t.from === t.to) return on(day);
  if (t.from < t.to) return minute >= t.from && minute < t.to && on(day);
  if (minute >= t.from) return on(day);
  return minute < t.to && on((day + 6) % 7);
}

/** The listener's guard; the config is resolved (resolve-forward.ts), so nothing here can fail. */
export function compileForwardRules(config: ForwardConfig, options: CompileOptions = {}): DestinationGuard {
  return new ForwardGuard(config, options);
}

/** What a check knows before the addresses: the name to resolve (undefined: `address`, an IP literal) and the first pass's results. */
class Pending {
  readonly name: string | undefined;
  readonly address: string;
  readonly now: number;
  readonly first: number;
  readonly portRefusal: Refusal | undefined;

  constructor(name: string | undefined, address: string, now: number, first: number, portRefusal: Refusal | undefined) {
    this.name = name;
    this.address = address;
    this.now = now;
    this.first = first;
    this.portRefusal = portRefusal;
  }
}

class ForwardGuard implements DestinationGuard {
  readonly #rules: readonly CompiledRule[];
  readonly #config: ForwardConfig;
  readonly #now: () => number;
  readonly #resolver: DestinationResolver;

  constructor(config: ForwardConfig, options: CompileOptions) {
    this.#config = config;
    this.#rules = config.rules.map(compileRule);
    this.#now = options.now ?? Date.now;
    this.#resolver = new DestinationResolver({ servers: config.resolverServers, timeout: config.resolverTimeout, maxTtl: config.resolverMaxTtl, now: this.#now });
  }

  check(ask: ForwardAsk): Promise<Decision> {
    const before = this.#before(ask);
    if (!(before instanceof Pending)) return Promise.resolve(before);
    if (before.name === undefined) return Promise.resolve(this.#addresses(ask, before, [before.address]));
    return this.#resolved(ask, before, before.name);
  }

  decideNow(ask: ForwardAsk): Decision | undefined {
    const before = this.#before(ask);
    if (!(before instanceof Pending)) return before;
    return before.name === undefined ? this.#addresses(ask, before, [before.address]) : undefined;
  }

  async #resolved(ask: ForwardAsk, pending: Pending, name: string): Promise<Decision> {
    const resolution = await this.#resolver.resolve(name);
    if (!resolution.ok) return refusal('resolver', 'DESTINATION_UNRESOLVED', `${name} did not resolve (${resolution.reason})`);
    return this.#addresses(ask, pending, resolution.addresses);
  }

  /** What is decided before any address is known: a Decision, or what the addresses' checks need. */
  #before(ask: ForwardAsk): Decision | Pending {
    const host = readHost(ask.host);
    if (host.kind === 'invalid') return refusal('default:host', 'DESTINATION_FORBIDDEN', `${quote(ask.host)} is ${host.why}`);
    const name = host.kind === 'name' ? host.name : undefined;
    const now = this.#now();
    // Before any lookup: the first rule whose conditions other than destinations hold.
    client.parse(ask.client);
    let first = NONE;
    for (let i = 0; i < this.#rules.length; i++) {
      if (this.#holds(this.#rules[i], ask, name, now)) {
        first = i;
        break;
      }
    }
    const firstRule = first === NONE ? undefined : this.#rules[first];
    const final = firstRule !== undefined && firstRule.destinations === undefined;
    if (final && !firstRule.allow) return refusal(firstRule.name, firstRule.code, `${ask.host} port ${ask.port}: denied by ${firstRule.name}`);
    // An allow rule lifts a safe default only for what it names: the port defaults when it names
    // ports, the address defaults for the ranges it names in `destinations`. One that names neither
    // (clients, consumers, domains…) allows as far as the rules go, and the defaults still apply:
    // "allow the office" must not open loopback or the metadata address.
    const portRefusal = final && firstRule.ports !== undefined ? undefined : this.#portDefaults(ask);
    if ((first === NONE || final) && portRefusal) return portRefusal;
    return new Pending(name, host.kind === 'address' ? host.address : '', now, first, portRefusal);
  }

  /** Address by address (synchronous: the scratch addresses are safe to use). */
  #addresses(ask: ForwardAsk, p: Pending, addresses: readonly string[]): Decision {
    const name = p.name;
    client.parse(ask.client);
    let kept: string[] | undefined;
    let rule = '';
    let refused: Refusal | undefined;
    for (const text of addresses) {
      address.parse(text);
      const decided = this.#decide(ask, name, p.now, p.first, p.portRefusal, text);
      if (typeof decided === 'string') {
        if (kept === undefined) {
          kept = [];
          rule = decided;
        }
        kept.push(text);
      } else {
        const shown = name ?? (ask.host === text ? undefined : ask.host);
        refused ??= shown === undefined ? decided : { ...decided, reason: `${shown} → ${decided.reason}` };
      }
    }
    if (kept !== undefined) return { allowed: true, rule, host: ask.host, port: ask.port, addresses: kept };
    return refused as Refusal;
  }

  connect(permit: Permit, timeout: number, signal?: AbortSignal) {
    return connectToPermit(permit, timeout, signal);
  }

  /** Whether every condition of `rule` other than destinations holds (needs `client` parsed). */
  #holds(rule: CompiledRule, ask: ForwardAsk, name: string | undefined, now: number): boolean {
    if (rule.clients !== undefined && !rule.clients.includes(client)) return false;
    if (rule.consumers !== undefined && (ask.consumer === undefined || !rule.consumers.has(ask.consumer))) return false;
    if (rule.groups !== undefined && !anyIn(rule.groups, ask.groups)) return false;
    if (rule.domains !== undefined && (name === undefined || !rule.domains.has(name))) return false;
    if (rule.ports !== undefined && !portIn(rule.ports, ask.port)) return false;
    if (rule.methods !== undefined && !rule.methods.has(ask.method)) return false;
    if (rule.schemes !== undefined && !rule.schemes.has(ask.scheme)) return false;
    if (rule.time !== undefined && !inTime(rule.time, now)) return false;
    return true;
  }

  /** One address (`address` parsed): the name of the rule that allows it (`default` for the defaults), or the refusal. */
  #decide(ask: ForwardAsk, name: string | undefined, now: number, first: number, portRefusal: Refusal | undefined, text: string): string | Refusal {
    if (first !== NONE) {
      for (let i = first; i < this.#rules.length; i++) {
        const r = this.#rules[i];
        if (r.destinations !== undefined && !r.destinations.includes(address)) continue;
        if (i !== first && !this.#holds(r, ask, name, now)) continue;
        if (!r.allow) return refusal(r.name, r.code, `${text}: denied by ${r.name}`);
        if (r.destinations !== undefined) return r.name;
        const named = addressClass(address);
        return named === undefined ? r.name : refusal(named.rule, 'DESTINATION_FORBIDDEN', `${text}: ${named.what}`);
      }
    }
    if (portRefusal) return portRefusal;
    const cls = addressClass(address);
    return cls === undefined ? 'default' : refusal(cls.rule, 'DESTINATION_FORBIDDEN', `${text}: ${cls.what}`);
  }

  /** Squid's `deny !Safe_ports` and `deny CONNECT !SSL_ports`, or undefined when the port passes. */
  #portDefaults(ask: ForwardAsk): Refusal | undefined {
    const c = this.#config;
    if (!portIn(c.safePorts, ask.port)) return refusal('default:port', 'PORT_FORBIDDEN', `port ${ask.port} is not among the safe ports`);
    if (ask.method === 'CONNECT' && !portIn(c.connectPorts, ask.port) && !(c.connectToHttp && ask.port === 80)) {
      return refusal('default:connect-port', 'PORT_FORBIDDEN', `CONNECT to port ${ask.port} is not allowed (connectPorts)`);
    }
    return undefined;
  }
}

function anyIn(set: ReadonlySet<string>, list: readonly string[]): boolean {
  for (const item of list) if (set.has(item)) return true;
  return false;
}

function refusal(rule: string, code: Refusal['code'], reason: string): Refusal {
  return { allowed: false, rule, code, reason };
}

/** A client-written host for a reason line: quoted and escaped, at most 100 characters. */
function quote(host: string): string {
  return JSON.stringify(host.length > 100 ? `${host.slice(0, 100)}…` : host);
}
