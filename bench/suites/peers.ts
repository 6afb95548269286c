// Suite `peers`, the original benchmark: Switchboard against direct, node-minimal, nginx and
// haproxy, over the same origins, req/s, p50/p99, RSS and CPU, and the ratios between them.
// Settings: the general ones (BENCH_DURATION, BENCH_ROUNDS, ..., lib/env.ts) and BENCH_SUBJECTS.
import fs from 'node:fs';
import path from 'node:path';
import { CONNECTIONS, DURATION_S, FIRST_WARMUP_S, ORIGIN_COUNT, REPO_DIR, ROUNDS, SUBJECT_FILTER, WARMUP_S } from '../lib/env.ts';
import { shuttingDown } from '../lib/processes.ts';
import { fmt, heading, log, printTable } from '../lib/report.ts';
import { plannedSeconds, runRounds, type RoundResult, type RoundsPlan } from '../lib/rounds.ts';
import { summarize, type SubjectSummary } from '../lib/stats.ts';
import type { Suite, SuiteContext } from '../lib/suite.ts';
import {
  originBody,
  startSubjects,
  startHaproxy,
  startNginx,
  startNodeMinimal,
  startOrigins,
  startSwitchboard,
  stopAll,
  type Origin,
  type Started,
  type StartableSubject,
  type SubjectStatus,
} from '../lib/subjects.ts';
import { haproxyBin, nginxBin } from '../lib/tools.ts';

type Subject = StartableSubject;

const subjects: Subject[] = [
  {
    name: 'direct',
    description: 'one origin hit directly, no proxy (upper bound; RSS/CPU are the origin\u2019s)',
    unavailable: () => null,
    async start(origins) {
      const o = origins[0];
      return { url: `${o.url}/`, pid: o.proc.pid ?? 0, proc: o.proc, owned: false, logFile: o.logFile };
    },
  },
  {
    name: 'switchboard',
    description: 'Switchboard gateway (src/index.ts startGateway), round robin, access log ON to a file',
    unavailable: () => (fs.existsSync(path.join(REPO_DIR, 'src', 'index.ts')) ? null : 'src/index.ts not found (programmatic API not written yet)'),
    start: (origins) => startSwitchboard('switchboard', origins, { balancer: 'round-robin', accessLog: true }),
  },
  {
    name: 'node-minimal',
    description: 'minimal node:http + undici Pool forwarder, round robin, no logging (Node\u2019s floor)',
    unavailable: () => null,
    start: (origins) => startNodeMinimal(origins),
  },
  {
    name: 'nginx',
    description: 'nginx, 1 process (master_process off), upstream keepalive, access log ON to a file',
    unavailable: () => (nginxBin ? null : 'nginx is not installed'),
    start: (origins) => startNginx('nginx', origins),
  },
  {
    name: 'haproxy',
    description: 'HAProxy, mode http, nbthread 1, http-reuse always, access log ON (stdout to a file)',
    unavailable: () => (haproxyBin ? null : 'haproxy is not installed'),
    start: (origins) => startHaproxy('haproxy', origins),
  },
];

export interface PeersReport {
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  summary: SubjectSummary[];
  ratios: Record<string, Record<string, { rps: number; p50: number; p99: number; rss: number }>>;
  target: { ratio: number; met: boolean } | null;
}

