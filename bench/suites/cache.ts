// Suite `cache` (issue 14 §5): what a cache hit costs, over one origin answering the same 1 KiB
// object with `Cache-Control: public, max-age=3600`, in the same interleaved rounds:
//   switchboard-proxy       Switchboard, the route without a cache: every request goes to the origin
//   switchboard-cache-hit   Switchboard, the route with `cache` (memory store, 64 MiB): every request a hit
//   nginx-proxy-cache-hit   nginx `proxy_cache` (a temp dir), 1 worker, every request a hit (when installed)
//   varnish-hit             varnishd -s malloc,64m, default thread pools, every request a hit (when installed)
// Hits are checked before the load (Cache-Status, X-Cache-Status: HIT, X-Varnish with two ids), and
// during every measured run by counting the origin's requests (should be ~0 for the hit subjects).
// Targets: the Switchboard hit costs less CPU per request than the proxied request, and reaches at
// least 0.5x nginx's hit req/s with one process each (per core).
// Settings: BENCH_CACHE_* (below); the general ones are their defaults (lib/env.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { envList, envNumber, GENERAL_ROUNDS, suiteRounds } from '../lib/env.ts';
import { httpGet, freePort, waitReady } from '../lib/probes.ts';
import { processTree, shuttingDown, spawnToLog, stopProcess, tail, tmpDir } from '../lib/processes.ts';
import { errorMessage, fmt, heading, log, printTable } from '../lib/report.ts';
import { plannedSeconds, runRounds, type RoundResult, type RoundsPlan } from '../lib/rounds.ts';
import { summarize, type SubjectSummary } from '../lib/stats.ts';
import type { Suite, SuiteContext } from '../lib/suite.ts';
import {
  originBody,
  originCounts,
  startChecked,
  startNginxHttp,
  startOrigins,
  startSwitchboard,
  stopAll,
  type Origin,
  type Started,
  type SubjectStatus,
} from '../lib/subjects.ts';
import { findExecutable, nginxBin } from '../lib/tools.ts';

// ---------------------------------------------------------------- settings

const {
  durationS: C_DURATION_S,
  rounds: C_ROUNDS,
  warmupS: C_WARMUP_S,
  firstWarmupS: C_FIRST_WARMUP_S,
  connections: C_CONNECTIONS,
} = suiteRounds('CACHE', GENERAL_ROUNDS);
/** Size of the cached object. */
const C_BODY_BYTES = envNumber('BENCH_CACHE_BODY_BYTES', 1024, true);
/** Access log of the Switchboard children and nginx: on (to files) by default, as in peers. */
const C_ACCESS_LOG = (process.env.BENCH_CACHE_ACCESS_LOG ?? '1') !== '0';

const PROXY = 'switchboard-proxy';
const HIT = 'switchboard-cache-hit';
const NGINX = 'nginx-proxy-cache-hit';
const VARNISH = 'varnish-hit';
const ALL_SUBJECTS = [PROXY, HIT, NGINX, VARNISH];
const C_SUBJECTS = envList('BENCH_CACHE_SUBJECTS', ALL_SUBJECTS);
for (const s of C_SUBJECTS) {
  if (!ALL_SUBJECTS.includes(s)) throw new Error(`BENCH_CACHE_SUBJECTS: unknown subject ${JSON.stringify(s)} (known: ${ALL_SUBJECTS.join(', ')})`);
}
const varnishdBin = findExecutable('varnishd');

/** A run of a hit subject is not all hits when the origin answered more than this share of its requests. */
const MAX_MISS_SHARE = 0.001;

// ---------------------------------------------------------------- subjects

interface CacheSubject {
  name: string;
  description: string;
  unavailable(): string | null;
  start(origin: Origin): Promise<Started>;
  /** For a hit subject: whether a response's headers say it was a hit (and what they said). */
  isHit?(headers: Record<string, string | string[] | undefined>): { hit: boolean; said: string };
}

const one = (v: string | string[] | undefined): string => (Array.isArray(v) ? v.join(', ') : (v ?? ''));

