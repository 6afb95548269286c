/**
 * Several "machines" on one host for tests: Linux network namespaces joined by veth links to a bridge
 * that lives in a namespace of its own, so nothing is added to the host's namespace. Every namespace
 * name carries a random suffix (two runs never collide); interface names are private to their
 * namespace, so they are fixed and short (≤ 15 characters). Needs root and iproute2.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { guard } from './guard.ts';

const run = promisify(execFile);

/** The absolute path of a system command (PATH first, then the sbin directories root's PATH may lack), or undefined. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Why this machine cannot run namespace tests (to pass to `t.skip`), or undefined when it can: tries to add and delete one namespace. */
export function netnsUnavailable(): string | undefined {
  const ip = findTool('ip');
  if (ip === undefined) return 'iproute2 (`ip`) is not installed';
  const probe = `sbprobe-${randomBytes(3).toString('hex')}`;
  const add = spawnSync(ip, ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `\`ip netns add\` failed (root and CAP_SYS_ADMIN needed): ${(add.stderr || add.error?.message || '').trim()}`;
  spawnSync(ip, ['netns', 'del', probe]);
  return undefined;
}

/** A process started inside a namespace, in a process group of its own, with its output kept line by line (stdout and stderr together). */
export class NsProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<void>;
  private readonly listeners = new Set<(line: string) => void>();

  readonly label: string;
  readonly child: ChildProcess;

  constructor(label: string, child: ChildProcess) {
    this.label = label;
    this.child = child;
    // A command that could not start emits 'error' and no 'exit': it counts as exited, with the reason in its lines.
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (err) => {
        this.push(`${label}: ${err.message}`);
        resolve();
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream?.setEncoding('utf8').on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) this.push(line);
      });
    }
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Calls `fn` for every line already seen and every later one; returns the unsubscribe function. */
  onLine(fn: (line: string) => void): () => void {
    for (const line of this.lines) fn(line);
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Resolves when `done` (called on each line, old and new) returns true; rejects after `ms`, or when the process exits first. */
  until(done: (line: string) => boolean, what: string, ms: number): Promise<void> {
    return waitForLines([this], (line) => line !== undefined && done(line), what, ms);
  }

  /** SIGKILL to the whole process group (a supervisor and its workers alike); resolves when the process has exited. */
  killGroup(): Promise<void> {
    if (this.running && this.child.pid !== undefined) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
    }
    return this.exited;
  }

  /** The last lines of output, for failure messages. */
  tail(n = 15): string {
    return this.lines.slice(-n).join('\n');
  }

  private push(line: string): void {
    this.lines.push(line);
    for (const fn of this.listeners) fn(line);
  }
}

/**
 * Resolves when `done` returns true, asked once at the start and again on every line any of `procs`
 * prints (with the line; old lines are replayed first); rejects after `ms` or when one of them exits.
 */
export function waitForLines(procs: NsProcess[], done: (line?: string) => boolean, what: string, ms: number): Promise<void> {
  const offs: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  const said = (): string => procs.map((p) => `--- ${p.label}:\n${p.tail()}`).join('\n');
  return new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}\n${said()}`)), ms);
    timer.unref();
    if (done()) return resolve();
    for (const p of procs) {
      offs.push(
        p.onLine((line) => {
          if (done(line)) resolve();
        }),
      );
      void p.exited.then(() => reject(new Error(`${p.label} exited while waiting for ${what}\n${said()}`)));
    }
  }).finally(() => {
    clearTimeout(timer);
    for (const off of offs) off();
  });
}

/** A host on the lab's LAN: its namespace and its address (CIDR) on `eth0`. */
export interface LanHost {
  ns: string;
  cidr: string;
}

/**
 * One LAN: a bridge `br0` in its own namespace, and one namespace per host whose `eth0` is a veth
 * plugged into the bridge, with `lo` up. `destroy` (call it in `after`, also when the test failed)
 * kills every process it started and every process still inside its namespaces, then deletes them;
 * the veths and the bridge go with their namespaces.
 */
export class Lan {
  readonly hosts = new Map<string, LanHost>();
  private readonly processes: NsProcess[] = [];
  private readonly namespaces: string[] = [];
  private readonly prefix = `sb${randomBytes(3).toString('hex')}`;
  private readonly bridgeNs = `${this.prefix}-br`;

  private readonly ip: string;

  private constructor(ip: string) {
    this.ip = ip;
  }

  /** Builds the LAN with one host per entry of `hosts` (role → CIDR address). On failure, what was built is removed again. */
  static async create(hosts: Record<string, string>): Promise<Lan> {
    const ip = findTool('ip');
    if (ip === undefined) throw new Error('iproute2 (`ip`) is not installed');
    const lan = new Lan(ip);
    try {
      await lan.addNs(lan.bridgeNs);
      await lan.cmd('-n', lan.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
      await lan.cmd('-n', lan.bridgeNs, 'link', 'set', 'br0', 'up');
      await Promise.all(
        Object.entries(hosts).map(async ([role, cidr]) => {
          const ns = `${lan.prefix}-${role}`;
          const port = `v${role}`.slice(0, 15);
          await lan.addNs(ns);
          await lan.cmd('-n', lan.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
          await lan.cmd('-n', lan.bridgeNs, 'link', 'set', port, 'master', 'br0', 'up');
          await lan.cmd('-n', ns, 'link', 'set', 'lo', 'up');
          await lan.cmd('-n', ns, 'addr', 'add', cidr, 'dev', 'eth0');
          await lan.cmd('-n', ns, 'link', 'set', 'eth0', 'up');
          lan.hosts.set(role, { ns, cidr });
        }),
      );
      return lan;
    } catch (err) {
      await lan.destroy();
      throw err;
    }
  }

  /** The namespace of host `role`. */
  ns(role: string): string {
    const host = this.hosts.get(role);
    if (host === undefined) throw new Error(`no host ${role} on this LAN`);
    return host.ns;
  }

  /** Starts `command args` inside host `role`'s namespace (`ip netns exec` execs it: the PID is the command's), as a process group leader. */
  spawn(role: string, label: string, command: string, args: string[]): NsProcess {
    const child = spawn(this.ip, ['netns', 'exec', this.ns(role), command, ...args], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const proc = new NsProcess(label, child);
    this.processes.push(proc);
    return proc;
  }

  /** `ip -n <ns> args…` for host `role`, resolving with its stdout. */
  async exec(role: string, ...args: string[]): Promise<string> {
    return (await this.cmd('-n', this.ns(role), ...args)).stdout;
  }

  /** Kills everything started here (process groups, then any process left in the namespaces) and deletes the namespaces. Never throws. */
  async destroy(): Promise<void> {
    await Promise.all(this.processes.map((p) => guard(p.killGroup(), `${p.label} to exit`, 5000).catch(() => {})));
    for (const ns of this.namespaces) {
      const pids = await this.cmd('netns', 'pids', ns).then(
        (r) => r.stdout.split(/\s+/).filter(Boolean).map(Number),
        () => [] as number[],
      );
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Exited meanwhile.
        }
      }
    }
    for (const ns of this.namespaces.splice(0).reverse()) await this.cmd('netns', 'del', ns).catch(() => {});
  }

  private async addNs(ns: string): Promise<void> {
    await this.cmd('netns', 'add', ns);
    this.namespaces.push(ns);
  }

  private cmd(...args: string[]): Promise<{ stdout: string }> {
    return run(this.ip, args, { encoding: 'utf8', timeout: 5000 });
  }
}
