// Suite `gateway`: what API-gateway policies cost a route (issue 13). Over the same origins, in
// the same interleaved rounds, one Switchboard child each:
//   switchboard                      the route without policies
//   switchboard-apikey-ratelimit     api-key + rate-limit (per consumer), state.backend memory
//   switchboard-jwt-ratelimit-redis  jwt (a JWKS file, the same token on every request: cached)
//                                    + rate-limit (per consumer), state.backend redis, against a
//                                    redis-server the suite starts on a free port and stops after
// Reported: req/s, p50/p99, CPU us per request of the gateway process, and for the Redis subject
// the Redis round trips per request (INFO commandstats around each measured run) and
// redis-server's own CPU us per request, apart. Targets: memory-backed >= 0.85x the plain route,
// Redis-backed >= 0.6x. The rate limits are far above what the bench can send; a run with any
// non-2xx response (a 429 above all) is invalid and its target is not judged.
// Settings: BENCH_GATEWAY_* (below); the general ones are their defaults (lib/env.ts).
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import * as redisScripts from '../../src/state/redis-scripts.ts';
import { envList, envNumber, GENERAL_ROUNDS, ORIGIN_COUNT, suiteRounds } from '../lib/env.ts';
import { httpGet } from '../lib/probes.ts';
import { cpuSeconds, shuttingDown, stopProcess, tmpDir } from '../lib/processes.ts';
import { type BenchRedis, commandCalls, redisServerBin, startRedis } from '../lib/redis.ts';
import { errorMessage, fmt, heading, log, printTable } from '../lib/report.ts';
import { plannedSeconds, runRounds, type RoundResult, type RoundsPlan } from '../lib/rounds.ts';
import { median, pairedRps, summarize, type SubjectSummary } from '../lib/stats.ts';
import type { Suite, SuiteContext } from '../lib/suite.ts';
import { originBody, startChecked, startOrigins, startSwitchboard, stopAll, type Origin, type Started, type SubjectStatus } from '../lib/subjects.ts';

// ---------------------------------------------------------------- settings

const {
  durationS: GW_DURATION_S,
  rounds: GW_ROUNDS,
  warmupS: GW_WARMUP_S,
  firstWarmupS: GW_FIRST_WARMUP_S,
  connections: GW_CONNECTIONS,
} = suiteRounds('GATEWAY', GENERAL_ROUNDS);
/** Access log of the Switchboard children: on (to a file) by default, as in peers and policies. */
const GW_ACCESS_LOG = (process.env.BENCH_GATEWAY_ACCESS_LOG ?? '1') !== '0';
/** Every other run between two runs of the plain route (runRounds' `baseline`), as BENCH_POLICIES_BRACKET. */
const GW_BRACKET = process.env.BENCH_GATEWAY_BRACKET === '1';
/**
 * The rate limits' `limit` per second (and so their burst): far above what one process on this
 * machine serves, so that no request is refused; a 429 makes the run invalid.
 */
const GW_RATE_LIMIT = envNumber('BENCH_GATEWAY_RATE_LIMIT', 1_000_000, true);

const NO_POLICY = 'switchboard';
const APIKEY = 'switchboard-apikey-ratelimit';
const JWT = 'switchboard-jwt-ratelimit-redis';
const ALL_SUBJECTS = [NO_POLICY, APIKEY, JWT];
const GW_SUBJECTS = envList('BENCH_GATEWAY_SUBJECTS', ALL_SUBJECTS);
for (const s of GW_SUBJECTS) {
  if (!ALL_SUBJECTS.includes(s)) throw new Error(`BENCH_GATEWAY_SUBJECTS: unknown subject ${JSON.stringify(s)} (known: ${ALL_SUBJECTS.join(', ')})`);
}

/** The ratios checked against a target (issue 13): req/s of the medians. */
const TARGETS: ReadonlyArray<{ subject: string; base: string; min: number; what: string }> = [
  { subject: APIKEY, base: NO_POLICY, min: 0.85, what: 'api-key + rate-limit (memory) vs no policy' },
  { subject: JWT, base: NO_POLICY, min: 0.6, what: 'jwt (cached) + rate-limit (Redis) vs no policy' },
];

