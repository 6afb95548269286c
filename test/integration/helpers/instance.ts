/**
 * `switchboard start` as a user runs it, in a child process (its own process group, so that the
 * supervisor and its workers all end with the test): its JSON log lines, parsed as they come, and
 * waits on them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { guard } from './guard.ts';
import { MAIN, NODE, ROOT } from './paths.ts';

export interface LogLine {
  msg?: string;
  worker?: number;
  pid?: number;
  listeners?: Record<string, string>;
  [key: string]: unknown;
}

/** Arguments of `switchboard [global] start … [start]`. */
export interface StartArgs {
  global?: string[];
  start?: string[];
}

export class Instance {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  #waiters: Array<{ test: (l: LogLine) => boolean; resolve: (l: LogLine) => void; from: number }> = [];

  private constructor(child: ChildProcess) {
    this.child = child;
    let partial = '';
    // The process log (JSON lines) is on stderr; stdout carries the access log when asked.
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      partial += d;
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const text of parts) {
        if (!text.startsWith('{')) continue;
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          continue;
        }
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => {
          if (this.lines.length - 1 < w.from || !w.test(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
    child.stdout!.resume();
  }

  /**
   * Starts `switchboard [global] start -c file --access-log off [start]` (a later `--access-log`
   * in `start` wins) and waits for the supervisor's (or lone process's) "switchboard started".
   */
  static async start(file: string, args: StartArgs = {}): Promise<Instance> {
    const argv = [MAIN, ...(args.global ?? []), 'start', '-c', file, '--access-log', 'off', ...(args.start ?? [])];
    const child = spawn(NODE, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const inst = new Instance(child);
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`switchboard exited (${code}) before it started: ${inst.stderr}`))));
    exited.catch(() => undefined);
    try {
      await Promise.race([inst.next((l) => l.msg === 'switchboard started' && l.worker === undefined, 20_000), exited]);
    } catch (err) {
      inst.kill();
      throw err;
    }
    return inst;
  }

  /**
   * Writes `yaml` to `<dir>/<name>.yaml` and starts it (as `start`); when the config says
   * `workers: N` with N > 1, waits for workers 1…N too, and kills the instance if they do not come.
   * The file is returned for tests that rewrite it and reload.
   */
  static async startWith(dir: string, name: string, yaml: string, args: StartArgs = {}): Promise<{ inst: Instance; file: string }> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, yaml);
    const inst = await Instance.start(file, args);
    const workers = Number(/^workers:[ \t]*(\d+)\b/m.exec(yaml)?.[1] ?? 1);
    if (workers > 1) {
      try {
        await inst.workersStarted(workers);
      } catch (err) {
        inst.kill();
        throw err;
      }
    }
    return { inst, file };
  }

  /** Resolves once workers 1…n have each logged "switchboard started" (at any time since the start). */
  async workersStarted(n = 2, ms = 10_000): Promise<void> {
    for (let w = 1; w <= n; w++) await this.next((l) => l.msg === 'switchboard started' && l.worker === w, ms, 0);
  }

  /** The next log line (from now, or from line index `from`) that passes `test`. */
  next(test: (l: LogLine) => boolean, ms = 15_000, from = this.lines.length): Promise<LogLine> {
    for (let i = from; i < this.lines.length; i++) if (test(this.lines[i]!)) return Promise.resolve(this.lines[i]!);
    const tail = (): string =>
      this.lines
        .slice(-12)
        .map((l) => JSON.stringify(l))
        .join('\n');
    return guard(new Promise<LogLine>((resolve) => this.#waiters.push({ test, resolve, from })), 'a log line', ms).catch((err: Error) => {
      throw new Error(`${err.message}; the last log lines:\n${tail()}`);
    });
  }

  /** A listener's URL, from the "switchboard started" line. */
  url(listener: string): string {
    const started = this.lines.find((l) => l.msg === 'switchboard started' && l.worker === undefined);
    return started!.listeners![listener]!;
  }

  /** The pids of the workers that started and have not stopped or died since, from the log. */
  workerPids(): number[] {
    const live = new Map<number, number>();
    for (const l of this.lines) {
      if (l.worker === undefined || l.pid === undefined) continue;
      if (l.msg === 'switchboard started') live.set(l.pid, l.worker);
      if (l.msg === 'switchboard stopped') live.delete(l.pid);
    }
    for (const l of this.lines) if (l.msg === 'worker died; starting a replacement' && typeof l.pid === 'number') live.delete(l.pid);
    return [...live.keys()];
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** Resolves with the exit code once the supervisor has exited. */
  exited(ms = 20_000): Promise<number | null> {
    const code =
      this.child.exitCode !== null || this.child.signalCode !== null
        ? Promise.resolve(this.child.exitCode)
        : guard(new Promise<number | null>((resolve) => this.child.once('exit', (c) => resolve(c))), 'switchboard to exit', ms);
    // A failed exit says why: the last lines of its standard error (with 'close' all of it is read).
    return code.then(async (c) => {
      if (c !== 0) await new Promise((resolve) => (this.child.stderr!.readableEnded ? resolve(undefined) : this.child.stderr!.once('end', resolve)));
      if (c !== 0) process.stderr.write(`switchboard exited ${c}; its stderr ends with:\n${this.stderr.slice(-2000)}\n`);
      return c;
    });
  }

  /** Kills the whole process group (supervisor and workers), whatever state it is in. */
  kill(): void {
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}
