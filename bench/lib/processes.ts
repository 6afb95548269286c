// Child processes: spawning, tracking (every child is killed by PID at the end, on error and on a
// signal), stopping; the run's temp dir; the CPU and RSS of a process, from /proc (Linux).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, KEEP_TMP, NODE, REPO_DIR } from './env.ts';

// ---------------------------------------------------------------- bookkeeping

const live = new Map<number, ChildProcess>();

/** Registers `cp` for clean-up (until it exits). */
export function track(cp: ChildProcess): ChildProcess {
  const pid = cp.pid;
  if (pid !== undefined) {
    live.set(pid, cp);
    cp.once('exit', () => live.delete(pid));
  }
  return cp;
}

/** Child processes still running. */
export function liveCount(): number {
  return live.size;
}

export function isRunning(cp: ChildProcess): boolean {
  return cp.exitCode === null && cp.signalCode === null;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(cp: ChildProcess, graceMs = 3000): Promise<void> {
  if (cp.pid === undefined || !isRunning(cp)) return;
  const exited = new Promise<void>((resolve) => cp.once('exit', () => resolve()));
  try {
    process.kill(cp.pid, 'SIGTERM');
  } catch {
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut && isRunning(cp)) {
    try {
      process.kill(cp.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await Promise.race([exited, sleep(1000)]);
  }
}

export function killAllSync(): void {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

// ---------------------------------------------------------------- temp dir, shutdown

/** The run's temp dir (configs, child logs, access logs, certificates); set by makeTmpDir() at the start. */
export let tmpDir = '';

export function makeTmpDir(): string {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-bench-'));
  return tmpDir;
}

export function removeTmp(): void {
  if (tmpDir && !KEEP_TMP) {
    try {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

/**
 * True once a signal arrived (beginShutdown): the suites stop at the next step and leave their
 * processes to cleanup().
 */
export let shuttingDown = false;

export function beginShutdown(): void {
  shuttingDown = true;
}

/** Stops every tracked child (SIGTERM, then SIGKILL) and removes the temp dir. */
export async function cleanup(): Promise<void> {
  await Promise.all([...live.values()].map((cp) => stopProcess(cp, 2000)));
  killAllSync();
  removeTmp();
}

// ---------------------------------------------------------------- spawning

/** The last lines of a child's log, formatted to follow an error message. */
export function tail(file: string, lines = 8): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    if (!text) return '';
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-lines)
      .map((l) => `\n    | ${l}`)
      .join('');
  } catch {
    return '';
  }
}

/**
 * Spawns a Node child (a script in bench/) that prints a JSON line with {"port": N} when listening.
 * stderr goes to a log file in the temp dir; stdout is drained after the port line.
 */
export async function spawnNodeChild(
  script: string,
  args: string[],
  logName: string,
  timeoutMs = 15_000,
  execArgv: string[] = [],
): Promise<{ cp: ChildProcess; port: number; logFile: string }> {
  const logFile = path.join(tmpDir, `${logName}.log`);
  const errFd = fs.openSync(logFile, 'a');
  const cp = track(
    spawn(NODE, [...execArgv, path.join(BENCH_DIR, script), ...args], {
      cwd: REPO_DIR,
      stdio: ['ignore', 'pipe', errFd],
      env: { ...process.env, NODE_ENV: 'production' },
    }),
  );
  fs.closeSync(errFd);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      let done = false;
      const finish = (err: Error | null, p?: number): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        cp.stdout?.off('data', onData);
        cp.off('exit', onExit);
        cp.off('error', onError);
        cp.stdout?.resume(); // keep draining whatever else the child prints
        if (err) reject(err);
        else resolve(p ?? 0);
      };
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line.startsWith('{')) continue;
          try {
            const msg = JSON.parse(line) as { port?: unknown };
            if (typeof msg.port === 'number' && msg.port > 0) return finish(null, msg.port);
          } catch {
            /* not our line */
          }
        }
      };
      const onExit = (): void => finish(new Error(`exited before listening (code ${cp.exitCode}, signal ${cp.signalCode}): ${tail(logFile)}`));
      const onError = (err: Error): void => finish(err);
      const timer = setTimeout(() => finish(new Error(`no port reported within ${timeoutMs} ms: ${tail(logFile)}`)), timeoutMs);
      cp.stdout?.on('data', onData);
      cp.once('exit', onExit);
      cp.once('error', onError);
    });
    return { cp, port, logFile };
  } catch (err) {
    await stopProcess(cp);
    throw err;
  }
}

/** Spawns `bin` with stdout and stderr appended to `logFile`, tracked for clean-up. */
export function spawnToLog(bin: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): ChildProcess {
  const fd = fs.openSync(logFile, 'a');
  try {
    return track(spawn(bin, args, { cwd: REPO_DIR, stdio: ['ignore', fd, fd], env: env ?? process.env }));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Runs `bin` to the end (SIGKILL after `timeoutMs`), collecting its stdout and stderr, and `cpuS`:
 * its CPU seconds (user + system), as last sampled from /proc every 100 ms while it ran (so it
 * misses at most the last 100 ms; null when never sampled).
 */
export function runCollect(bin: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; cpuS: number | null }> {
  return new Promise((resolve, reject) => {
    const cp = track(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    let cpuS: number | null = null;
    const sample = (): void => {
      if (cp.pid !== undefined) cpuS = cpuSeconds(cp.pid) ?? cpuS;
    };
    const sampler = setInterval(sample, 100);
    // wrk and autocannon print their results at the very end: one more sample then, while it still runs.
    cp.stdout?.on('data', (c: Buffer) => {
      sample();
      stdout += c.toString('utf8');
    });
    cp.stderr?.on('data', (c: Buffer) => {
      sample();
      stderr += c.toString('utf8');
    });
    const timer = setTimeout(() => {
      if (cp.pid !== undefined && isRunning(cp)) process.kill(cp.pid, 'SIGKILL');
    }, timeoutMs);
    cp.once('error', (err) => {
      clearTimeout(timer);
      clearInterval(sampler);
      reject(err);
    });
    cp.once('close', (code) => {
      clearTimeout(timer);
      clearInterval(sampler);
      resolve({ code, stdout, stderr, cpuS });
    });
  });
}

// ---------------------------------------------------------------- /proc sampling (Linux)

export function rssMB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number((r.stdout ?? '').trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** CPU seconds (user + system, all threads) consumed so far by `pid`. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/**
 * `pid` and every process descended from it (children, their children, ...), from the parent pids
 * in /proc/<pid>/stat: a subject's supervisor or master and its workers. Empty when `pid` is gone.
 */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  if (!parentOf.has(pid)) return [];
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

/** Busy and total CPU time of the whole machine (all cores), in clock ticks, from /proc/stat; null off Linux. */
export function machineTicks(): { busy: number; total: number } | null {
  try {
    const f = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3] - f[4], total }; // idle and iowait are not busy
  } catch {
    return null;
  }
}
