// Suite `memory`: what one process and one idle keep-alive connection cost in memory. Each subject
// runs in its own process with bench/memory-probe.js preloaded; it is read (RSS, V8 heap, external
// memory, each heap space; as found and after a full GC) when idle after start, after one request,
// and with BENCH_MEMORY_CONNECTIONS keep-alive connections open that each made one request and then
// stayed idle. Subjects: a bare node:http server answering itself (bench/node-http-floor.js, the
// floor Node imposes), node-minimal, and Switchboard started from the API (bench/switchboard-child.ts),
// from its CLI (src/cli/main.ts; both TypeScript, run through Node's type stripping) and from the
// compiled CLI (dist/cli/main.js, what bin/switchboard.js runs; built by tsc into the temp dir).
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { envList, envNumber, NODE, REPO_DIR } from '../lib/env.ts';
import { openIdleConnections, type IdleConnections } from '../lib/idle-connections.ts';
import { freePort, httpGet, waitReady } from '../lib/probes.ts';
import { isRunning, shuttingDown, sleep, spawnNodeChild, spawnToLog, stopProcess, tail, tmpDir } from '../lib/processes.ts';
import { errorMessage, fmt, heading, log, printTable } from '../lib/report.ts';
import type { Suite } from '../lib/suite.ts';
import { buildDistCli, startOrigins, type Origin } from '../lib/subjects.ts';

// ---------------------------------------------------------------- settings

const CONNECTIONS = envNumber('BENCH_MEMORY_CONNECTIONS', 10_000, true);
const CONCURRENCY = envNumber('BENCH_MEMORY_CONCURRENCY', 100, true);
/** Seconds each subject is left alone before a reading (timers, lazy compilation and the GC settle). */
const SETTLE_S = envNumber('BENCH_MEMORY_SETTLE', 2, false, true);
/**
 * Seconds the idle connections are left before their reading: long enough for Switchboard's idle
 * compaction (src/util/heap.ts: a check every 10 s, after a whole idle period) to give back the young
 * generation the burst of connections grew. Bare node:http does no such thing.
 */
const IDLE_S = envNumber('BENCH_MEMORY_IDLE', 22, false, true);
const ALL_SUBJECTS = ['node-http', 'node-minimal', 'switchboard', 'switchboard-cli', 'switchboard-dist'];
const SUBJECTS = envList('BENCH_MEMORY_SUBJECTS', ALL_SUBJECTS);
for (const s of SUBJECTS)
  if (!ALL_SUBJECTS.includes(s)) throw new Error(`BENCH_MEMORY_SUBJECTS: unknown subject ${JSON.stringify(s)} (known: ${ALL_SUBJECTS.join(', ')})`);
/** Node flags given to every subject (e.g. `--max-semi-space-size=1`): what a supervisor could pass its workers. Measurement only. */
const NODE_FLAGS = (process.env.BENCH_MEMORY_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
/** A directory: a heap snapshot of every subject at every stage is written there. */
const SNAPSHOT_DIR = (process.env.BENCH_MEMORY_SNAPSHOTS ?? '').trim() ? path.resolve(process.env.BENCH_MEMORY_SNAPSHOTS as string) : '';
const PROBE = path.join(REPO_DIR, 'bench', 'memory-probe.js');
/** Switchboard's listener for this suite: keep-alive connections must outlive the measurement, and the default cap (10,000) must not refuse any. */
const LISTENER = { keepAliveTimeout: '10m', maxConnections: 0 };

// ---------------------------------------------------------------- readings

/** One reading of bench/memory-probe.ts (bytes). */
export interface Reading {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rssAnon: number | null;
  rssFile: number | null;
  spaces: Record<string, { size: number; used: number }>;
}

interface ProbeAnswer {
  asFound: Reading;
  afterGc: Reading | null;
  snapshot: string | null;
}

/** Asks a probed process for a reading (SIGWINCH: memory-probe.js) and waits for its answer file. */
async function probe(cp: ChildProcess, file: string, snapshot: string | null): Promise<ProbeAnswer> {
  fs.rmSync(file, { force: true });
  if (snapshot) fs.writeFileSync(`${file}.req`, snapshot);
  process.kill(cp.pid as number, 'SIGWINCH');
  const deadline = Date.now() + (snapshot ? 120_000 : 10_000);
  while (Date.now() < deadline) {
    if (!isRunning(cp)) throw new Error('exited before answering the memory probe');
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as ProbeAnswer;
    } catch {
      await sleep(50);
    }
  }
  throw new Error('no answer from the memory probe');
}