/** The original benchmark: Switchboard against direct, node-minimal, nginx and haproxy. */
export async function runPeersSuite({ loadgen }: SuiteContext): Promise<PeersReport | null> {
  heading('peers: Switchboard vs direct, node-minimal, nginx, haproxy');
  console.log(
    `  ${ROUNDS} round(s) x ${DURATION_S}s per subject (+${WARMUP_S}s warm-up each, ${FIRST_WARMUP_S}s in round 1), ${CONNECTIONS} connections, ` +
      `${ORIGIN_COUNT} origin(s), load generator: ${loadgen.name}${loadgen.name === 'wrk' ? ' -t1' : ''}`,
  );
  console.log('  equal footing: nginx runs 1 worker process, haproxy 1 thread, because Node is single-threaded.');
  console.log('  access log: ON for switchboard, nginx, haproxy (to files); OFF for node-minimal (the floor) and direct.\n');

  let origins: Origin[] = [];
  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  let rounds: RoundResult[] = [];

  try {
    origins = await startOrigins(
      'origin',
      Array.from({ length: ORIGIN_COUNT }, () => 0),
    );
    const expectedBody = await originBody(origins);
    log(`origins: ${origins.map((o) => `${o.url} (pid ${o.proc.pid})`).join(', ')}`);

    // Start every subject once; failures are reported and skipped.
    await startSubjects(subjects, origins, expectedBody, running, statuses, (s) =>
      SUBJECT_FILTER.length > 0 && !SUBJECT_FILTER.includes(s.name) ? 'not in BENCH_SUBJECTS' : null,
    );

    const order = subjects.map((s) => s.name).filter((n) => running.has(n));
    const plan: RoundsPlan = {
      label: 'peers',
      rounds: ROUNDS,
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      firstWarmupS: FIRST_WARMUP_S,
      connections: CONNECTIONS,
    };
    log(`\nrunning ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan))} s in total\n`);
    rounds = await runRounds(loadgen, order, running, statuses, plan);
  } finally {
    await stopAll(running, origins);
  }
  if (shuttingDown) return null;

  const summary = summarize(
    subjects.map((s) => s.name),
    rounds,
  );

  console.log(`\nResults (median of ${ROUNDS} round(s), ${DURATION_S}s each, ${CONNECTIONS} connections, ${loadgen.name}):\n`);
  printTable(
    ['subject', 'req/s', 'p50 ms', 'p99 ms', 'RSS MB', 'CPU %', 'errors', 'rounds'],
    summary.map((s) => [s.subject, fmt(s.rps, 0), fmt(s.p50Ms, 2), fmt(s.p99Ms, 2), fmt(s.rssMB, 1), fmt(s.cpuPct, 0), String(s.errors + s.non2xx), String(s.rounds)]),
  );
  console.log('  RSS/CPU: the proxy process (for direct, the origin); CPU % = CPU time / wall time during the measured run (100 = one core).');

  const ratios: PeersReport['ratios'] = {};
  for (const baseName of ['switchboard', 'node-minimal', 'nginx', 'haproxy']) {
    const base = summary.find((s) => s.subject === baseName);
    if (!base) continue;
    console.log(`\nRelative to ${baseName} (req/s: higher is better; p50, p99, RSS: lower is better):`);
    ratios[baseName] = {};
    for (const s of summary) {
      if (s.subject === baseName) continue;
      const rps = s.rps / base.rps;
      const p50 = s.p50Ms / base.p50Ms;
      const p99 = s.p99Ms / base.p99Ms;
      const rss = s.rssMB !== null && base.rssMB ? s.rssMB / base.rssMB : Number.NaN;
      ratios[baseName][s.subject] = { rps, p50, p99, rss };
      console.log(`  ${`${s.subject} / ${baseName}`.padEnd(28)} req/s = ${fmt(rps, 2)}   p50 = ${fmt(p50, 2)}   p99 = ${fmt(p99, 2)}   RSS = ${fmt(rss, 2)}`);
    }
  }

  const sb = summary.find((s) => s.subject === 'switchboard');
  const nm = summary.find((s) => s.subject === 'node-minimal');
  let target: PeersReport['target'] = null;
  console.log('');
  if (sb && nm) {
    const ratio = sb.rps / nm.rps;
    target = { ratio, met: ratio >= 0.9 };
    console.log(`switchboard / node-minimal req/s = ${ratio.toFixed(2)} (target >= 0.90)${ratio >= 0.9 ? '' : '  BELOW TARGET'}`);
  } else {
    console.log(`switchboard / node-minimal req/s = n/a (target >= 0.90): ${!sb ? 'switchboard' : 'node-minimal'} did not run`);
  }
  for (const st of statuses) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { subjects: statuses, rounds, summary, ratios, target };
}

export const peersSuite: Suite<PeersReport> = {
  name: 'peers',
  run: runPeersSuite,
  // At the top level of the results file, as before the other suites existed (empty when it did not run).
  results: (r) => ({
    subjects: r?.subjects ?? [],
    rounds: r?.rounds ?? [],
    summary: r?.summary ?? [],
    ratios: r?.ratios ?? {},
    target: r?.target ?? null,
  }),
};
