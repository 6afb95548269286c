// Suite `policies`: what policies cost a route. Over the same origins, in the same interleaved
// rounds: node-minimal, Switchboard with a route without policies, the same route with `headers`,
// `ip-filter` (10,000 CIDRs) and `cors` (without, and with an allowed Origin on every request), and
// the same route with a pass-through response-body filter (a policy type the bench child registers).
// Reported: req/s, p50/p99, CPU % and CPU us per request of each, and the ratios against the
// targets: switchboard / node-minimal >= 0.90 (as in peers), policies / no-policy >= 0.90,
// body-filter / no-policy >= 0.85.
// Settings: BENCH_POLICIES_* (below); the general ones are their defaults (lib/env.ts).
import http from 'node:http';
import { policyTypeOf } from '../../src/policies/registry.ts';
import { envList, envNumber, GENERAL_ROUNDS, ORIGIN_COUNT, suiteRounds } from '../lib/env.ts';
import { shuttingDown, stopProcess } from '../lib/processes.ts';
import { errorMessage, fmt, heading, log, printTable } from '../lib/report.ts';
import { plannedSeconds, runRounds, type RoundResult, type RoundsPlan } from '../lib/rounds.ts';
import { median, pairedRps, summarize, type SubjectSummary } from '../lib/stats.ts';
import type { Suite, SuiteContext } from '../lib/suite.ts';
import {
  originBody,
  startChecked,
  startNodeMinimal,
  startOrigins,
  startSwitchboard,
  stopAll,
  type Origin,
  type Started,
  type SubjectStatus,
  type SwitchboardOptions,
} from '../lib/subjects.ts';

// ---------------------------------------------------------------- settings

const {
  durationS: POL_DURATION_S,
  rounds: POL_ROUNDS,
  warmupS: POL_WARMUP_S,
  firstWarmupS: POL_FIRST_WARMUP_S,
  connections: POL_CONNECTIONS,
} = suiteRounds('POLICIES', GENERAL_ROUNDS);
/** CIDRs in the ip-filter's allow list, 127.0.0.0/8 (the bench traffic) included. */
const POL_CIDRS = envNumber('BENCH_POLICIES_CIDRS', 10_000, true);
/** Access log of the Switchboard children: on (to a file) by default, as in peers. */
const POL_ACCESS_LOG = (process.env.BENCH_POLICIES_ACCESS_LOG ?? '1') !== '0';
/**
 * Bracketing: every other run sits between two runs of the route without policies (runRounds'
 * `baseline`), so each paired ratio compares runs seconds apart; about 1.7x the time.
 */
const POL_BRACKET = process.env.BENCH_POLICIES_BRACKET === '1';

/** The Origin the `-origin` subject sends on every request: one the cors policy allows. */
const ALLOWED_ORIGIN = 'https://app.example.com';
const CORS_ORIGINS = [ALLOWED_ORIGIN, 'https://admin.example.com', 'https://*.example.org'];
const PASS_THROUGH_TYPE = 'bench-pass-through';

const NO_POLICY = 'switchboard';
const POLICIES = 'switchboard-policies';
const POLICIES_ORIGIN = 'switchboard-policies-origin';
const BODY_FILTER = 'switchboard-body-filter';
const METRICS = 'switchboard-metrics';
const TRACING = 'switchboard-tracing';
const MINIMAL = 'node-minimal';
const ALL_SUBJECTS = [MINIMAL, NO_POLICY, POLICIES, POLICIES_ORIGIN, BODY_FILTER, METRICS, TRACING];
/** The tracing subject's sample rate (issue 12 §8: 1 %). */
const TRACE_SAMPLE_RATE = envNumber('BENCH_POLICIES_TRACE_SAMPLE', 0.01, false, true);
const POL_SUBJECTS = envList('BENCH_POLICIES_SUBJECTS', ALL_SUBJECTS);
for (const s of POL_SUBJECTS) {
  if (!ALL_SUBJECTS.includes(s)) throw new Error(`BENCH_POLICIES_SUBJECTS: unknown subject ${JSON.stringify(s)} (known: ${ALL_SUBJECTS.join(', ')})`);
}