// ---------------------------------------------------------------- subjects

interface Running {
  cp: ChildProcess;
  url: string;
  port: number;
  logFile: string;
  probeFile: string;
}

function probeEnv(probeFile: string): NodeJS.ProcessEnv {
  return { ...process.env, NODE_ENV: 'production', BENCH_MEMORY_PROBE_FILE: probeFile };
}

async function startSubject(name: string, origins: Origin[]): Promise<Running> {
  const probeFile = path.join(tmpDir, `memory-${name}.probe.json`);
  const execArgv = [...NODE_FLAGS, '--import', PROBE];
  // spawnNodeChild passes the bench's environment: the probe file is set there for the child.
  process.env.BENCH_MEMORY_PROBE_FILE = probeFile;
  try {
    if (name === 'switchboard-cli' || name === 'switchboard-dist') {
      const cli = name === 'switchboard-cli' ? path.join(REPO_DIR, 'src', 'cli', 'main.ts') : await buildDistCli();
      const port = await freePort();
      const conf = path.join(tmpDir, `memory-${name}.yaml`);
      fs.writeFileSync(
        conf,
        // One process: with the default `workers: auto` the probe would read a supervisor, which serves nothing.
        `workers: 1\n` +
          `listeners:\n  web: { address: '127.0.0.1:${port}', protocol: http, keepAliveTimeout: ${LISTENER.keepAliveTimeout}, maxConnections: ${LISTENER.maxConnections} }\n` +
          `routes:\n  all: { match: { path: / }, upstream: origins }\n` +
          `upstreams:\n  origins: { balancer: round-robin, endpoints: [${origins.map((o) => `{ url: '${o.url}' }`).join(', ')}] }\n`,
      );
      const logFile = path.join(tmpDir, `memory-${name}.log`);
      const cp = spawnToLog(NODE, [...execArgv, cli, '--log-level', 'warn', 'start', '-c', conf, '--access-log', 'off', '--no-watch'], logFile, probeEnv(probeFile));
      const url = `http://127.0.0.1:${port}/`;
      await waitReady(url, cp, logFile).catch(async (err: unknown) => {
        await stopProcess(cp);
        throw err;
      });
      return { cp, url, port, logFile, probeFile };
    }
    const [script, args] =
      name === 'node-http'
        ? ['node-http-floor.js', []]
        : name === 'node-minimal'
          ? ['minimal-forwarder.ts', origins.map((o) => o.url)]
          : ['switchboard-child.ts', [JSON.stringify({ origins: origins.map((o) => o.url), listener: LISTENER })]];
    const { cp, port, logFile } = await spawnNodeChild(script, args, `memory-${name}`, 15_000, execArgv);
    return { cp, url: `http://127.0.0.1:${port}/`, port, logFile, probeFile };
  } finally {
    delete process.env.BENCH_MEMORY_PROBE_FILE;
  }
}

// ---------------------------------------------------------------- the suite

const STAGES = ['start', 'one request', 'connections'] as const;
type Stage = (typeof STAGES)[number];

interface SubjectResult {
  name: string;
  status: 'ok' | 'failed';
  reason?: string;
  readings: Partial<Record<Stage, ProbeAnswer>>;
  /** Connections open at the last reading (all of them, unless the server closed some) and the subject's open file descriptors then. */
  connectionsOpen?: number;
  fds?: number;
  /** Bytes per idle connection: (reading with the connections - reading after one request) / connections. */
  perConnection?: { rss: number; heapUsed: number; external: number; heapUsedAfterGc: number | null; rssAfterGc: number | null };
}