// ---------------------------------------------------------------- credentials and policies

const CONSUMER = 'bench';
const ISSUER = 'https://idp.bench.invalid';
const AUDIENCE = 'bench-api';
const SUBJECT = 'bench-client';

interface Credentials {
  apiKey: string;
  /** A JWKS file with the one public key (ES256). */
  jwksFile: string;
  /** Signed by that key, valid for a day: the same token on every request, so the jwt cache answers. */
  token: string;
  /** The same claims signed by another key: must be refused. */
  foreignToken: string;
}

async function makeCredentials(): Promise<Credentials> {
  const sign = (key: KeyObject, kid: string): Promise<string> =>
    new SignJWT({ scope: 'bench' })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(SUBJECT)
      .setIssuedAt()
      .setExpirationTime('24h')
      .sign(key);
  const kid = 'bench-1';
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwksFile = path.join(tmpDir, 'gateway-jwks.json');
  fs.writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...pair.publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] }));
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { apiKey: randomBytes(24).toString('hex'), jwksFile, token: await sign(pair.privateKey, kid), foreignToken: await sign(other.privateKey, kid) };
}

/** One consumer with both credentials: both rate limits count per consumer, so every request of a subject takes from one bucket (a hot key). */
function consumers(c: Credentials): Record<string, unknown> {
  return {
    [CONSUMER]: {
      credentials: [
        { type: 'api-key', key: c.apiKey },
        { type: 'jwt', subject: SUBJECT },
      ],
    },
  };
}

/**
 * `state.redis.commandTimeout` of the Redis subject: 5 s instead of the default 500 ms, so that a
 * stall of this shared machine (the load generator, the origins, other processes) is not taken for
 * a Redis outage and answered 429 (which invalidates the run). The timeout's value costs nothing
 * per request: one timer per command either way.
 */
const REDIS_COMMAND_TIMEOUT = '5s';

/** failOpen false: a request the state could not count is refused (429), so it shows up as a non-2xx and invalidates the run. */
const RATE_LIMIT_POLICY = { type: 'rate-limit', key: 'consumer', limit: GW_RATE_LIMIT, window: '1s', failOpen: false };

// ---------------------------------------------------------------- checks

/**
 * That the policies act before the load: no credential and a wrong one are 401; the right one is
 * 200 with the rate limit's fields; upstream sees the consumer and not the credential; for the
 * Redis subject, a request costs Redis at least one call. Returns the problems (empty when all is well).
 */
async function checkSubject(
  st: Started,
  good: Record<string, string>,
  bad: Record<string, string>,
  credentialHeader: string,
  redis: BenchRedis | undefined,
): Promise<string[]> {
  const problems: string[] = [];
  const none = await httpGet(st.url);
  if (none.status !== 401) problems.push(`no credential: HTTP ${none.status} (expected 401)`);
  const wrong = await httpGet(st.url, 2000, undefined, bad);
  if (wrong.status !== 401) problems.push(`a wrong credential: HTTP ${wrong.status} (expected 401)`);
  const before = redis ? await commandCalls(redis.port) : undefined;
  const ok = await httpGet(st.url, 2000, undefined, good);
  if (ok.status !== 200) problems.push(`with the credential: HTTP ${ok.status}`);
  if (!String(ok.headers['ratelimit-policy'] ?? '').includes(`q=${GW_RATE_LIMIT}`)) {
    problems.push(`no RateLimit-Policy with q=${GW_RATE_LIMIT} (got ${JSON.stringify(ok.headers['ratelimit-policy'])})`);
  }
  if (!/;r=\d+/.test(String(ok.headers.ratelimit ?? ''))) problems.push(`no RateLimit field (got ${JSON.stringify(ok.headers.ratelimit)})`);
  if (redis && before) {
    const after = await commandCalls(redis.port);
    const scripts = EVAL_FAMILY.reduce((a, c) => a + (after.get(c) ?? 0) - (before.get(c) ?? 0), 0);
    if (scripts < 1) problems.push('a request made no EVAL/EVALSHA on the bench’s redis-server');
  }
  const echoed = await httpGet(new URL('/__bench/headers', st.url).href, 2000, undefined, good);
  try {
    const h = JSON.parse(echoed.body) as Record<string, string>;
    if (h['x-consumer-name'] !== CONSUMER) problems.push(`upstream x-consumer-name ${JSON.stringify(h['x-consumer-name'])} (expected "${CONSUMER}")`);
    if (h[credentialHeader] !== undefined) problems.push(`upstream got the ${credentialHeader} header (hideCredentials)`);
  } catch {
    problems.push(`/__bench/headers through the gateway: HTTP ${echoed.status}, not JSON`);
  }
  return problems;
}