/** The ratios checked against a target: numerator over denominator, req/s of the medians. */
const TARGETS: ReadonlyArray<{ subject: string; base: string; min: number; what: string }> = [
  { subject: NO_POLICY, base: MINIMAL, min: 0.9, what: 'no policies vs the minimal forwarder (as in peers)' },
  { subject: POLICIES, base: NO_POLICY, min: 0.9, what: 'headers + ip-filter + cors, no Origin, vs no policy' },
  { subject: POLICIES_ORIGIN, base: NO_POLICY, min: 0.9, what: 'the same with an allowed Origin on every request' },
  { subject: BODY_FILTER, base: NO_POLICY, min: 0.85, what: 'pass-through response-body filter vs no policy' },
  { subject: METRICS, base: NO_POLICY, min: 0.95, what: 'Prometheus metrics on (an admin listener), tracing off, vs none' },
  { subject: TRACING, base: NO_POLICY, min: 0.9, what: 'tracing at 1% sampling to an OTLP/HTTP sink, vs none' },
];

// ---------------------------------------------------------------- the policies

/** Deterministic (mulberry32), so every run filters with the same list. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * `n` CIDRs: 127.0.0.0/8 (so the bench traffic passes) and n - 1 random ones, 9 in 10 IPv4 (/16 to
 * /32, none in 127/8) and 1 in 10 IPv6 (in 2001:db8::/32, /48 to /128), written as networks.
 */
export function benchCidrs(n: number): string[] {
  const rand = prng(20_261_124);
  const out = ['127.0.0.0/8'];
  while (out.length < n) {
    if (rand() < 0.9) {
      const prefix = 16 + Math.floor(rand() * 17);
      const first = 1 + Math.floor(rand() * 223); // 1-223: unicast, no 0/8
      if (first === 127) continue;
      const addr = ((first << 24) | Math.floor(rand() * 2 ** 24)) >>> 0;
      const net = prefix === 32 ? addr : (addr & ~(2 ** (32 - prefix) - 1)) >>> 0;
      out.push(`${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${prefix}`);
    } else {
      const prefix = 48 + Math.floor(rand() * 81);
      const words = [0x2001, 0xdb8, ...Array.from({ length: 6 }, () => Math.floor(rand() * 0x10000))];
      // Clear the host bits, word by word.
      for (let i = 0; i < 8; i++) {
        const keep = Math.max(0, Math.min(16, prefix - i * 16));
        words[i] &= keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
      }
      out.push(`${words.map((w) => w.toString(16)).join(':')}/${prefix}`);
    }
  }
  return out;
}

/** Whether this Switchboard knows the `ip-filter` policy type (it is being added on another branch). */
const HAS_IP_FILTER = policyTypeOf('ip-filter') !== undefined;

/** The route of `switchboard-policies`: ip-filter (when known), cors, headers, in that order. */
function policiesOptions(accessLog: boolean): SwitchboardOptions {
  const policies: NonNullable<SwitchboardOptions['policies']> = {
    cors: { type: 'cors', origins: CORS_ORIGINS },
    stamp: {
      type: 'headers',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a headers-policy template, filled by Switchboard per request
      request: { set: { 'x-client': '${client.ip}' } },
      response: { set: { 'x-served-by': 'switchboard' } },
    },
  };
  const routePolicies = ['cors', 'stamp'];
  if (HAS_IP_FILTER) {
    policies.allowlist = { type: 'ip-filter', allow: benchCidrs(POL_CIDRS) };
    routePolicies.unshift('allowlist');
  }
  return { balancer: 'round-robin', accessLog, policies, routePolicies };
}

function bodyFilterOptions(accessLog: boolean): SwitchboardOptions {
  return {
    balancer: 'round-robin',
    accessLog,
    passThroughType: PASS_THROUGH_TYPE,
    policies: { passthrough: { type: PASS_THROUGH_TYPE } },
    routePolicies: ['passthrough'],
  };
}

// ---------------------------------------------------------------- OTLP sink

interface OtlpSink {
  url: string;
  /** Export requests received so far. */
  exports(): number;
  close(): Promise<void>;
}

