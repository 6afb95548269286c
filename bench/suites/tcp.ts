// Suite `tcp`: layer 4 (`protocol: tcp` listeners). Bulk MiB/s (1 GiB by default) and new
// connections/s with p99, Switchboard against a direct connection and HAProxy `mode tcp`, as ratios.
// Origins: bench/tcp-origin.ts (a sink, a byte echo); load: bench/tcp-client.ts (makeTcpClient).
import fs from 'node:fs';
import path from 'node:path';
import { envBytes, envList, envNumber, REPO_DIR } from '../lib/env.ts';
import { makeTcpClient, type TcpTest } from '../lib/loadgen.ts';
import { tcpProbe } from '../lib/probes.ts';
import { shuttingDown, spawnNodeChild, stopProcess } from '../lib/processes.ts';
import { errorMessage, fmt, heading, log, printTable } from '../lib/report.ts';
import { plannedSeconds, runRounds, type RoundResult, type RoundsPlan } from '../lib/rounds.ts';
import { median, pairWithBaseline, summarize, type SubjectSummary } from '../lib/stats.ts';
import type { Suite } from '../lib/suite.ts';
import { startHaproxyTcp, startSwitchboardTcp, stopAll, type Origin, type Started, type SubjectStatus, type TcpTargets } from '../lib/subjects.ts';
import { haproxyBin } from '../lib/tools.ts';

// ---------------------------------------------------------------- settings

const TCP_BYTES = envBytes('BENCH_TCP_BYTES', 2 ** 30);
const TCP_CONNECTIONS = envNumber('BENCH_TCP_CONNECTIONS', 4, true);
const TCP_RATE_DURATION_S = envNumber('BENCH_TCP_RATE_DURATION', 5, false);
const TCP_RATE_CONCURRENCY = envNumber('BENCH_TCP_RATE_CONCURRENCY', 16, true);
const TCP_ROUNDS = envNumber('BENCH_TCP_ROUNDS', 3, true);
const TCP_WARMUP_S = envNumber('BENCH_TCP_WARMUP', 1, false, true);
const TCP_FIRST_WARMUP_S = Math.max(TCP_WARMUP_S, envNumber('BENCH_TCP_FIRST_WARMUP', 2, false));
const TCP_TESTS = envList('BENCH_TCP_TESTS', ['bulk', 'rate']);
for (const t of TCP_TESTS) {
  if (t !== 'bulk' && t !== 'rate') throw new Error(`BENCH_TCP_TESTS: unknown test ${JSON.stringify(t)} (known: bulk, rate)`);
}

const TCP_PROXIES = ['direct', 'switchboard', 'haproxy'] as const;
const TCP_TEST_LABEL: Record<TcpTest, string> = { bulk: 'bulk throughput', rate: 'connection rate' };

// ---------------------------------------------------------------- the suite

interface TcpRatio {
  /** Ratio of the medians: MiB/s (bulk) or conn/s (rate). */
  throughput: number;
  /** Ratio of the medians of the measured process's CPU per MiB / per connection (not for `/ direct`: that is the origin's). */
  cpu: number | null;
  /** rate only: p50, p99 of connect + one-byte exchange. */
  p50: number | null;
  p99: number | null;
  rss: number;
  /** `switchboard / haproxy` only: each switchboard run over the mean of the haproxy runs of the same test around it. */
  paired?: { median: number; min: number; max: number; pairs: number; haproxyAAMin: number; haproxyAAMax: number };
}

export interface TcpReport {
  config: Record<string, unknown>;
  proxies: SubjectStatus[];
  /** The measured subjects: "<direct|switchboard|haproxy> <bulk|rate>". */
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  /** As in the other suites; for bulk, rps is MiB/s, requests MiB, cpuUsPerReq CPU us per MiB (cpuSPerGiB added). */
  summary: (SubjectSummary & { cpuSPerGiB?: number | null })[];
  /** ratios[test]["switchboard / direct" | "switchboard / haproxy" | "haproxy / direct"]. */
  ratios: Partial<Record<TcpTest, Record<string, TcpRatio>>>;
}