const subjects: CacheSubject[] = [
  {
    name: PROXY,
    description: 'Switchboard, the route without a cache: every request proxied to the origin',
    unavailable: () => null,
    start: (origin) => startSwitchboard('cache-proxy', [origin], { accessLog: C_ACCESS_LOG }),
  },
  {
    name: HIT,
    description: 'Switchboard, the route with `cache` (store: { memory: 64MiB }): every measured request a hit',
    unavailable: () => null,
    start: (origin) =>
      startSwitchboard('cache-hit', [origin], {
        accessLog: C_ACCESS_LOG,
        policies: { cache: { type: 'cache', store: { memory: '64MiB' } } },
        routePolicies: ['cache'],
      }),
    isHit: (h) => ({ hit: /;\s*hit\b/.test(one(h['cache-status'])), said: `Cache-Status: ${one(h['cache-status'])}` }),
  },
  {
    name: NGINX,
    description: 'nginx proxy_cache (keys_zone 10m, max_size 64m, a temp dir), 1 process, upstream keepalive, access log on',
    unavailable: () => (nginxBin ? null : 'nginx is not installed (apt-get install nginx)'),
    start: (origin) =>
      startNginxHttp(
        'cache-nginx',
        (port, dir) => `  access_log ${C_ACCESS_LOG ? path.join(dir, 'access.log') : 'off'};
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=60m use_temp_path=off;
  upstream origin {
    server 127.0.0.1:${origin.port};
    keepalive 128;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_cache bench;
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header X-Cache-Status $upstream_cache_status;
    }
  }`,
      ),
    isHit: (h) => ({ hit: one(h['x-cache-status']) === 'HIT', said: `X-Cache-Status: ${one(h['x-cache-status'])}` }),
  },
  {
    name: VARNISH,
    description: 'Varnish (varnishd -F -j none -s malloc,64m, built-in VCL, default thread pools): manager + child CPU',
    unavailable: () => (varnishdBin ? null : 'varnishd is not installed (apt-get install varnish)'),
    start: (origin) => startVarnish('cache-varnish', origin),
    // A hit carries two transaction ids in X-Varnish (this request's and the one that stored the object).
    isHit: (h) => ({ hit: /^\d+ \d+$/.test(one(h['x-varnish'])), said: `X-Varnish: ${one(h['x-varnish'])}, Age: ${one(h.age)}` }),
  },
];

/**
 * varnishd in the foreground (-F) on a free port with `-b` the origin (the built-in VCL), its
 * working directory (-n) in the temp dir, no jail (-j none: it runs as the bench's user), storage
 * malloc 64 MiB. Its CPU is the manager's and the cache child's (processTree).
 */
async function startVarnish(name: string, origin: Origin): Promise<Started> {
  const dir = path.join(tmpDir, name);
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const logFile = path.join(tmpDir, `${name}.log`);
  const args = ['-F', '-j', 'none', '-n', dir, '-a', `127.0.0.1:${port}`, '-b', `127.0.0.1:${origin.port}`, '-s', 'malloc,64m'];
  const cp = spawnToLog(varnishdBin as string, args, logFile);
  const url = `http://127.0.0.1:${port}/`;
  try {
    await waitReady(url, cp, logFile, 30_000);
  } catch (err) {
    await stopProcess(cp);
    throw new Error(`${errorMessage(err)} ${tail(logFile)}`);
  }
  const pid = cp.pid ?? 0;
  return { url, pid, proc: cp, owned: true, logFile, processes: () => processTree(pid) };
}

// ---------------------------------------------------------------- the suite

export interface CacheReport {
  config: { durationS: number; rounds: number; warmupS: number; firstWarmupS: number; connections: number; bodyBytes: number; accessLog: boolean };
  subjects: SubjectStatus[];
  /** Per hit subject, what its second probe's headers said. */
  hitChecks: Record<string, string>;
  rounds: RoundResult[];
  summary: (SubjectSummary & { originRequests: number; requests: number; missShare: number | null })[];
  targets: { name: string; value: number | null; target: string; met: boolean | null }[];
  loadAverage: { start: number[]; end: number[] };
}