// ---------------------------------------------------------------- Redis commands

/** Commands that run a script: one round trip each, whatever the script calls. */
const EVAL_FAMILY = ['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'];

/**
 * The commands RedisState's Lua scripts call (src/state/redis-scripts.ts): INFO commandstats counts
 * them as well as the EVALSHA that ran them, so they are left out of the round trips. RedisState
 * never sends one of them itself.
 */
const SCRIPT_COMMANDS: ReadonlySet<string> = new Set(
  Object.values(redisScripts)
    .filter((v): v is redisScripts.LuaScript => typeof v === 'object' && v !== null && 'source' in v)
    .flatMap((s) => [...s.source.matchAll(/redis\.call\('([A-Za-z]+)'/g)].map((m) => m[1].toLowerCase())),
);

const CALLS = 'redis.calls.';
const REDIS_CPU = 'redis.cpuS';

/** What one measured run cost Redis, per request answered. */
interface RedisRun {
  /** Commands the gateway sent (each one a round trip): all calls but the scripts' own and the bench's INFO. */
  roundTrips: number;
  /** Of them, scripts run (EVALSHA, EVAL). */
  scripts: number;
  /** Every command counted, per request, scripts' own calls included. */
  perCommand: Record<string, number>;
  /** redis-server's CPU (user + system) per request, us. */
  cpuUs: number | null;
}

function redisRun(r: RoundResult): RedisRun | undefined {
  if (r.counters === undefined || !(r.requests > 0)) return undefined;
  let roundTrips = 0;
  let scripts = 0;
  const perCommand: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.counters)) {
    if (!k.startsWith(CALLS) || v === 0) continue;
    const cmd = k.slice(CALLS.length);
    if (cmd === 'info') continue; // the bench's own
    perCommand[cmd] = v / r.requests;
    if (EVAL_FAMILY.includes(cmd)) scripts += v;
    if (!SCRIPT_COMMANDS.has(cmd)) roundTrips += v;
  }
  const cpu = r.counters[REDIS_CPU];
  return { roundTrips: roundTrips / r.requests, scripts: scripts / r.requests, perCommand, cpuUs: Number.isFinite(cpu) ? (cpu * 1e6) / r.requests : null };
}

// ---------------------------------------------------------------- report

interface GatewaySummary extends SubjectSummary {
  /** Runs with a non-2xx response or a socket error: invalid, the rate limit (or the state) refused or failed something. */
  invalidRuns: number;
  status429: number;
  /** Median over runs (Redis subject only). */
  redisRoundTripsPerReq?: number;
  redisScriptsPerReq?: number;
  redisCpuUsPerReq?: number | null;
  redisPerCommand?: Record<string, number>;
  machineCpuPct: number | null;
  loadgenCpuPct: number | null;
}

interface GatewayRatio {
  subject: string;
  base: string;
  rps: number;
  rpsPaired: number;
  rpsPairedMin: number;
  rpsPairedMax: number;
  cpuPerReq: number;
  cpuUsAdded: number;
  /** The subject's gateway + redis-server CPU per request over the base's (Redis subject). */
  cpuPerReqWithRedis?: number;
  p99: number;
  target: number;
  /** False when a run of either side was invalid. */
  valid: boolean;
  met: boolean | null;
}

export interface GatewayReport {
  config: Record<string, unknown>;
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  summary: GatewaySummary[];
  ratios: GatewayRatio[];
  allMet: boolean | null;
}

