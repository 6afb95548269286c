// Suite `workers`: what a second worker process buys. Switchboard with `workers: 1` and `workers: 2`
// (the config's top-level key: a supervisor forks N workers that each serve every listener), nginx
// with `worker_processes 1` and `2` (master + workers), HAProxy with `nbthread 1` and `2` (threads of
// one process), over the same origins, interleaved in the same rounds. For each: req/s, p99, CPU
// us/request summed over every process of the subject, RSS per worker (idle, before any load, and
// after the runs), how the CPU spread over the workers, and the N-worker / 1-worker ratios.
// Settings: BENCH_WORKERS_* (bench/README.md).
import fs from 'node:fs';
import path from 'node:path';
import { envList, envNumber, GENERAL_ROUNDS, ORIGIN_COUNT, REPO_DIR, suiteRounds } from '../lib/env.ts';
import { freePort, waitReady } from '../lib/probes.ts';
import { isRunning, processTree, rssMB, shuttingDown, sleep, stopProcess, tmpDir } from '../lib/processes.ts';
import { errorMessage, fmt, heading, log, printTable } from '../lib/report.ts';
import { plannedSeconds, runRounds, type RoundResult, type RoundsPlan } from '../lib/rounds.ts';
import { median, summarize, type SubjectSummary } from '../lib/stats.ts';
import type { Suite, SuiteContext } from '../lib/suite.ts';
import {
  buildDistCli,
  originBody,
  spawnSwitchboardCli,
  startSubjects,
  startHaproxy,
  startNginx,
  startNginxOrigins,
  startOrigins,
  stopAll,
  SWITCHBOARD_GRACE_MS,
  type Origin,
  type Started,
  type SubjectStatus,
} from '../lib/subjects.ts';
import { haproxyBin, nginxBin } from '../lib/tools.ts';

// ---------------------------------------------------------------- settings