/** Switchboard's tcp listener against a direct connection and HAProxy `mode tcp`: bulk MiB/s and connections/s. */
export async function runTcpSuite(): Promise<TcpReport | null> {
  heading('tcp: layer 4, Switchboard vs direct and HAProxy mode tcp');
  const tests = TCP_TESTS as TcpTest[];
  const gib = TCP_BYTES / 2 ** 30;
  console.log(
    `  ${TCP_ROUNDS} round(s); each run preceded by a warm-up (${TCP_WARMUP_S}s, ${TCP_FIRST_WARMUP_S}s the first time); runs rotate through the subjects each round.`,
  );
  if (tests.includes('bulk')) {
    console.log(
      `  bulk: ${fmt(TCP_BYTES / 2 ** 20, 0)} MiB in total over ${TCP_CONNECTIONS} connection(s) into a sink (bench/tcp-origin.ts --mode=sink); ` +
        'wall time until the sink has acknowledged every byte (client half-closes, the sink answers its count).',
    );
  }
  if (tests.includes('rate')) {
    console.log(
      `  rate: ${TCP_RATE_CONCURRENCY} loops x ${TCP_RATE_DURATION_S}s of connect, one byte each way, close (bench/tcp-origin.ts --mode=byte); ` +
        'latency = connect start to the byte back.',
    );
  }
  console.log('  client: bench/tcp-client.ts in its own process; one sink and one byte origin shared by all subjects.');
  console.log('  equal footing: haproxy nbthread 1, Switchboard one process (tcp listeners, started with the CLI); neither logs connections.\n');

  const config = {
    rounds: TCP_ROUNDS,
    warmupS: TCP_WARMUP_S,
    firstWarmupS: TCP_FIRST_WARMUP_S,
    tests,
    bulk: { bytes: TCP_BYTES, connections: TCP_CONNECTIONS },
    rate: { durationS: TCP_RATE_DURATION_S, concurrency: TCP_RATE_CONCURRENCY },
  };
  if (!haproxyBin) console.log('skipping haproxy: not installed; no switchboard / haproxy ratios');

  const origins: Origin[] = [];
  const proxies: SubjectStatus[] = [];
  const targets = new Map<string, TcpTargets>();
  const running = new Map<string, Started>();
  const runs = new Map<string, Started>();
  const statuses: SubjectStatus[] = [];
  let rounds: RoundResult[] = [];
  try {
    for (const mode of ['sink', 'byte'] as const) {
      const { cp, port, logFile } = await spawnNodeChild('tcp-origin.ts', [`--mode=${mode}`], `tcp-origin-${mode}`);
      origins.push({ url: `tcp://127.0.0.1:${port}`, port, proc: cp, logFile, delayMs: 0 });
    }
    const [sink, byte] = origins;
    log(`tcp origins: sink ${sink.url} (pid ${sink.proc.pid}), byte ${byte.url} (pid ${byte.proc.pid})`);

    const starters: Record<(typeof TCP_PROXIES)[number], { description: string; unavailable: string | null; start: () => Promise<TcpTargets> }> = {
      direct: {
        description: 'the origins, no proxy (CPU/RSS are the origin\u2019s: the sink, or the byte origin)',
        unavailable: null,
        start: async () => ({
          ports: { bulk: sink.port, rate: byte.port },
          started: { url: byte.url, pid: 0, proc: byte.proc, owned: false, logFile: byte.logFile },
        }),
      },
      switchboard: {
        description: 'Switchboard, two protocol: tcp listeners, round robin over one endpoint each; started with the CLI from a YAML config',
        unavailable: fs.existsSync(path.join(REPO_DIR, 'src', 'cli', 'main.ts')) ? null : 'src/cli/main.ts not found',
        start: () => startSwitchboardTcp('tcp-switchboard', 'tcp', sink.port, byte.port),
      },
      haproxy: {
        description: 'HAProxy, mode tcp, nbthread 1, balance roundrobin, no log',
        unavailable: haproxyBin ? null : 'haproxy is not installed',
        start: () => startHaproxyTcp('tcp-haproxy', 'tcp', sink.port, byte.port),
      },
    };
    for (const name of TCP_PROXIES) {
      if (shuttingDown) return null;
      const s = starters[name];
      if (s.unavailable) {
        proxies.push({ name, description: s.description, status: 'skipped', reason: s.unavailable });
        continue;
      }
      try {
        const t = await s.start();
        try {
          for (const test of tests) await tcpProbe(t.ports[test], test);
        } catch (err) {
          if (t.started.owned) await stopProcess(t.started.proc, t.started.graceMs);
          throw new Error(`sanity check failed: ${errorMessage(err)}`);
        }
        targets.set(name, t);
        if (t.started.owned) running.set(name, t.started);
        proxies.push({ name, description: s.description, status: 'ok' });
        log(`started ${name}: bulk port ${t.ports.bulk}, rate port ${t.ports.rate}${t.started.owned ? ` (pid ${t.started.pid})` : ''}`);
      } catch (err) {
        const reason = `failed to start: ${errorMessage(err).trim()}`;
        console.log(`skipping ${name}: ${reason}`);
        proxies.push({ name, description: s.description, status: 'failed', reason });
      }
    }
    if (!targets.has('switchboard') && !targets.has('haproxy')) throw new Error('neither switchboard nor haproxy could be started');

    // One measured subject per target and test, as in the https suite: "<target> bulk", "<target> rate".
    const order: string[] = [];
    for (const test of tests) {
      const gen = makeTcpClient(test, TCP_BYTES);
      for (const name of TCP_PROXIES) {
        const t = targets.get(name);
        const subject = `${name} ${test}`;
        const description = `${name}, ${TCP_TEST_LABEL[test]}`;
        if (!t) {
          statuses.push({ name: subject, description, status: 'skipped', reason: `${name} did not start` });
          continue;
        }
        // direct: the CPU/RSS measured are the origin's (the sink for bulk, the byte origin for rate).
        const origin = test === 'bulk' ? sink : byte;
        const pid = name === 'direct' ? (origin.proc.pid ?? 0) : t.started.pid;
        const proc = name === 'direct' ? origin.proc : t.started.proc;
        runs.set(subject, {
          ...t.started,
          pid,
          proc,
          url: `tcp://127.0.0.1:${t.ports[test]}`,
          loadgen: gen,
          connections: test === 'bulk' ? TCP_CONNECTIONS : TCP_RATE_CONCURRENCY,
        });
        statuses.push({ name: subject, description, status: 'ok' });
        order.push(subject);
      }
    }
    const plan: RoundsPlan = {
      label: 'tcp',
      rounds: TCP_ROUNDS,
      durationS: TCP_RATE_DURATION_S, // rate runs; bulk runs last as long as BENCH_TCP_BYTES takes
      warmupS: TCP_WARMUP_S,
      firstWarmupS: TCP_FIRST_WARMUP_S,
      connections: TCP_RATE_CONCURRENCY,
    };
    const bulkRuns = tests.includes('bulk') ? TCP_ROUNDS * order.filter((n) => n.endsWith(' bulk')).length : 0;
    log(
      `\ntcp: running ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan) - bulkRuns * TCP_RATE_DURATION_S)} s ` +
        `plus the time ${bulkRuns} bulk run(s) of ${fmt(gib, 2)} GiB take\n`,
    );
    rounds = await runRounds(makeTcpClient('rate', TCP_BYTES), order, runs, statuses, plan);
  } finally {
    await stopAll(running, origins);
  }
  if (shuttingDown) return null;

  const names = tests.flatMap((test) => TCP_PROXIES.map((n) => `${n} ${test}`));
  const summary: TcpReport['summary'] = summarize(names, rounds).map((s) =>
    s.subject.endsWith(' bulk') ? { ...s, cpuSPerGiB: s.cpuUsPerReq === null ? null : (s.cpuUsPerReq * 1024) / 1e6 } : s,
  );
  const find = (subject: string): TcpReport['summary'][number] | undefined => summary.find((s) => s.subject === subject);

  if (tests.includes('bulk')) {
    console.log(`\nBulk throughput (median of ${TCP_ROUNDS} round(s); ${fmt(gib, 2)} GiB over ${TCP_CONNECTIONS} connection(s) per run):\n`);
    printTable(
      ['subject', 'MiB/s', 'CPU s/GiB', 'CPU %', 'RSS MB', 'errors', 'rounds'],
      summary
        .filter((s) => s.subject.endsWith(' bulk'))
        .map((s) => [s.subject, fmt(s.rps, 0), fmt(s.cpuSPerGiB, 3), fmt(s.cpuPct, 0), fmt(s.rssMB, 1), String(s.errors), String(s.rounds)]),
    );
    console.log('  MiB/s: bytes acknowledged by the sink / wall time from the first connect to the last acknowledgement.');
    console.log('  CPU s/GiB, CPU %: the proxy process (direct: the sink), user + system, all threads; 100 % = one core.');
  }
  if (tests.includes('rate')) {
    console.log(`\nConnection rate (median of ${TCP_ROUNDS} round(s); ${TCP_RATE_CONCURRENCY} loops x ${TCP_RATE_DURATION_S}s):\n`);
    printTable(
      ['subject', 'conn/s', 'p50 ms', 'p90 ms', 'p99 ms', 'CPU us/conn', 'CPU %', 'RSS MB', 'errors', 'rounds'],
      summary
        .filter((s) => s.subject.endsWith(' rate'))
        .map((s) => [
          s.subject,
          fmt(s.rps, 0),
          fmt(s.p50Ms, 3),
          fmt(s.p90Ms, 3),
          fmt(s.p99Ms, 3),
          fmt(s.cpuUsPerReq, 1),
          fmt(s.cpuPct, 0),
          fmt(s.rssMB, 1),
          String(s.errors),
          String(s.rounds),
        ]),
    );
    console.log('  latency: connect start to the byte back (the connection then closes); CPU: the proxy process (direct: the byte origin).');
  }

  const ratios: TcpReport['ratios'] = {};
  const lines: string[] = [];
  const range = (lo: number, hi: number): string => (Number.isFinite(lo) ? `${fmt(lo, 2)}-${fmt(hi, 2)}` : 'n/a');
  for (const test of tests) {
    const testRounds = rounds.filter((r) => r.subject.endsWith(` ${test}`));
    pairWithBaseline(testRounds, `haproxy ${test}`);
    const paired = (subject: string): number[] => testRounds.filter((r) => r.subject === subject && r.vsBaseline !== undefined).map((r) => r.vsBaseline!.rps);
    ratios[test] = {};
    for (const [a, b] of [
      ['switchboard', 'direct'],
      ['switchboard', 'haproxy'],
      ['haproxy', 'direct'],
    ] as const) {
      const sa = find(`${a} ${test}`);
      const sb = find(`${b} ${test}`);
      if (!sa || !sb) continue;
      const r: TcpRatio = {
        throughput: sa.rps / sb.rps,
        cpu: b !== 'direct' && sa.cpuUsPerReq !== null && sb.cpuUsPerReq ? sa.cpuUsPerReq / sb.cpuUsPerReq : null,
        p50: test === 'rate' ? sa.p50Ms / sb.p50Ms : null,
        p99: test === 'rate' ? sa.p99Ms / sb.p99Ms : null,
        rss: sa.rssMB !== null && sb.rssMB ? sa.rssMB / sb.rssMB : Number.NaN,
      };
      if (a === 'switchboard' && b === 'haproxy') {
        const pairs = paired(`switchboard ${test}`);
        const aa = paired(`haproxy ${test}`);
        r.paired = {
          median: median(pairs),
          min: pairs.length ? Math.min(...pairs) : Number.NaN,
          max: pairs.length ? Math.max(...pairs) : Number.NaN,
          pairs: pairs.length,
          haproxyAAMin: aa.length ? Math.min(...aa) : Number.NaN,
          haproxyAAMax: aa.length ? Math.max(...aa) : Number.NaN,
        };
      }
      const key = `${a} / ${b}`;
      ratios[test][key] = r;
      const unit = test === 'bulk' ? 'MiB/s' : 'conn/s';
      const cpuUnit = test === 'bulk' ? 'CPU/GiB' : 'CPU/conn';
      lines.push(
        `  ${`${test}: ${key}`.padEnd(28)} ${unit} = ${fmt(r.throughput, 2)}` +
          (r.p50 !== null ? `   p50 = ${fmt(r.p50, 2)}   p99 = ${fmt(r.p99, 2)}` : '') +
          (r.cpu !== null ? `   ${cpuUnit} = ${fmt(r.cpu, 2)}   RSS = ${fmt(r.rss, 2)}` : '') +
          (r.paired
            ? `   paired ${unit} = ${fmt(r.paired.median, 2)} (${range(r.paired.min, r.paired.max)}, haproxy A/A ${range(r.paired.haproxyAAMin, r.paired.haproxyAAMax)})`
            : ''),
      );
    }
  }
  if (lines.length > 0) {
    console.log('\nRatios (MiB/s, conn/s: higher is better; p50, p99, CPU, RSS: lower is better):');
    for (const l of lines) console.log(l);
    console.log('  CPU and RSS ratios only between proxies (direct\u2019s are the origin\u2019s). paired: median (min-max) of each switchboard run over the');
    console.log('  mean of the haproxy runs of the same test around it; haproxy A/A: the same for haproxy against itself (the noise).');
  } else {
    console.log('\nno ratios: switchboard and direct or haproxy must both run');
  }
  for (const st of [...proxies, ...statuses]) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { config, proxies, subjects: statuses, rounds, summary, ratios };
}

export const tcpSuite: Suite<TcpReport> = { name: 'tcp', run: runTcpSuite };