function summarizeGateway(rounds: RoundResult[]): GatewaySummary[] {
  return summarize(ALL_SUBJECTS, rounds).map((s) => {
    const rs = rounds.filter((r) => r.subject === s.subject);
    const finite = (xs: (number | null | undefined)[]): number[] => xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    const machine = finite(rs.map((r) => r.machineCpuPct));
    const loadgen = finite(rs.map((r) => r.loadgenCpuPct));
    const g: GatewaySummary = {
      ...s,
      invalidRuns: rs.filter((r) => r.errors + r.non2xx > 0).length,
      status429: rs.reduce((a, r) => a + (r.statusCodes?.['429'] ?? 0), 0),
      machineCpuPct: machine.length ? median(machine) : null,
      loadgenCpuPct: loadgen.length ? median(loadgen) : null,
    };
    const redis = rs.map(redisRun).filter((x): x is RedisRun => x !== undefined);
    if (redis.length > 0) {
      g.redisRoundTripsPerReq = median(redis.map((x) => x.roundTrips));
      g.redisScriptsPerReq = median(redis.map((x) => x.scripts));
      const cpu = finite(redis.map((x) => x.cpuUs));
      g.redisCpuUsPerReq = cpu.length ? median(cpu) : null;
      const cmds = [...new Set(redis.flatMap((x) => Object.keys(x.perCommand)))].sort();
      g.redisPerCommand = Object.fromEntries(cmds.map((c) => [c, median(redis.map((x) => x.perCommand[c] ?? 0))]));
    }
    return g;
  });
}

// ---------------------------------------------------------------- the suite