const {
  durationS: WORKERS_DURATION_S,
  rounds: WORKERS_ROUNDS,
  warmupS: WORKERS_WARMUP_S,
  firstWarmupS: WORKERS_FIRST_WARMUP_S,
  connections: WORKERS_CONNECTIONS,
} = suiteRounds('WORKERS', GENERAL_ROUNDS);
/** The worker (thread) counts each proxy runs with; the ratios are of the largest over 1. */
const WORKER_COUNTS = envList('BENCH_WORKERS_COUNTS', ['1', '2']).map((c) => {
  const n = Number(c);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_WORKERS_COUNTS: not a positive integer: ${JSON.stringify(c)}`);
  return n;
});
if (!WORKER_COUNTS.includes(1)) WORKER_COUNTS.unshift(1); // the base of the ratios
const PROXIES = ['switchboard', 'nginx', 'haproxy'] as const;
type Proxy = (typeof PROXIES)[number];
const WORKERS_PROXIES = envList('BENCH_WORKERS_PROXIES', PROXIES);
for (const p of WORKERS_PROXIES) {
  if (!(PROXIES as readonly string[]).includes(p)) throw new Error(`BENCH_WORKERS_PROXIES: unknown proxy ${JSON.stringify(p)} (known: ${PROXIES.join(', ')})`);
}
const WORKERS_ACCESS_LOG = envNumber('BENCH_WORKERS_ACCESS_LOG', 1, true, true) !== 0;
/** The origins: nginx `return 200` (the cheapest, when installed: more of the cores for the subjects) or bench/origin.ts. */
const WORKERS_ORIGIN = (process.env.BENCH_WORKERS_ORIGIN ?? '').trim() || (nginxBin ? 'nginx' : 'node');
if (WORKERS_ORIGIN !== 'nginx' && WORKERS_ORIGIN !== 'node') throw new Error(`BENCH_WORKERS_ORIGIN: ${JSON.stringify(WORKERS_ORIGIN)} is neither nginx nor node`);
if (WORKERS_ORIGIN === 'nginx' && !nginxBin) throw new Error('BENCH_WORKERS_ORIGIN=nginx: nginx is not installed');
/**
 * The load: `keepalive` (default; wrk's connections stay open) or `close` (every request on a new
 * connection: wrk sends `Connection: close` and reconnects, so accepting, the connection's set-up
 * and its close are part of every request, as in a connections-per-second test).
 */
const WORKERS_LOAD = (process.env.BENCH_WORKERS_LOAD ?? '').trim() || 'keepalive';
if (WORKERS_LOAD !== 'keepalive' && WORKERS_LOAD !== 'close') throw new Error(`BENCH_WORKERS_LOAD: ${JSON.stringify(WORKERS_LOAD)} is neither keepalive nor close`);
/**
 * What Switchboard runs: `dist` (default), the compiled CLI `npm run build` makes (what
 * bin/switchboard.js runs, and what issue 11's RSS per idle worker is about), or `ts`, the
 * TypeScript sources (`src/cli/main.ts`; type stripping adds about 25 MB per process).
 */
const WORKERS_SOURCE = (process.env.BENCH_WORKERS_SOURCE ?? '').trim() || 'dist';
if (WORKERS_SOURCE !== 'dist' && WORKERS_SOURCE !== 'ts') throw new Error(`BENCH_WORKERS_SOURCE: ${JSON.stringify(WORKERS_SOURCE)} is neither dist nor ts`);
/** How long a Switchboard with N workers has to show its N worker processes after it first answers. */
const WORKERS_READY_MS = 15_000;

// ---------------------------------------------------------------- subjects

/** A subject's name: `switchboard-2` is Switchboard with 2 workers; `haproxy-2`, HAProxy with 2 threads. */
const subjectName = (proxy: Proxy, n: number): string => `${proxy}-${n}`;

/** The config of a Switchboard with `workers` workers (omitted when null: a Switchboard without the key). */
function switchboardConfig(port: number, origins: Origin[], workers: number | null): string {
  const q = (s: string): string => JSON.stringify(s); // a JSON string is a YAML double-quoted scalar
  return `# generated by bench/run.ts (suite workers)
${workers === null ? '' : `workers: ${workers}\n`}listeners:
  web: { address: ${q(`127.0.0.1:${port}`)}, protocol: http }
routes:
  all: { match: { path: "/" }, upstream: origins }
upstreams:
  origins:
    balancer: round-robin
    endpoints:
${origins.map((o) => `      - { url: ${q(o.url)} }`).join('\n')}
`;
}

/** The processes of a subject that serve (the workers): all but the first (supervisor, master) when there are several. */
function workerPids(tree: number[]): number[] {
  return tree.length > 1 ? tree.slice(1) : tree;
}

/**
 * Waits until the process tree of `pid` counts `want` processes or more (a supervisor and its
 * workers), up to `timeoutMs`; returns the last tree seen.
 */
async function waitForProcesses(pid: number, want: number, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let tree = processTree(pid);
  while (tree.length < want && Date.now() < deadline) {
    await sleep(100);
    tree = processTree(pid);
  }
  return tree;
}

/** When `pid` started (field 22 of /proc/<pid>/stat, in clock ticks since boot), so a reused pid is not mistaken for it; null when gone. */
function startTimeOf(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * SIGKILLs the workers a subject left behind after its supervisor or master stopped (they are not
 * the bench's children, so the clean-up of lib/processes.ts does not know them), each by pid, when
 * it is still the same process.
 */
function killLeftovers(seen: { pid: number; since: string | null }[]): void {
  for (const { pid, since } of seen) {
    if (since === null || startTimeOf(pid) !== since) continue;
    log(`  process ${pid} outlived its supervisor/master: killed`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}

/** Notes printed after the table: fall-backs taken while starting the subjects. */
const notes: string[] = [];

/**
 * Switchboard from its CLI (`switchboard start -c <yaml>`), `workers: N` at the top of the config,
 * one http listener on a port picked here (every worker serves it), round robin over the origins,
 * access log on (BENCH_WORKERS_ACCESS_LOG). With N > 1, it is ready when it answers and shows N
 * processes besides the supervisor. A Switchboard without the `workers` key (it refuses the config)
 * runs `workers: 1` without the key (the one process it always was) and fails `workers: N`.
 */
async function startSwitchboardWorkers(name: string, origins: Origin[], workers: number): Promise<Started> {
  const attempt = async (key: number | null): Promise<Started> => {
    const port = await freePort();
    const accessLog = WORKERS_ACCESS_LOG ? path.join(tmpDir, `${name}-access.log`) : undefined;
    const cli = WORKERS_SOURCE === 'dist' ? await buildDistCli() : undefined;
    const { cp, conf, logFile } = spawnSwitchboardCli(name, switchboardConfig(port, origins, key), accessLog ?? 'off', cli);
    const url = `http://127.0.0.1:${port}/`;
    try {
      await waitReady(url, cp, logFile, 15_000);
    } catch (err) {
      const exited = !isRunning(cp);
      await stopProcess(cp);
      throw new Error(`${errorMessage(err)}${exited ? `\n    (BENCH_KEEP_TMP=1 keeps ${conf})` : ''}`);
    }
    const pid = cp.pid ?? 0;
    if (workers > 1) {
      const tree = await waitForProcesses(pid, workers + 1, WORKERS_READY_MS);
      if (tree.length < workers + 1) {
        await stopProcess(cp, SWITCHBOARD_GRACE_MS);
        throw new Error(`workers: ${workers}: ${tree.length} process(es) after ${WORKERS_READY_MS} ms, expected a supervisor and ${workers} workers`);
      }
    }
    return { url, pid, proc: cp, owned: true, accessLog, logFile, graceMs: SWITCHBOARD_GRACE_MS, processes: () => processTree(pid) };
  };
  try {
    return await attempt(workers);
  } catch (err) {
    if (workers !== 1 || shuttingDown) throw err;
    // Probably a Switchboard from before the `workers` key: one process is what `workers: 1` means.
    const st = await attempt(null);
    const lines = errorMessage(err)
      .split('\n')
      .map((l) => l.replace(/^\s*\|\s*/, '').trim());
    const why = lines.find((l) => l.includes('workers')) ?? lines[0];
    notes.push(`${name}: the config with \`workers: 1\` was refused (${why}); started without the key (one process)`);
    return st;
  }
}

