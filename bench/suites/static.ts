// Suite `static` (issue 14 §5): a Switchboard static route (`routes.<name>.static: { root }`)
// against nginx `root` serving the same directory, for a 1 KiB and a 1 MiB file, in the same
// interleaved rounds. The 1 MiB file is loaded with fewer connections (BENCH_STATIC_LARGE_CONNECTIONS)
// and reported in MB/s too. One process each (nginx worker_processes 1, `sendfile on` as Debian's
// default nginx.conf; Switchboard one process). No target: the ratios are reported.
// Settings: BENCH_STATIC_* (below); the general ones are their defaults (lib/env.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { envNumber, GENERAL_ROUNDS, suiteRounds } from '../lib/env.ts';
import { shuttingDown, tmpDir } from '../lib/processes.ts';
import { fmt, heading, log, printTable } from '../lib/report.ts';
import { plannedSeconds, runRounds, type RoundResult, type RoundsPlan } from '../lib/rounds.ts';
import { summarize, type SubjectSummary } from '../lib/stats.ts';
import type { Suite, SuiteContext } from '../lib/suite.ts';
import { startChecked, startNginxHttp, startSwitchboard, stopAll, type Origin, type Started, type SubjectStatus } from '../lib/subjects.ts';
import { nginxBin } from '../lib/tools.ts';

const {
  durationS: S_DURATION_S,
  rounds: S_ROUNDS,
  warmupS: S_WARMUP_S,
  firstWarmupS: S_FIRST_WARMUP_S,
  connections: S_CONNECTIONS,
} = suiteRounds('STATIC', GENERAL_ROUNDS);
/** Connections for the 1 MiB file (each response is 1 MiB: a few connections fill the pipe). */
const S_LARGE_CONNECTIONS = envNumber('BENCH_STATIC_LARGE_CONNECTIONS', 8, true);
/** Access log of Switchboard and nginx: on (to files) by default, as in peers. */
const S_ACCESS_LOG = (process.env.BENCH_STATIC_ACCESS_LOG ?? '1') !== '0';

const FILES = [
  { label: '1k', file: '1k.txt', bytes: 1024 },
  { label: '1m', file: '1m.txt', bytes: 1024 * 1024 },
] as const;