async function runCacheSuite({ loadgen }: SuiteContext): Promise<CacheReport | null> {
  heading('cache: Switchboard cache hit vs proxied request, nginx proxy_cache and Varnish hits');
  const loadStart = os.loadavg();
  console.log(
    `  ${C_ROUNDS} round(s) x ${C_DURATION_S}s per subject (+${C_WARMUP_S}s warm-up each, ${C_FIRST_WARMUP_S}s the first time), ${C_CONNECTIONS} connections, ` +
      `one origin: a ${C_BODY_BYTES}-byte body, Cache-Control: public, max-age=3600; load generator: ${loadgen.name}`,
  );
  console.log('  one process each (nginx worker_processes 1, Switchboard one process); Varnish: its manager + cache child, default thread pools.');
  console.log(`  access log: ${C_ACCESS_LOG ? 'ON' : 'OFF'} for Switchboard and nginx (BENCH_CACHE_ACCESS_LOG); Varnish logs to its shared-memory log only.`);
  console.log(`  load average at start: ${loadStart.map((x) => x.toFixed(2)).join(' ')}\n`);

  let origins: Origin[] = [];
  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  const hitChecks: Record<string, string> = {};
  let rounds: RoundResult[] = [];
  try {
    origins = await startOrigins('cache-origin', [0], [`--body-bytes=${C_BODY_BYTES}`, '--max-age=3600']);
    const origin = origins[0];
    const expectedBody = await originBody(origins);
    log(`origin: ${origin.url} (pid ${origin.proc.pid}), ${Buffer.byteLength(expectedBody)}-byte body`);

    for (const s of subjects) {
      if (!C_SUBJECTS.includes(s.name)) {
        statuses.push({ name: s.name, description: s.description, status: 'skipped', reason: 'not in BENCH_CACHE_SUBJECTS' });
        continue;
      }
      const why = s.unavailable();
      if (why) {
        console.log(`skipping ${s.name}: ${why}`);
        statuses.push({ name: s.name, description: s.description, status: 'skipped', reason: why });
        continue;
      }
      await startChecked(s.name, s.description, () => s.start(origin), expectedBody, running, statuses);
      const st = running.get(s.name);
      if (!st) continue;
      // Every subject: the origin's request count, read around each measured run.
      st.counters = async () => ({ originRequests: (await originCounts(origins))?.[0] ?? Number.NaN });
      if (s.isHit) {
        // startChecked's request stored it; this one must be a hit.
        const probe = await httpGet(st.url).catch((err: unknown) => ({ status: 0, headers: {}, body: errorMessage(err) }));
        const { hit, said } = s.isHit(probe.headers);
        hitChecks[s.name] = `HTTP ${probe.status}, ${said}`;
        if (!hit || probe.body !== expectedBody) {
          const reason = `the second request was not a hit: HTTP ${probe.status}, ${said}`;
          console.log(`  ${s.name}: ${reason}; not measured`);
          Object.assign(statuses.find((x) => x.name === s.name) as SubjectStatus, { status: 'failed', reason });
          if (st.owned) await stopProcess(st.proc, st.graceMs);
          running.delete(s.name);
          continue;
        }
        log(`  ${s.name}: hit confirmed (${said})`);
      }
    }
    if (running.size === 0) throw new Error('no subject could be started');

    const order = subjects.map((s) => s.name).filter((n) => running.has(n));
    const plan: RoundsPlan = {
      label: 'cache',
      rounds: C_ROUNDS,
      durationS: C_DURATION_S,
      warmupS: C_WARMUP_S,
      firstWarmupS: C_FIRST_WARMUP_S,
      connections: C_CONNECTIONS,
    };
    log(`\nrunning ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan))} s in total\n`);
    rounds = await runRounds(loadgen, order, running, statuses, plan);
  } finally {
    await stopAll(running, origins);
  }
  if (shuttingDown) return null;
  const loadEnd = os.loadavg();

  const summary = summarize(ALL_SUBJECTS, rounds).map((s) => {
    const rs = rounds.filter((r) => r.subject === s.subject);
    const originRequests = rs.reduce((a, r) => a + (r.counters?.originRequests ?? 0), 0);
    const requests = rs.reduce((a, r) => a + r.requests, 0);
    return { ...s, originRequests, requests, missShare: requests > 0 ? originRequests / requests : null };
  });

  console.log(`\nResults (median of ${C_ROUNDS} round(s), ${C_DURATION_S}s each, ${C_CONNECTIONS} connections, ${loadgen.name}, ${C_BODY_BYTES}-byte object):\n`);
  printTable(
    ['subject', 'req/s', 'p50 ms', 'p99 ms', 'CPU %', 'CPU us/req', 'req/core-s', 'origin req', 'of requests', 'errors', 'rounds'],
    summary.map((s) => [
      s.subject,
      fmt(s.rps, 0),
      fmt(s.p50Ms, 2),
      fmt(s.p99Ms, 2),
      fmt(s.cpuPct, 0),
      fmt(s.cpuUsPerReq, 1),
      fmt(s.cpuUsPerReq ? 1e6 / s.cpuUsPerReq : null, 0),
      String(s.originRequests),
      String(s.requests),
      String(s.errors + s.non2xx),
      String(s.rounds),
    ]),
  );
  console.log('  CPU: the subject\u2019s processes (user + system from /proc) during the measured runs; req/core-s = 1e6 / CPU us/req (what one busy core would serve).');
  console.log('  origin req: requests the origin answered during the measured runs (a hit subject should have ~0).');
  for (const s of summary) {
    if (s.subject !== PROXY && s.missShare !== null && s.missShare > MAX_MISS_SHARE) {
      console.log(`  (!) ${s.subject}: the origin answered ${fmt(s.missShare * 100, 2)} % of its requests: not all hits`);
    }
  }

  const by = (n: string): (typeof summary)[number] | undefined => summary.find((s) => s.subject === n);
  const targets: CacheReport['targets'] = [];
  const judge = (name: string, value: number | null, target: string, ok: (v: number) => boolean, extra = ''): void => {
    const met = value === null || !Number.isFinite(value) ? null : ok(value);
    targets.push({ name, value, target, met });
    console.log(`${name.padEnd(52)} = ${fmt(value, 2)} (target ${target})${met === false ? '  BELOW TARGET' : met === null ? '  n/a' : ''}${extra}`);
  };
  console.log('');
  const hit = by(HIT);
  const proxy = by(PROXY);
  const nginx = by(NGINX);
  const varnish = by(VARNISH);
  judge(
    `${HIT} / ${PROXY} CPU/req`,
    hit?.cpuUsPerReq && proxy?.cpuUsPerReq ? hit.cpuUsPerReq / proxy.cpuUsPerReq : null,
    '< 1.00',
    (v) => v < 1,
    hit?.cpuUsPerReq && proxy?.cpuUsPerReq ? `   (${fmt(hit.cpuUsPerReq, 1)} vs ${fmt(proxy.cpuUsPerReq, 1)} us)   req/s = ${fmt(hit.rps / proxy.rps, 2)}` : '',
  );
  judge(
    `${HIT} / ${NGINX} req/s`,
    hit && nginx ? hit.rps / nginx.rps : null,
    '>= 0.50',
    (v) => v >= 0.5,
    hit?.cpuUsPerReq && nginx?.cpuUsPerReq
      ? `   per core (1/CPU per req) = ${fmt(nginx.cpuUsPerReq / hit.cpuUsPerReq, 2)}   p99 = ${fmt(hit.p99Ms / nginx.p99Ms, 2)}`
      : '',
  );
  if (hit && varnish) {
    console.log(
      `${`${HIT} / ${VARNISH} req/s`.padEnd(52)} = ${fmt(hit.rps / varnish.rps, 2)} (no target)` +
        (hit.cpuUsPerReq && varnish.cpuUsPerReq ? `   per core (1/CPU per req) = ${fmt(varnish.cpuUsPerReq / hit.cpuUsPerReq, 2)}` : ''),
    );
  }
  for (const st of statuses) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  console.log(`  load average at end: ${loadEnd.map((x) => x.toFixed(2)).join(' ')}`);
  return {
    config: {
      durationS: C_DURATION_S,
      rounds: C_ROUNDS,
      warmupS: C_WARMUP_S,
      firstWarmupS: C_FIRST_WARMUP_S,
      connections: C_CONNECTIONS,
      bodyBytes: C_BODY_BYTES,
      accessLog: C_ACCESS_LOG,
    },
    subjects: statuses,
    hitChecks,
    rounds,
    summary,
    targets,
    loadAverage: { start: loadStart, end: loadEnd },
  };
}

export const cacheSuite: Suite<CacheReport> = { name: 'cache', run: runCacheSuite };