interface Subject {
  name: string;
  proxy: Proxy;
  workers: number;
  description: string;
  unavailable(): string | null;
  start(origins: Origin[]): Promise<Started>;
}

/** How each proxy runs with `n` workers (threads): its description, why it cannot run here, how it starts. */
const PROXY_KINDS: Record<Proxy, (name: string, n: number) => Pick<Subject, 'description' | 'unavailable' | 'start'>> = {
  switchboard: (name, n) => ({
    description: `Switchboard CLI (${WORKERS_SOURCE === 'dist' ? 'compiled dist/' : 'TypeScript sources'}), workers: ${n}${n > 1 ? ' (supervisor + workers)' : ''}, round robin, access log ${WORKERS_ACCESS_LOG ? 'on' : 'off'}`,
    unavailable: () => (fs.existsSync(path.join(REPO_DIR, 'src', 'cli', 'main.ts')) ? null : 'src/cli/main.ts not found'),
    start: (origins) => startSwitchboardWorkers(name, origins, n),
  }),
  nginx: (name, n) => ({
    description: `nginx, master + worker_processes ${n}, upstream keepalive, access log on`,
    unavailable: () => (nginxBin ? null : 'nginx is not installed'),
    start: (origins) => startNginx(name, origins, undefined, n),
  }),
  haproxy: (name, n) => ({
    description: `HAProxy, mode http, nbthread ${n} (one process), http-reuse always, access log on`,
    unavailable: () => (haproxyBin ? null : 'haproxy is not installed'),
    start: async (origins) => {
      const st = await startHaproxy(name, origins, n);
      return { ...st, processes: () => processTree(st.pid) };
    },
  }),
};

function subjectsOf(proxy: Proxy): Subject[] {
  return WORKER_COUNTS.map((n) => ({ name: subjectName(proxy, n), proxy, workers: n, ...PROXY_KINDS[proxy](subjectName(proxy, n), n) }));
}

// ---------------------------------------------------------------- report

/** Per subject: what the suite adds to the summary of lib/stats.ts. */
export interface WorkersSummary extends SubjectSummary {
  proxy: string;
  workers: number;
  /** Processes of the subject (supervisor or master included) at its last run. */
  processCount: number | null;
  /** Median RSS of one worker process (the one process when there is one), before any load and after the runs. */
  idleRssPerWorkerMB: number | null;
  rssPerWorkerMB: number | null;
  /** RSS of every process of the subject, summed (shared pages counted in each process), after the runs. */
  rssTotalMB: number | null;
  /** Median share (0-1) of the subject's CPU each worker used, in worker order: how evenly the work spread. */
  workerCpuShares: number[] | null;
  /** The shares of the run whose busiest worker had the largest share: a median split can hide one run where a worker did everything. */
  workerCpuSharesWorst: number[] | null;
  /** Medians of who used the cores during its runs (100 = one core). */
  machineCpuPct: number | null;
  originsCpuPct: number | null;
  loadgenCpuPct: number | null;
}