export interface MemoryReport {
  config: Record<string, unknown>;
  subjects: SubjectResult[];
}

function fdCount(pid: number): number | undefined {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

async function measure(name: string, origins: Origin[]): Promise<SubjectResult> {
  const result: SubjectResult = { name, status: 'ok', readings: {} };
  let running: Running | undefined;
  let conns: IdleConnections | undefined;
  const snap = (stage: Stage): string | null => (SNAPSHOT_DIR ? path.join(SNAPSHOT_DIR, `${name}-${stage.replace(/ /g, '-')}.heapsnapshot`) : null);
  try {
    running = await startSubject(name, origins);
    log(`memory: started ${name} (pid ${running.cp.pid})`);
    await sleep(SETTLE_S * 1000);
    result.readings.start = await probe(running.cp, running.probeFile, snap('start'));
    const first = await httpGet(running.url);
    if (first.status !== 200) throw new Error(`sanity request: HTTP ${first.status}`);
    await sleep(SETTLE_S * 1000);
    result.readings['one request'] = await probe(running.cp, running.probeFile, snap('one request'));
    if (shuttingDown) return result;
    log(`memory: ${name}: opening ${CONNECTIONS} keep-alive connections (${CONCURRENCY} at a time)…`);
    conns = await openIdleConnections(running.port, CONNECTIONS, CONCURRENCY);
    await sleep(IDLE_S * 1000);
    const withConns = await probe(running.cp, running.probeFile, snap('connections'));
    result.readings.connections = withConns;
    result.connectionsOpen = CONNECTIONS - conns.closed();
    result.fds = fdCount(running.cp.pid as number);
    const base = result.readings['one request'];
    const per = (a: number, b: number): number => (a - b) / CONNECTIONS;
    result.perConnection = {
      rss: per(withConns.asFound.rss, base.asFound.rss),
      heapUsed: per(withConns.asFound.heapUsed, base.asFound.heapUsed),
      external: per(withConns.asFound.external, base.asFound.external),
      heapUsedAfterGc: withConns.afterGc && base.afterGc ? per(withConns.afterGc.heapUsed, base.afterGc.heapUsed) : null,
      rssAfterGc: withConns.afterGc && base.afterGc ? per(withConns.afterGc.rss, base.afterGc.rss) : null,
    };
  } catch (err) {
    result.status = 'failed';
    result.reason = `${errorMessage(err)}${running ? tail(running.logFile) : ''}`;
    console.log(`${name} failed: ${result.reason}`);
  } finally {
    conns?.close();
    if (running && !shuttingDown) await stopProcess(running.cp);
  }
  return result;
}

const MB = 2 ** 20;
const mb = (n: number | null | undefined): string => (n === null || n === undefined ? '-' : fmt(n / MB, 1));

function printReadings(results: SubjectResult[]): void {
  const rows: string[][] = [];
  for (const r of results) {
    for (const stage of STAGES) {
      const a = r.readings[stage];
      if (a === undefined) continue;
      const f = a.asFound;
      rows.push([
        stage === 'start' ? r.name : '',
        stage === 'connections' ? `${CONNECTIONS} idle` : stage,
        mb(f.rss),
        mb(f.rssAnon),
        mb(f.rssFile),
        mb(f.heapTotal),
        mb(f.heapUsed),
        mb(f.spaces.new_space?.size),
        mb(f.spaces.code_space?.size),
        mb(f.external),
        mb(f.arrayBuffers),
        mb(a.afterGc?.rss),
        mb(a.afterGc?.heapUsed),
      ]);
    }
  }
  printTable(['subject', 'stage', 'RSS', 'anon', 'file', 'heap total', 'heap used', 'new space', 'code space', 'external', 'arrayBuf', 'RSS gc', 'heap used gc'], rows);
}

async function runMemorySuite(): Promise<MemoryReport | null> {
  heading(`memory: an idle process, and ${CONNECTIONS} idle keep-alive connections`);
  console.log(
    `  each subject alone in its own process, bench/memory-probe.js preloaded; read ${SETTLE_S}s after start, after one request, and with\n` +
      `  ${CONNECTIONS} keep-alive connections open, each having made one GET and then left idle ${IDLE_S}s. MB = MiB; "gc" columns: after a full GC;\n` +
      '  anon/file: RssAnon (heap, malloc, stacks) and RssFile (mapped binary and libraries) of RSS.',
  );
  if (NODE_FLAGS.length > 0) console.log(`  (!) every subject runs with the Node flags ${NODE_FLAGS.join(' ')} (BENCH_MEMORY_NODE_FLAGS): measurement only`);
  if (SNAPSHOT_DIR) {
    fs.mkdirSync(SNAPSHOT_DIR, { recursive: true });
    console.log(`  heap snapshots: ${SNAPSHOT_DIR}/<subject>-<stage>.heapsnapshot (BENCH_MEMORY_SNAPSHOTS; each snapshot runs a full GC first)`);
  }
  console.log('');
  const origins = await startOrigins('memory-origin', [0]);
  const results: SubjectResult[] = [];
  try {
    for (const name of SUBJECTS) {
      if (shuttingDown) return null;
      results.push(await measure(name, origins));
    }
  } finally {
    if (!shuttingDown) await Promise.all(origins.map((o) => stopProcess(o.proc)));
  }
  if (shuttingDown) return null;

  printReadings(results);
  console.log('');
  const floor = results.find((r) => r.name === 'node-http' && r.perConnection);
  printTable(
    ['subject', 'idle RSS MB', `RSS ${CONNECTIONS} MB`, 'KB/conn', 'heap KB/conn', 'heap KB/conn gc', 'external KB/conn', 'open', 'fds', 'KB/conn - node-http'],
    results.map((r) => {
      const p = r.perConnection;
      const kb = (n: number | null | undefined): string => (n === null || n === undefined ? '-' : fmt(n / 1024, 1));
      return [
        r.name,
        mb(r.readings['one request']?.asFound.rss),
        mb(r.readings.connections?.asFound.rss),
        kb(p?.rss),
        kb(p?.heapUsed),
        kb(p?.heapUsedAfterGc),
        kb(p?.external),
        r.connectionsOpen === undefined ? '-' : String(r.connectionsOpen),
        r.fds === undefined ? '-' : String(r.fds),
        p && floor?.perConnection && r !== floor ? kb(p.rss - floor.perConnection.rss) : '-',
      ];
    }),
  );
  console.log('\n  targets (issue 11): idle RSS per worker < 80 MB; 10,000 idle keep-alive connections < 150 MB in all.');
  for (const r of results.filter((x) => x.name.startsWith('switchboard') && x.status === 'ok')) {
    const idle = r.readings['one request']?.asFound.rss ?? Number.NaN;
    const full = r.readings.connections?.asFound.rss ?? Number.NaN;
    console.log(
      `  ${r.name}: idle ${mb(idle)} MB ${idle < 80 * MB ? 'met' : 'NOT MET'}; with ${CONNECTIONS} connections ${mb(full)} MB ` +
        `${CONNECTIONS === 10_000 ? (full < 150 * MB ? 'met' : 'NOT MET') : '(target is for 10,000)'}`,
    );
  }
  return {
    config: {
      connections: CONNECTIONS,
      concurrency: CONCURRENCY,
      settleS: SETTLE_S,
      idleS: IDLE_S,
      subjects: SUBJECTS,
      nodeFlags: NODE_FLAGS,
      listener: LISTENER,
      snapshots: SNAPSHOT_DIR || null,
    },
    subjects: results,
  };
}

/** Suite `memory`: idle RSS per process and RSS per idle keep-alive connection, Switchboard against bare node:http. */
export const memorySuite: Suite<MemoryReport> = { name: 'memory', run: runMemorySuite };