/** ASCII content (the sanity check compares bodies as text). */
function content(bytes: number): string {
  const line = 'Switchboard static benchmark file, the same bytes for Switchboard and nginx.\n';
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

export interface StaticReport {
  config: { durationS: number; rounds: number; warmupS: number; firstWarmupS: number; connections: number; largeConnections: number; accessLog: boolean };
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  summary: (SubjectSummary & { bytes: number; mbPerS: number })[];
  ratios: Record<string, { rps: number; cpuPerReq: number | null; p99: number }>;
  loadAverage: { start: number[]; end: number[] };
}

async function runStaticSuite({ loadgen }: SuiteContext): Promise<StaticReport | null> {
  heading('static: a Switchboard static route vs nginx root, 1 KiB and 1 MiB files');
  const loadStart = os.loadavg();
  console.log(
    `  ${S_ROUNDS} round(s) x ${S_DURATION_S}s per subject (+${S_WARMUP_S}s warm-up each, ${S_FIRST_WARMUP_S}s the first time), ` +
      `${S_CONNECTIONS} connections for 1 KiB, ${S_LARGE_CONNECTIONS} for 1 MiB (BENCH_STATIC_LARGE_CONNECTIONS); load generator: ${loadgen.name}`,
  );
  console.log(`  one process each; nginx: sendfile on, no open_file_cache; access log ${S_ACCESS_LOG ? 'ON' : 'OFF'} for both (BENCH_STATIC_ACCESS_LOG).`);
  console.log(`  load average at start: ${loadStart.map((x) => x.toFixed(2)).join(' ')}\n`);

  const root = path.join(tmpDir, 'static-root');
  fs.mkdirSync(root, { recursive: true });
  for (const f of FILES) fs.writeFileSync(path.join(root, f.file), content(f.bytes));
  // What the readiness probes of `/` get (Switchboard's: startSwitchboard asks for `/`).
  fs.writeFileSync(path.join(root, 'index.html'), 'ok\n');

  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  let rounds: RoundResult[] = [];
  const names: string[] = [];
  try {
    const servers: { proxy: string; start: () => Promise<Started>; skip: string | null }[] = [
      {
        proxy: 'switchboard',
        skip: null,
        start: () =>
          startSwitchboard('static-switchboard', [{ url: 'http://127.0.0.1:9' } as Origin], {
            accessLog: S_ACCESS_LOG,
            // Replaces the child's proxied route: the upstream it still declares is never used.
            config: { routes: { all: { match: { path: '/' }, static: { root } } } },
          }),
      },
      {
        proxy: 'nginx',
        skip: nginxBin ? null : 'nginx is not installed (apt-get install nginx)',
        start: () =>
          startNginxHttp(
            'static-nginx',
            (port, dir) => `  access_log ${S_ACCESS_LOG ? path.join(dir, 'access.log') : 'off'};
  sendfile on;
  default_type application/octet-stream;
  types { text/plain txt; }
  server {
    listen 127.0.0.1:${port};
    location / { root ${root}; }
  }`,
            `/${FILES[0].file}`,
          ),
      },
    ];
    for (const srv of servers) {
      for (const f of FILES) names.push(`${srv.proxy}-${f.label}`);
      if (srv.skip) {
        console.log(`skipping ${srv.proxy}: ${srv.skip}`);
        for (const f of FILES) statuses.push({ name: `${srv.proxy}-${f.label}`, description: srv.proxy, status: 'skipped', reason: srv.skip });
        continue;
      }
      // One process per server, one subject per file: the first owns the process.
      let first: Started | null = null;
      for (const f of FILES) {
        const name = `${srv.proxy}-${f.label}`;
        await startChecked(
          name,
          `${srv.proxy} serving ${f.file} (${f.bytes} bytes)`,
          async () => {
            first ??= await srv.start();
            const base = new URL(first.url);
            return {
              ...first,
              url: `${base.origin}/${f.file}`,
              owned: name === `${srv.proxy}-${FILES[0].label}`,
              connections: f.bytes >= 2 ** 20 ? S_LARGE_CONNECTIONS : S_CONNECTIONS,
            };
          },
          content(f.bytes),
          running,
          statuses,
        );
      }
    }
    if (running.size === 0) throw new Error('no subject could be started');
    // Interleave: each file size's subjects next to each other.
    const order = FILES.flatMap((f) => ['switchboard', 'nginx'].map((p) => `${p}-${f.label}`)).filter((n) => running.has(n));
    const plan: RoundsPlan = {
      label: 'static',
      rounds: S_ROUNDS,
      durationS: S_DURATION_S,
      warmupS: S_WARMUP_S,
      firstWarmupS: S_FIRST_WARMUP_S,
      connections: S_CONNECTIONS,
    };
    log(`\nrunning ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan))} s in total\n`);
    rounds = await runRounds(loadgen, order, running, statuses, plan);
  } finally {
    await stopAll(running, []);
  }
  if (shuttingDown) return null;
  const loadEnd = os.loadavg();

  const summary = summarize(names, rounds).map((s) => {
    const bytes = FILES.find((f) => s.subject.endsWith(`-${f.label}`))?.bytes ?? 0;
    return { ...s, bytes, mbPerS: (s.rps * bytes) / 1e6 };
  });
  console.log(`\nResults (median of ${S_ROUNDS} round(s), ${S_DURATION_S}s each, ${loadgen.name}):\n`);
  printTable(
    ['subject', 'file', 'conns', 'req/s', 'MB/s', 'p50 ms', 'p99 ms', 'CPU %', 'CPU us/req', 'errors', 'rounds'],
    summary.map((s) => [
      s.subject,
      s.bytes >= 2 ** 20 ? '1 MiB' : '1 KiB',
      String(s.bytes >= 2 ** 20 ? S_LARGE_CONNECTIONS : S_CONNECTIONS),
      fmt(s.rps, 0),
      fmt(s.mbPerS, 1),
      fmt(s.p50Ms, 2),
      fmt(s.p99Ms, 2),
      fmt(s.cpuPct, 0),
      fmt(s.cpuUsPerReq, 1),
      String(s.errors + s.non2xx),
      String(s.rounds),
    ]),
  );
  console.log('');
  const ratios: StaticReport['ratios'] = {};
  for (const f of FILES) {
    const sb = summary.find((s) => s.subject === `switchboard-${f.label}`);
    const ng = summary.find((s) => s.subject === `nginx-${f.label}`);
    if (!sb || !ng) continue;
    const r = { rps: sb.rps / ng.rps, cpuPerReq: sb.cpuUsPerReq && ng.cpuUsPerReq ? sb.cpuUsPerReq / ng.cpuUsPerReq : null, p99: sb.p99Ms / ng.p99Ms };
    ratios[f.label] = r;
    console.log(
      `switchboard / nginx, ${f.label === '1m' ? '1 MiB' : '1 KiB'} file:  req/s = ${fmt(r.rps, 2)}   CPU/req = ${fmt(r.cpuPerReq, 2)}   p99 = ${fmt(r.p99, 2)}   (no target)`,
    );
  }
  for (const st of statuses) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  console.log(`  load average at end: ${loadEnd.map((x) => x.toFixed(2)).join(' ')}`);
  return {
    config: {
      durationS: S_DURATION_S,
      rounds: S_ROUNDS,
      warmupS: S_WARMUP_S,
      firstWarmupS: S_FIRST_WARMUP_S,
      connections: S_CONNECTIONS,
      largeConnections: S_LARGE_CONNECTIONS,
      accessLog: S_ACCESS_LOG,
    },
    subjects: statuses,
    rounds,
    summary,
    ratios,
    loadAverage: { start: loadStart, end: loadEnd },
  };
}

export const staticSuite: Suite<StaticReport> = { name: 'static', run: runStaticSuite };