export interface WorkersReport {
  config: Record<string, unknown>;
  subjects: SubjectStatus[];
  /** Per subject, the RSS of each process before any load (supervisor or master first). */
  idle: Record<string, { pid: number; rssMB: number | null }[]>;
  rounds: RoundResult[];
  summary: WorkersSummary[];
  /** Per proxy: its N-worker subject over its 1-worker subject, for the largest N. */
  ratios: Record<string, { workers: number; rps: number; p99: number; cpuPerReq: number | null }>;
  notes: string[];
}

function medianOrNull(xs: (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length > 0 ? median(v) : null;
}

function summarizeWorkers(subjects: Subject[], rounds: RoundResult[], idle: WorkersReport['idle']): WorkersSummary[] {
  const base = summarize(
    subjects.map((s) => s.name),
    rounds,
  );
  return base.map((s) => {
    const subj = subjects.find((x) => x.name === s.subject) as Subject;
    const rs = rounds.filter((r) => r.subject === s.subject);
    const procRuns = rs.map((r) => r.processes ?? []).filter((p) => p.length > 0);
    const workersOf = (ps: { pid: number }[]): number[] => workerPids(ps.map((p) => p.pid));
    const rssPerWorker = medianOrNull(procRuns.flatMap((ps) => ps.filter((p) => workersOf(ps).includes(p.pid)).map((p) => p.rssMB)));
    const rssTotal = medianOrNull(procRuns.map((ps) => ps.reduce((a, p) => a + (p.rssMB ?? 0), 0)));
    const idlePs = idle[s.subject] ?? [];
    const idleWorkers = workersOf(idlePs);
    const idleRss = medianOrNull(idlePs.filter((p) => idleWorkers.includes(p.pid)).map((p) => p.rssMB));
    let shares: number[] | null = null;
    const shareRuns = procRuns
      .map((ps) => ps.filter((p) => workersOf(ps).includes(p.pid)).map((p) => p.cpuS ?? 0))
      .filter((cs) => cs.length > 1 && cs.reduce((a, b) => a + b, 0) > 0)
      .map((cs) => {
        const sum = cs.reduce((a, b) => a + b, 0);
        return cs.map((c) => c / sum).sort((a, b) => b - a); // busiest first: workers differ from run to run only by pid
      });
    let worst: number[] | null = null;
    if (shareRuns.length > 0) {
      shares = shareRuns[0].map((_, i) => median(shareRuns.map((x) => x[i] ?? 0)));
      worst = shareRuns.reduce((a, b) => (b[0] > a[0] ? b : a));
    }
    return {
      ...s,
      proxy: subj.proxy,
      workers: subj.workers,
      processCount: procRuns.at(-1)?.length ?? null,
      idleRssPerWorkerMB: idleRss,
      rssPerWorkerMB: rssPerWorker,
      rssTotalMB: rssTotal,
      workerCpuShares: shares,
      workerCpuSharesWorst: worst,
      machineCpuPct: medianOrNull(rs.map((r) => r.machineCpuPct)),
      originsCpuPct: medianOrNull(rs.map((r) => r.originsCpuPct)),
      loadgenCpuPct: medianOrNull(rs.map((r) => r.loadgenCpuPct)),
    };
  });
}

// ---------------------------------------------------------------- the suite

/** Switchboard, nginx and HAProxy with 1 and N workers (threads), over the same origins, interleaved. */
export async function runWorkersSuite({ loadgen }: SuiteContext): Promise<WorkersReport | null> {
  notes.length = 0;
  heading(`workers: Switchboard, nginx, haproxy with ${WORKER_COUNTS.join(' and ')} worker(s)`);
  console.log(
    `  ${WORKERS_ROUNDS} round(s) x ${WORKERS_DURATION_S}s per subject (+${WORKERS_WARMUP_S}s warm-up each, ${WORKERS_FIRST_WARMUP_S}s in round 1), ` +
      `${WORKERS_CONNECTIONS} ${WORKERS_LOAD === 'close' ? 'connections, each request on a new one (Connection: close)' : 'keep-alive connections'}, ${ORIGIN_COUNT} origin(s) (${WORKERS_ORIGIN === 'nginx' ? 'nginx return 200' : 'bench/origin.ts'}), load generator: ${loadgen.name}${loadgen.name === 'wrk' ? ' -t1' : ''}`,
  );
  console.log('  CPU us/req: every process of the subject (Switchboard supervisor + workers, nginx master + workers, the haproxy process and its threads).');
  console.log(
    `  the load generator and the origins share this machine's cores with the subject: read who used them (machine, origins, ${loadgen.name} columns)\n` +
      '  beside req/s; a second worker can only add throughput while cores are left over.\n',
  );

  const subjects = WORKERS_PROXIES.flatMap((p) => subjectsOf(p as Proxy));
  let origins: Origin[] = [];
  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  const idle: WorkersReport['idle'] = {};
  let rounds: RoundResult[] = [];
  try {
    origins =
      WORKERS_ORIGIN === 'nginx'
        ? await startNginxOrigins('workers-origin', ORIGIN_COUNT)
        : await startOrigins(
            'workers-origin',
            Array.from({ length: ORIGIN_COUNT }, () => 0),
          );
    const expectedBody = await originBody(origins);
    log(`origins: ${origins.map((o) => `${o.url} (pid ${o.proc.pid})`).join(', ')}`);
    await startSubjects(subjects, origins, expectedBody, running, statuses);

    // Idle RSS, before any load: every subject started and answered its one sanity request.
    await sleep(500);
    for (const [name, st] of running) {
      const tree = st.processes ? st.processes() : [st.pid];
      idle[name] = tree.map((pid) => ({ pid, rssMB: rssMB(pid) }));
      log(`  ${name}: ${tree.length} process(es), idle RSS ${idle[name].map((p) => fmt(p.rssMB, 1)).join(' + ')} MB`);
    }

    const order = subjects.map((s) => s.name).filter((n) => running.has(n));
    const plan: RoundsPlan = {
      label: 'workers',
      rounds: WORKERS_ROUNDS,
      durationS: WORKERS_DURATION_S,
      warmupS: WORKERS_WARMUP_S,
      firstWarmupS: WORKERS_FIRST_WARMUP_S,
      connections: WORKERS_CONNECTIONS,
      origins,
      load: WORKERS_LOAD === 'close' ? { headers: { connection: 'close' } } : undefined,
    };
    log(`\nrunning ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan))} s in total\n`);
    rounds = await runRounds(loadgen, order, running, statuses, plan);
  } finally {
    const seen = [...running.values()].flatMap((st) => (st.processes ? st.processes() : [])).map((pid) => ({ pid, since: startTimeOf(pid) }));
    await stopAll(running, origins);
    killLeftovers(seen);
  }
  if (shuttingDown) return null;

  const summary = summarizeWorkers(subjects, rounds, idle);
  const pct = (shares: number[]): string => shares.map((x) => (x * 100).toFixed(0)).join('/');
  console.log(`\nResults (median of ${WORKERS_ROUNDS} round(s), ${WORKERS_DURATION_S}s each, ${WORKERS_CONNECTIONS} connections, ${loadgen.name}):\n`);
  printTable(
    [
      'subject',
      'procs',
      'req/s',
      'p50 ms',
      'p99 ms',
      'CPU %',
      'CPU us/req',
      'worker CPU %',
      'RSS/worker idle',
      'RSS/worker',
      'RSS total',
      'machine %',
      'origins %',
      `${loadgen.name} %`,
      'errors',
    ],
    summary.map((s) => [
      s.subject,
      s.processCount === null ? '-' : String(s.processCount),
      fmt(s.rps, 0),
      fmt(s.p50Ms, 2),
      fmt(s.p99Ms, 2),
      fmt(s.cpuPct, 0),
      fmt(s.cpuUsPerReq, 1),
      s.workerCpuShares && s.workerCpuSharesWorst ? `${pct(s.workerCpuShares)} (${pct(s.workerCpuSharesWorst)})` : '-',
      fmt(s.idleRssPerWorkerMB, 1),
      fmt(s.rssPerWorkerMB, 1),
      fmt(s.rssTotalMB, 1),
      fmt(s.machineCpuPct, 0),
      fmt(s.originsCpuPct, 0),
      fmt(s.loadgenCpuPct, 0),
      String(s.errors + s.non2xx),
    ]),
  );
  console.log(
    '  procs: processes of the subject (supervisor/master + workers; haproxy: one process, its threads inside). CPU %: all of them (100 = one core).\n' +
      '  worker CPU %: each worker\u2019s share of the workers\u2019 CPU, busiest first (in brackets: the most uneven run). RSS in MB; per worker = median over worker processes\n' +
      '  (haproxy: the whole process); idle = before any load; total sums every process (shared pages counted in each).\n' +
      '  machine %: all busy CPU on the machine during the run, whoever used it (the rest is other processes).',
  );

  const ratios: WorkersReport['ratios'] = {};
  const maxN = Math.max(...WORKER_COUNTS);
  if (maxN > 1) {
    console.log(`\n${maxN} workers / 1 worker (req/s: higher is better; p99, CPU us/req: lower is better):`);
    for (const proxy of PROXIES) {
      const one = summary.find((s) => s.subject === subjectName(proxy, 1));
      const many = summary.find((s) => s.subject === subjectName(proxy, maxN));
      if (!one || !many) continue;
      const cpuPerReq = one.cpuUsPerReq && many.cpuUsPerReq !== null ? many.cpuUsPerReq / one.cpuUsPerReq : null;
      ratios[proxy] = { workers: maxN, rps: many.rps / one.rps, p99: many.p99Ms / one.p99Ms, cpuPerReq };
      const what = proxy === 'haproxy' ? 'threads' : 'workers';
      console.log(
        `  ${`${proxy} ${maxN} ${what} / 1`.padEnd(26)} req/s = ${fmt(ratios[proxy].rps, 2)}   p99 = ${fmt(ratios[proxy].p99, 2)}   CPU us/req = ${fmt(cpuPerReq, 2)}`,
      );
    }
    const sb = ratios.switchboard;
    console.log(
      sb
        ? `\nswitchboard ${maxN} workers / 1 worker req/s = ${sb.rps.toFixed(2)}`
        : `\nswitchboard ${maxN} workers / 1 worker req/s = n/a: ${summary.some((s) => s.subject === subjectName('switchboard', 1)) ? `switchboard-${maxN}` : 'switchboard-1'} did not run`,
    );
  }
  // Issue 11's targets, as measured here (the ratio only means something where wrk and the origins leave the workers free cores).
  const sbN = summary.find((x) => x.subject === subjectName('switchboard', maxN));
  if (sbN?.idleRssPerWorkerMB != null) {
    const idleRss = sbN.idleRssPerWorkerMB;
    console.log(
      `  targets (issue 11): ${maxN} workers >= 1.6x 1 worker where the load generator is not the bottleneck (machine here: ${fmt(sbN.machineCpuPct, 0)} % busy, origins ${fmt(sbN.originsCpuPct, 0)} %, wrk ${fmt(sbN.loadgenCpuPct, 0)} %); ` +
        `RSS per idle worker < 80 MB: ${fmt(idleRss, 1)} MB ${idleRss < 80 ? 'met' : 'NOT MET'}${WORKERS_SOURCE === 'ts' ? ' (TypeScript sources: type stripping adds about 25 MB)' : ''}`,
    );
  }
  for (const n of notes) console.log(`  note: ${n}`);
  for (const st of statuses) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return {
    config: {
      durationS: WORKERS_DURATION_S,
      rounds: WORKERS_ROUNDS,
      warmupS: WORKERS_WARMUP_S,
      firstWarmupS: WORKERS_FIRST_WARMUP_S,
      connections: WORKERS_CONNECTIONS,
      origins: ORIGIN_COUNT,
      origin: WORKERS_ORIGIN,
      workerCounts: WORKER_COUNTS,
      proxies: WORKERS_PROXIES,
      accessLog: WORKERS_ACCESS_LOG,
      source: WORKERS_SOURCE,
      load: WORKERS_LOAD,
      loadgen: loadgen.name,
    },
    subjects: statuses,
    idle,
    rounds,
    summary,
    ratios,
    notes: [...notes],
  };
}

export const workersSuite: Suite<WorkersReport> = { name: 'workers', run: runWorkersSuite };
