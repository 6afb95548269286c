/**
 * Binary upgrade (SIGUSR2 to `switchboard start`): the running process hands its listening sockets
 * to a new Switchboard process started from the code on disk, as nginx's binary upgrade and
 * HAProxy's seamless reload do, so that a new version (supervisor and workers alike, or a lone
 * process) takes over without a refused connection:
 *
 *   old ── spawns `switchboard start …` (same command line, same environment) with each listening
 *    │     socket as an inherited descriptor (fd 4, 5, …) and their names in SWITCHBOARD_SOCKETS
 *    │                 new ── binds its listeners on those descriptors instead of their addresses,
 *    │                  │     starts its workers, writes the PID file, then says `ready` (IPC)
 *    └── on `ready`: stops accepting, drains (keep-alive connections end at their timeout), exits 0
 *
 * If the new process fails (a bad config, a crash) before `ready`, the old one logs why and keeps
 * serving; the sockets never closed. The kernel socket is the same throughout, so connections
 * waiting in its accept queue are served by whichever process accepts next.
 *
 * State scope: the machine's `memory` shared state, circuit breakers and counters are the old
 * supervisor's and start afresh in the new one (as after a restart); with `state.backend: redis`
 * rate limits and quotas carry over.
 */
import { spawn } from 'node:child_process';
import { writeFileSync, readFileSync, unlinkSync } from 'node:fs';

/** Where the names of the inherited sockets travel (JSON: binding name → descriptor in the new process). */
const SOCKETS_ENV = 'SWITCHBOARD_SOCKETS';
/** How long a new Switchboard started by an upgrade has to serve before the upgrade is given up. */
const HANDOVER_TIMEOUT_MS = 60_000;
/** The first descriptor of an inherited socket (0-2 are stdio, 3 the IPC channel to the old process). */
const FIRST_FD = 4;

/** A listening socket to hand over: its binding name (`host:port`, or `admin`) and descriptor here. */
export interface HandedSocket {
  readonly name: string;
  readonly fd: number;
}

/** A process log, as much as the handover uses of it. */
interface Log {
  info(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

/**
 * The listening sockets this process inherited from the one it upgrades (binding name → descriptor),
 * empty when it was not started by an upgrade. Read once, at start; removed from the environment so
 * that workers and later upgrades do not see stale descriptors.
 */
export function inheritedSockets(): Map<string, number> {
  const text = process.env[SOCKETS_ENV];
  delete process.env[SOCKETS_ENV];
  if (text === undefined || text === '') return new Map();
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    return new Map(Object.entries(parsed).filter((e): e is [string, number] => Number.isInteger(e[1])));
  } catch {
    return new Map();
  }
}

/** Whether this process was started by an upgrade and its predecessor waits for `ready`. */
export function upgrading(): boolean {
  return process.send !== undefined && process.env.SWITCHBOARD_UPGRADE_FROM !== undefined;
}

/** Tells the process this one upgrades that it serves now, and lets go of the channel to it. */
export function announceReady(): void {
  if (!upgrading()) return;
  delete process.env.SWITCHBOARD_UPGRADE_FROM;
  // The predecessor may be gone already (killed or stopped while this one started): the channel is
  // closed then, the message is lost (nobody waits for it) and this process serves on. Disconnecting
  // a closed channel emits 'error' on `process`, which would end the process that now holds the
  // listening sockets.
  if (!process.connected) return;
  process.send!({ sb: 'upgrade-ready', pid: process.pid }, () => {
    if (process.connected) process.disconnect();
  });
}

/**
 * Starts the new process with `sockets`, resolves true once it serves (logged), or false when it
 * exited (or did not say `ready` within `timeoutMs`) first; it is killed then. The caller closes its
 * own copies of the descriptors afterwards, and drains.
 */
export function startSuccessor(sockets: readonly HandedSocket[], log: Log, timeoutMs = HANDOVER_TIMEOUT_MS): Promise<boolean> {
  const names: Record<string, number> = {};
  sockets.forEach((s, i) => {
    names[s.name] = FIRST_FD + i;
  });
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...sockets.map((s) => s.fd)],
    env: { ...process.env, [SOCKETS_ENV]: JSON.stringify(names), SWITCHBOARD_UPGRADE_FROM: String(process.pid) },
  });
  log.info({ pid: child.pid, sockets: Object.keys(names) }, 'upgrade: started a new Switchboard from the code on disk');
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined, `it did not serve within ${timeoutMs} ms`), timeoutMs);
    const onMessage = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && (m as { sb?: unknown }).sb === 'upgrade-ready') done(child.pid, undefined);
    };
    const onExit = (code: number | null, signal: string | null): void => done(undefined, `it exited (${signal ?? `code ${code}`}) before it served`);
    function done(pid: number | undefined, why: string | undefined): void {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (pid === undefined) {
        log.error({ pid: child.pid, reason: why }, 'upgrade failed: the new Switchboard did not start; this one keeps serving');
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      } else {
        log.info({ pid }, 'upgrade: the new Switchboard serves; this one drains');
        // Its own from now on: this process exits after draining, the new one lives on.
        child.disconnect?.();
        child.unref();
      }
      resolve(pid !== undefined);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.on('error', (err) => done(undefined, err.message));
  });
}

/**
 * The PID file (`--pid-file`): written at start, and by a new process before it says `ready`, so a
 * service manager that reads it (systemd's `PIDFile=`) follows the upgrade to the new main PID;
 * removed at stop only while it still names this process.
 */
export class PidFile {
  readonly #path: string | undefined;
  constructor(path: string | undefined) {
    this.#path = path;
  }

  write(): void {
    if (this.#path !== undefined) writeFileSync(this.#path, `${process.pid}\n`);
  }

  remove(): void {
    if (this.#path === undefined) return;
    try {
      if (readFileSync(this.#path, 'utf8').trim() === String(process.pid)) unlinkSync(this.#path);
    } catch {
      // gone already
    }
  }
}