/** A receiver for the tracing subject's OTLP/HTTP exports: reads each body and answers 200. */
async function startOtlpSink(): Promise<OtlpSink> {
  let count = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    exports: () => count,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------- checks

interface Probe {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(url: string, headers: Record<string, string> = {}): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 2000, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * That the policies act: without Origin, x-served-by and no Access-Control-Allow-Origin; with the
 * allowed Origin, ACAO echoing it; upstream, x-client = 127.0.0.1 (the origin's /__bench/headers).
 * Returns the problems (empty when all is well).
 */
async function checkPolicies(st: Started): Promise<string[]> {
  const problems: string[] = [];
  const plain = await get(st.url);
  if (plain.headers['x-served-by'] !== 'switchboard') problems.push(`response without x-served-by: switchboard (got ${JSON.stringify(plain.headers['x-served-by'])})`);
  if (plain.headers['access-control-allow-origin'] !== undefined) problems.push('access-control-allow-origin on a request without Origin');
  const withOrigin = await get(st.url, { origin: ALLOWED_ORIGIN });
  if (withOrigin.status !== 200) problems.push(`HTTP ${withOrigin.status} with Origin ${ALLOWED_ORIGIN}`);
  if (withOrigin.headers['access-control-allow-origin'] !== ALLOWED_ORIGIN) {
    problems.push(`with Origin ${ALLOWED_ORIGIN}: access-control-allow-origin ${JSON.stringify(withOrigin.headers['access-control-allow-origin'])}`);
  }
  const echoed = await get(new URL('/__bench/headers', st.url).href);
  try {
    const h = JSON.parse(echoed.body) as Record<string, string>;
    if (h['x-client'] !== '127.0.0.1') problems.push(`upstream x-client ${JSON.stringify(h['x-client'])} (expected "127.0.0.1")`);
  } catch {
    problems.push(`/__bench/headers through the gateway: HTTP ${echoed.status}, not JSON`);
  }
  return problems;
}

// ---------------------------------------------------------------- report

interface PolicyRatio {
  subject: string;
  base: string;
  /** Ratio of the median req/s. */
  rps: number;
  /** Median and range of the paired ratios: each run over the mean of the nearest base runs before and after it. */
  rpsPaired: number;
  rpsPairedMin: number;
  rpsPairedMax: number;
  /** Ratio of the median CPU us per request (> 1 costs). */
  cpuPerReq: number;
  /** Median CPU us per request of the subject minus the base's: what it adds per request. */
  cpuUsAdded: number;
  p99: number;
  target: number;
  met: boolean;
}

export interface PoliciesReport {
  config: Record<string, unknown>;
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  summary: SubjectSummary[];
  ratios: PolicyRatio[];
  allMet: boolean | null;
}

/**
 * Paired req/s ratios of `subject` against `base`: each run over the mean of the nearest `base`
 * runs around it. With the no-policy route as the subject, its pairs are the inverse of the base's
 * runs against it (so that, bracketed, the pairs are always of neighbouring runs).
 */
function paired(rounds: RoundResult[], subject: string, base: string): number[] {
  if (subject === NO_POLICY) return pairedRps(rounds, base, subject).map((x) => 1 / x);
  return pairedRps(rounds, subject, base);
}

// ---------------------------------------------------------------- the suite

export async function runPoliciesSuite({ loadgen }: SuiteContext): Promise<PoliciesReport | null> {
  heading('policies: what a route\u2019s policies cost');
  const accessLog = POL_ACCESS_LOG ? 'ON (to a file)' : 'OFF';
  console.log(
    `  ${POL_ROUNDS} round(s) x ${POL_DURATION_S}s per subject (+${POL_WARMUP_S}s warm-up each, ${POL_FIRST_WARMUP_S}s the first time), ${POL_CONNECTIONS} connections, ` +
      `${ORIGIN_COUNT} origin(s), load generator: ${loadgen.name}${loadgen.name === 'wrk' ? ' -t1' : ''}; one Switchboard child per route, round robin, access log ${accessLog}.`,
  );
  console.log(`  ${MINIMAL}: bench/minimal-forwarder.ts (no logging); ${NO_POLICY}: the route without policies (as in peers).`);
  if (POL_BRACKET) console.log(`  bracketed (BENCH_POLICIES_BRACKET=1): every other run sits between two ${NO_POLICY} runs.`);
  console.log(
    `  ${POLICIES}: the route with ${HAS_IP_FILTER ? `ip-filter (allow: ${POL_CIDRS.toLocaleString('en-US')} CIDRs, 127.0.0.0/8 among them), ` : ''}` +
      `cors (origins ${CORS_ORIGINS.join(', ')}), headers (request set x-client: \${client.ip}; response set x-served-by); requests carry no Origin.`,
  );
  console.log(`  ${POLICIES_ORIGIN}: the same process, every request with Origin: ${ALLOWED_ORIGIN} (allowed: cors adds its headers to every response).`);
  if (!HAS_IP_FILTER) {
    console.log("  note: this Switchboard has no `ip-filter` policy type (policyTypeOf('ip-filter') is undefined): it is left out of the policies route.");
  }
  console.log(`  ${BODY_FILTER}: the route with a \`${PASS_THROUGH_TYPE}\` policy (registered by the child; onResponseBody: () => undefined).\n`);

  const config = {
    durationS: POL_DURATION_S,
    rounds: POL_ROUNDS,
    warmupS: POL_WARMUP_S,
    firstWarmupS: POL_FIRST_WARMUP_S,
    connections: POL_CONNECTIONS,
    origins: ORIGIN_COUNT,
    loadgen: loadgen.name,
    accessLog: POL_ACCESS_LOG,
    bracketedBy: POL_BRACKET ? NO_POLICY : null,
    subjects: POL_SUBJECTS,
    ipFilter: HAS_IP_FILTER ? { cidrs: POL_CIDRS } : null,
    corsOrigins: CORS_ORIGINS,
    allowedOrigin: ALLOWED_ORIGIN,
    passThroughType: PASS_THROUGH_TYPE,
    targets: TARGETS.map((t) => ({ ratio: `${t.subject} / ${t.base}`, min: t.min })),
  };

  let origins: Origin[] = [];
  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  const runs = new Map<string, Started>();
  let sink: OtlpSink | undefined;
  let rounds: RoundResult[] = [];
  try {
    origins = await startOrigins(
      'policies-origin',
      Array.from({ length: ORIGIN_COUNT }, () => 0),
    );
    const expectedBody = await originBody(origins);
    log(`policies origins: ${origins.map((o) => `${o.url} (pid ${o.proc.pid})`).join(', ')}`);

    const want = (n: string): boolean => POL_SUBJECTS.includes(n);
    const skip = (name: string, description: string, reason: string): void => {
      statuses.push({ name, description, status: 'skipped', reason });
    };

    const minimalDesc = 'minimal node:http + undici Pool forwarder, round robin, no logging (Node\u2019s floor)';
    if (want(MINIMAL)) await startChecked(MINIMAL, minimalDesc, () => startNodeMinimal(origins), expectedBody, running, statuses);
    else skip(MINIMAL, minimalDesc, 'not in BENCH_POLICIES_SUBJECTS');

    const noPolicyDesc = `Switchboard, one route without policies, round robin, access log ${accessLog}`;
    if (want(NO_POLICY)) {
      await startChecked(
        NO_POLICY,
        noPolicyDesc,
        () => startSwitchboard('policies-none', origins, { balancer: 'round-robin', accessLog: POL_ACCESS_LOG }),
        expectedBody,
        running,
        statuses,
      );
    } else skip(NO_POLICY, noPolicyDesc, 'not in BENCH_POLICIES_SUBJECTS');

    // One child serves both policies subjects (without and with Origin).
    const policiesDesc = `Switchboard, the route with ${HAS_IP_FILTER ? `ip-filter (${POL_CIDRS} CIDRs), ` : ''}cors, headers; no Origin`;
    const originDesc = `the ${POLICIES} child, every request with Origin: ${ALLOWED_ORIGIN}`;
    if (want(POLICIES) || want(POLICIES_ORIGIN)) {
      await startChecked(POLICIES, policiesDesc, () => startSwitchboard('policies-policies', origins, policiesOptions(POL_ACCESS_LOG)), expectedBody, running, statuses);
      const st = running.get(POLICIES);
      if (st) {
        const problems = await checkPolicies(st).catch((err: unknown) => [errorMessage(err)]);
        if (problems.length > 0) {
          // The policies do not do what they should: measuring them would mislead.
          running.delete(POLICIES);
          await stopProcess(st.proc, st.graceMs);
          const reason = `policies check failed: ${problems.join('; ')}`;
          console.log(`skipping ${POLICIES} and ${POLICIES_ORIGIN}: ${reason}`);
          Object.assign(statuses.find((s) => s.name === POLICIES)!, { status: 'failed', reason });
          statuses.push({ name: POLICIES_ORIGIN, description: originDesc, status: 'failed', reason });
        } else {
          log(`  ${POLICIES}: checked: x-served-by, x-client upstream, CORS headers with an allowed Origin only`);
          if (want(POLICIES_ORIGIN)) {
            running.set(POLICIES_ORIGIN, { ...st, owned: false, load: { headers: { origin: ALLOWED_ORIGIN } } });
            statuses.push({ name: POLICIES_ORIGIN, description: originDesc, status: 'ok' });
          } else skip(POLICIES_ORIGIN, originDesc, 'not in BENCH_POLICIES_SUBJECTS');
          if (!want(POLICIES)) {
            // Started for the -origin subject only: not measured itself (stopped with the rest).
            runs.set(`${POLICIES} (process)`, st);
            running.delete(POLICIES);
            Object.assign(statuses.find((s) => s.name === POLICIES)!, {
              status: 'skipped',
              reason: 'not in BENCH_POLICIES_SUBJECTS (its process serves the -origin subject)',
            });
          }
        }
      } else {
        statuses.push({ name: POLICIES_ORIGIN, description: originDesc, status: 'failed', reason: `${POLICIES} did not start` });
      }
    } else {
      skip(POLICIES, policiesDesc, 'not in BENCH_POLICIES_SUBJECTS');
      skip(POLICIES_ORIGIN, originDesc, 'not in BENCH_POLICIES_SUBJECTS');
    }

    const bodyDesc = `Switchboard, the route with a pass-through response-body filter (${PASS_THROUGH_TYPE})`;
    if (want(BODY_FILTER)) {
      await startChecked(
        BODY_FILTER,
        bodyDesc,
        () => startSwitchboard('policies-body-filter', origins, bodyFilterOptions(POL_ACCESS_LOG)),
        expectedBody,
        running,
        statuses,
      );
    } else skip(BODY_FILTER, bodyDesc, 'not in BENCH_POLICIES_SUBJECTS');

    const metricsDesc = 'Switchboard, the route without policies, metrics on (an admin listener on 127.0.0.1:0), tracing off';
    if (want(METRICS)) {
      const o = { balancer: 'round-robin', accessLog: POL_ACCESS_LOG, config: { admin: { address: '127.0.0.1:0' } } };
      await startChecked(METRICS, metricsDesc, () => startSwitchboard('policies-metrics', origins, o), expectedBody, running, statuses);
    } else skip(METRICS, metricsDesc, 'not in BENCH_POLICIES_SUBJECTS');

    const tracingDesc = `Switchboard, the route without policies, tracing with sampleRate ${TRACE_SAMPLE_RATE} to an OTLP/HTTP sink in the bench process`;
    if (want(TRACING)) {
      sink = await startOtlpSink();
      const tracing = { otlp: { endpoint: `${sink.url}/v1/traces` }, sampleRate: TRACE_SAMPLE_RATE };
      const o = { balancer: 'round-robin', accessLog: POL_ACCESS_LOG, config: { tracing } };
      await startChecked(TRACING, tracingDesc, () => startSwitchboard('policies-tracing', origins, o), expectedBody, running, statuses);
    } else skip(TRACING, tracingDesc, 'not in BENCH_POLICIES_SUBJECTS');

    if (running.size === 0) throw new Error('no subject could be started');
    const order = ALL_SUBJECTS.filter((n) => running.has(n));
    const plan: RoundsPlan = {
      label: 'policies',
      rounds: POL_ROUNDS,
      durationS: POL_DURATION_S,
      warmupS: POL_WARMUP_S,
      firstWarmupS: POL_FIRST_WARMUP_S,
      connections: POL_CONNECTIONS,
      baseline: POL_BRACKET && running.has(NO_POLICY) ? NO_POLICY : undefined,
    };
    log(`\npolicies: running ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan))} s in total\n`);
    rounds = await runRounds(loadgen, order, running, statuses, plan);
  } finally {
    for (const [k, st] of runs) running.set(k, st);
    await stopAll(running, origins);
    await sink?.close();
  }
  if (sink !== undefined) log(`policies: the OTLP sink received ${sink.exports()} export request(s)`);
  if (shuttingDown) return null;

  const summary = summarize(ALL_SUBJECTS, rounds);
  console.log(
    `\nResults (median of ${POL_ROUNDS} round(s), ${POL_DURATION_S}s each, ${POL_CONNECTIONS} connections, ${loadgen.name}; access log ${accessLog} in the Switchboard children):\n`,
  );
  printTable(
    ['subject', 'req/s', 'p50 ms', 'p99 ms', 'RSS MB', 'CPU %', 'CPU us/req', 'errors', 'rounds'],
    summary.map((s) => [
      s.subject,
      fmt(s.rps, 0),
      fmt(s.p50Ms, 2),
      fmt(s.p99Ms, 2),
      fmt(s.rssMB, 1),
      fmt(s.cpuPct, 0),
      fmt(s.cpuUsPerReq, 1),
      String(s.errors + s.non2xx),
      String(s.rounds),
    ]),
  );
  console.log('  RSS/CPU: the proxy process; CPU % = its CPU time (user+sys) / wall time during the run (100 = one core);');
  console.log('  CPU us/req = its CPU time during the run / requests answered (less sensitive than req/s to other load on the machine).');

  const ratios: PolicyRatio[] = [];
  console.log('\nRatios (req/s: higher is better; CPU/req, p99: lower is better; paired: each run over the mean of the nearest base runs before and after it):');
  for (const t of TARGETS) {
    const s = summary.find((x) => x.subject === t.subject);
    const b = summary.find((x) => x.subject === t.base);
    const label = `${t.subject} / ${t.base}`;
    if (!s || !b) {
      console.log(`  ${label.padEnd(44)} req/s = n/a (target >= ${t.min.toFixed(2)}): ${!s ? t.subject : t.base} did not run`);
      continue;
    }
    const pairs = paired(rounds, t.subject, t.base);
    const rps = s.rps / b.rps;
    const r: PolicyRatio = {
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
      met: rps >= t.min,
    };
    ratios.push(r);
    console.log(
      `  ${label.padEnd(44)} req/s = ${fmt(r.rps, 2)} (target >= ${t.min.toFixed(2)})${r.met ? '' : '  BELOW TARGET'}   ` +
        `paired ${fmt(r.rpsPaired, 2)} (${fmt(r.rpsPairedMin, 2)}-${fmt(r.rpsPairedMax, 2)})   CPU/req = ${fmt(r.cpuPerReq, 2)} ` +
        `(${r.cpuUsAdded >= 0 ? '+' : ''}${fmt(r.cpuUsAdded, 1)} us)   p99 = ${fmt(r.p99, 2)}`,
    );
  }
  console.log('  the verdict is on the ratio of the medians (as in peers); the paired median and range show how far noise moves it.');
  if (!HAS_IP_FILTER) console.log(`  (ip-filter left out: this Switchboard has no such policy type; ${POLICIES} = cors + headers only)`);
  const allMet = ratios.length === 0 ? null : ratios.every((r) => r.met);
  for (const st of statuses) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { config, subjects: statuses, rounds, summary, ratios, allMet };
}

export const policiesSuite: Suite<PoliciesReport> = { name: 'policies', run: runPoliciesSuite };