export async function runGatewaySuite({ loadgen }: SuiteContext): Promise<GatewayReport | null> {
  heading('gateway: what api-key, jwt and rate-limit cost a route');
  const accessLog = GW_ACCESS_LOG ? 'ON (to a file)' : 'OFF';
  const load0 = os.loadavg();
  console.log(
    `  ${GW_ROUNDS} round(s) x ${GW_DURATION_S}s per subject (+${GW_WARMUP_S}s warm-up each, ${GW_FIRST_WARMUP_S}s the first time), ${GW_CONNECTIONS} connections, ` +
      `${ORIGIN_COUNT} origin(s), load generator: ${loadgen.name}${loadgen.name === 'wrk' ? ' -t1' : ''}; one Switchboard child (one process) per subject, round robin, access log ${accessLog}.`,
  );
  console.log(`  load average at the start of the suite: ${load0.map((x) => x.toFixed(2)).join(' ')} (1, 5, 15 min) on ${os.cpus().length} core(s)`);
  console.log(`  ${NO_POLICY}: the route without policies.`);
  console.log(
    `  ${APIKEY}: api-key (x-api-key header) + rate-limit key consumer, ${GW_RATE_LIMIT.toLocaleString('en-US')}/s (one bucket: every request is consumer "${CONSUMER}"), state.backend memory (in the process).`,
  );
  console.log(
    `  ${JWT}: jwt (ES256, a JWKS file; the same bearer token on every request, so verified once and then cached) + the same rate-limit, state.backend redis (a redis-server of the suite's; commandTimeout ${REDIS_COMMAND_TIMEOUT}).`,
  );
  console.log('  Rate limits failOpen: false, so anything the state could not count is a 429; any non-2xx makes a run invalid.\n');

  const config: Record<string, unknown> = {
    durationS: GW_DURATION_S,
    rounds: GW_ROUNDS,
    warmupS: GW_WARMUP_S,
    firstWarmupS: GW_FIRST_WARMUP_S,
    connections: GW_CONNECTIONS,
    origins: ORIGIN_COUNT,
    loadgen: loadgen.name,
    accessLog: GW_ACCESS_LOG,
    bracketedBy: GW_BRACKET ? NO_POLICY : null,
    subjects: GW_SUBJECTS,
    rateLimit: { ...RATE_LIMIT_POLICY },
    redisCommandTimeout: REDIS_COMMAND_TIMEOUT,
    jwt: { algorithm: 'ES256', keys: 'jwks file', sameTokenEveryRequest: true },
    scriptCommands: [...SCRIPT_COMMANDS],
    loadAverageStart: load0,
    targets: TARGETS.map((t) => ({ ratio: `${t.subject} / ${t.base}`, min: t.min })),
  };

  let origins: Origin[] = [];
  let redis: BenchRedis | undefined;
  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  let rounds: RoundResult[] = [];
  try {
    origins = await startOrigins(
      'gateway-origin',
      Array.from({ length: ORIGIN_COUNT }, () => 0),
    );
    const expectedBody = await originBody(origins);
    log(`gateway origins: ${origins.map((o) => `${o.url} (pid ${o.proc.pid})`).join(', ')}`);
    const creds = await makeCredentials();
    const want = (n: string): boolean => GW_SUBJECTS.includes(n);
    const skip = (name: string, description: string, reason: string): void => {
      console.log(`skipping ${name}: ${reason}`);
      statuses.push({ name, description, status: 'skipped', reason });
    };
    /** Checks a started policy subject; one whose policies do not act is stopped and reported failed. */
    const checked = async (
      name: string,
      good: Record<string, string>,
      bad: Record<string, string>,
      credentialHeader: string,
      r: BenchRedis | undefined,
    ): Promise<void> => {
      const st = running.get(name);
      if (!st) return;
      const problems = await checkSubject(st, good, bad, credentialHeader, r).catch((err: unknown) => [errorMessage(err)]);
      if (problems.length === 0) {
        log(`  ${name}: checked: 401 without and with a wrong credential, 200 with RateLimit fields, consumer upstream, credential removed`);
        return;
      }
      running.delete(name);
      await stopProcess(st.proc, st.graceMs);
      const reason = `policies check failed: ${problems.join('; ')}`;
      console.log(`skipping ${name}: ${reason}`);
      Object.assign(statuses.find((s) => s.name === name)!, { status: 'failed', reason });
    };

    const noPolicyDesc = `Switchboard, one route without policies, round robin, access log ${accessLog}`;
    if (want(NO_POLICY)) {
      await startChecked(
        NO_POLICY,
        noPolicyDesc,
        () => startSwitchboard('gateway-none', origins, { balancer: 'round-robin', accessLog: GW_ACCESS_LOG }),
        expectedBody,
        running,
        statuses,
      );
    } else skip(NO_POLICY, noPolicyDesc, 'not in BENCH_GATEWAY_SUBJECTS');

    const apiKeyDesc = 'Switchboard, the route with api-key + rate-limit (per consumer), state.backend memory';
    if (want(APIKEY)) {
      const headers = { 'x-api-key': creds.apiKey };
      await startChecked(
        APIKEY,
        apiKeyDesc,
        () =>
          startSwitchboard('gateway-apikey', origins, {
            balancer: 'round-robin',
            accessLog: GW_ACCESS_LOG,
            policies: { key: { type: 'api-key' }, limit: RATE_LIMIT_POLICY },
            routePolicies: ['key', 'limit'],
            config: { consumers: consumers(creds), state: { backend: 'memory' } },
            headers,
          }),
        expectedBody,
        running,
        statuses,
      );
      await checked(APIKEY, headers, { 'x-api-key': randomBytes(24).toString('hex') }, 'x-api-key', undefined);
    } else skip(APIKEY, apiKeyDesc, 'not in BENCH_GATEWAY_SUBJECTS');

    const jwtDesc = 'Switchboard, the route with jwt (cached token) + rate-limit (per consumer), state.backend redis';
    if (!want(JWT)) skip(JWT, jwtDesc, 'not in BENCH_GATEWAY_SUBJECTS');
    else if (redisServerBin === null) skip(JWT, jwtDesc, 'redis-server is not installed (apt-get install redis-server)');
    else {
      try {
        redis = await startRedis('gateway-redis');
        log(`gateway redis: ${redis.url} (pid ${redis.pid}), ${redis.version}`);
        config.redis = { version: redis.version, args: "--save '' --appendonly no" };
      } catch (err) {
        skip(JWT, jwtDesc, `redis-server did not start: ${errorMessage(err)}`);
      }
      if (redis) {
        const r = redis;
        const headers = { authorization: `Bearer ${creds.token}` };
        await startChecked(
          JWT,
          jwtDesc,
          () =>
            startSwitchboard('gateway-jwt', origins, {
              balancer: 'round-robin',
              accessLog: GW_ACCESS_LOG,
              policies: {
                token: { type: 'jwt', issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: creds.jwksFile } },
                limit: RATE_LIMIT_POLICY,
              },
              routePolicies: ['token', 'limit'],
              config: { consumers: consumers(creds), state: { backend: 'redis', redis: { url: r.url, commandTimeout: REDIS_COMMAND_TIMEOUT } } },
              headers,
            }),
          expectedBody,
          running,
          statuses,
        );
        await checked(JWT, headers, { authorization: `Bearer ${creds.foreignToken}` }, 'authorization', r);
        const st = running.get(JWT);
        if (st) {
          st.counters = async () => {
            const out: Record<string, number> = { [REDIS_CPU]: cpuSeconds(r.pid) ?? Number.NaN };
            for (const [cmd, n] of await commandCalls(r.port)) out[CALLS + cmd] = n;
            return out;
          };
        }
      }
    }

    if (running.size === 0) throw new Error('no subject could be started');
    const order = ALL_SUBJECTS.filter((n) => running.has(n));
    const plan: RoundsPlan = {
      label: 'gateway',
      rounds: GW_ROUNDS,
      durationS: GW_DURATION_S,
      warmupS: GW_WARMUP_S,
      firstWarmupS: GW_FIRST_WARMUP_S,
      connections: GW_CONNECTIONS,
      baseline: GW_BRACKET && running.has(NO_POLICY) ? NO_POLICY : undefined,
    };
    log(`\ngateway: running ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan))} s in total\n`);
    rounds = await runRounds(loadgen, order, running, statuses, plan);
  } finally {
    await stopAll(running, origins);
    if (redis && !shuttingDown) await stopProcess(redis.proc);
  }
  if (shuttingDown) return null;
  const load1 = os.loadavg();
  config.loadAverageEnd = load1;

  const summary = summarizeGateway(rounds);
  console.log(
    `\nResults (median of ${GW_ROUNDS} round(s), ${GW_DURATION_S}s each, ${GW_CONNECTIONS} connections, ${loadgen.name}; access log ${accessLog}; ` +
      `load average at the end ${load1.map((x) => x.toFixed(2)).join(' ')}):\n`,
  );
  const rtCol = (s: GatewaySummary): string => (s.redisRoundTripsPerReq === undefined ? '-' : fmt(s.redisRoundTripsPerReq, 3));
  const redisCpuCol = (s: GatewaySummary): string => (s.redisCpuUsPerReq === undefined ? '-' : fmt(s.redisCpuUsPerReq, 1));
  printTable(
    [
      'subject',
      'req/s',
      'p50 ms',
      'p99 ms',
      'RSS MB',
      'CPU %',
      'CPU us/req',
      'Redis RT/req',
      'Redis CPU us/req',
      'machine %',
      `${loadgen.name} %`,
      'non-2xx',
      '429',
      'errors',
      'rounds',
    ],
    summary.map((s) => [
      s.subject,
      fmt(s.rps, 0),
      fmt(s.p50Ms, 2),
      fmt(s.p99Ms, 2),
      fmt(s.rssMB, 1),
      fmt(s.cpuPct, 0),
      fmt(s.cpuUsPerReq, 1),
      rtCol(s),
      redisCpuCol(s),
      fmt(s.machineCpuPct, 0),
      fmt(s.loadgenCpuPct, 0),
      String(s.non2xx),
      String(s.status429),
      String(s.errors),
      String(s.rounds),
    ]),
  );
  console.log('  CPU %, CPU us/req: the gateway process alone (user+sys from /proc/<pid>/stat during the run / requests answered); redis-server is NOT in them.');
  console.log('  Redis RT/req: commands the gateway sent to Redis per request answered (INFO commandstats before and after the run; the Lua');
  console.log(`  scripts' own calls, ${[...SCRIPT_COMMANDS].join(', ')}, left out). Redis CPU us/req: redis-server's own CPU per request, apart.`);
  const jwtRow = summary.find((s) => s.subject === JWT);
  if (jwtRow?.redisPerCommand) {
    console.log(
      `  ${JWT}: Redis commands per request, scripts' own calls included: ${Object.entries(jwtRow.redisPerCommand)
        .map(([c, n]) => `${c} ${fmt(n, 3)}`)
        .join(', ')}`,
    );
    if (jwtRow.cpuUsPerReq !== null && jwtRow.redisCpuUsPerReq !== null && jwtRow.redisCpuUsPerReq !== undefined) {
      console.log(`  ${JWT}: gateway + redis-server CPU per request = ${fmt(jwtRow.cpuUsPerReq + jwtRow.redisCpuUsPerReq, 1)} us`);
    }
    if (jwtRow.redisRoundTripsPerReq !== undefined && Math.abs(jwtRow.redisRoundTripsPerReq - 1) > 0.05) {
      console.log(`  (!) ${JWT}: ${fmt(jwtRow.redisRoundTripsPerReq, 3)} Redis round trips per request, where one (the rate limit's EVALSHA) is expected`);
    }
  }

  const ratios: GatewayRatio[] = [];
  console.log('\nRatios (req/s: higher is better; CPU/req, p99: lower is better; paired: each run over the mean of the nearest base runs before and after it):');
  for (const t of TARGETS) {
    const s = summary.find((x) => x.subject === t.subject);
    const b = summary.find((x) => x.subject === t.base);
    const label = `${t.subject} / ${t.base}`;
    if (!s || !b) {
      console.log(`  ${label.padEnd(46)} req/s = n/a (target >= ${t.min.toFixed(2)}): ${!s ? t.subject : t.base} did not run`);
      continue;
    }
    const pairs = pairedRps(rounds, t.subject, t.base);
    const rps = s.rps / b.rps;
    const valid = s.invalidRuns === 0 && b.invalidRuns === 0;
    const r: GatewayRatio = {
      subject: t.subject,
      base: t.base,
      rps,
      rpsPaired: median(pairs),
      rpsPairedMin: pairs.length ? Math.min(...pairs) : Number.NaN,
      rpsPairedMax: pairs.length ? Math.max(...pairs) : Number.NaN,
      cpuPerReq: s.cpuUsPerReq !== null && b.cpuUsPerReq ? s.cpuUsPerReq / b.cpuUsPerReq : Number.NaN,
      cpuUsAdded: s.cpuUsPerReq !== null && b.cpuUsPerReq !== null ? s.cpuUsPerReq - b.cpuUsPerReq : Number.NaN,
      p99: s.p99Ms / b.p99Ms,
      target: t.min,
      valid,
      met: valid ? rps >= t.min : null,
    };
    if (s.redisCpuUsPerReq != null && s.cpuUsPerReq !== null && b.cpuUsPerReq) r.cpuPerReqWithRedis = (s.cpuUsPerReq + s.redisCpuUsPerReq) / b.cpuUsPerReq;
    ratios.push(r);
    const verdict = !valid ? `  INVALID (${s.invalidRuns + b.invalidRuns} run(s) with non-2xx responses or errors)` : r.met ? '' : '  BELOW TARGET';
    console.log(
      `  ${label.padEnd(46)} req/s = ${fmt(r.rps, 2)} (target >= ${t.min.toFixed(2)})${verdict}   ` +
        `paired ${fmt(r.rpsPaired, 2)} (${fmt(r.rpsPairedMin, 2)}-${fmt(r.rpsPairedMax, 2)})   CPU/req = ${fmt(r.cpuPerReq, 2)} ` +
        `(${r.cpuUsAdded >= 0 ? '+' : ''}${fmt(r.cpuUsAdded, 1)} us)` +
        (r.cpuPerReqWithRedis !== undefined ? `, with redis-server's ${fmt(r.cpuPerReqWithRedis, 2)}` : '') +
        `   p99 = ${fmt(r.p99, 2)}`,
    );
  }
  console.log('  the verdict is on the ratio of the medians (as in policies); the paired median and range show how far noise moves it.');
  const allMet = ratios.length === 0 || ratios.some((r) => r.met === null) ? null : ratios.every((r) => r.met);
  for (const st of statuses) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { config, subjects: statuses, rounds, summary, ratios, allMet };
}

export const gatewaySuite: Suite<GatewayReport> = { name: 'gateway', run: runGatewaySuite };
