/**
 * Process signals for a running gateway or supervisor: SIGTERM/SIGINT drain and exit 0, SIGHUP
 * reloads, SIGUSR1 reopens log files (logrotate; a listener also keeps node from opening its
 * inspector on it), SIGUSR2 upgrades: a new Switchboard started from the code on disk takes the
 * listening sockets over (process/handover.ts), and once it serves this one drains and exits 0.
 */
import type { Gateway } from '../gateway.ts';
import type { Supervisor } from '../process/supervisor.ts';
import { startSuccessor } from '../process/handover.ts';
import { compactWhenIdle } from '../util/heap.ts';

interface Steered {
  readonly log: { info(o: object, msg: string): void; warn(o: object, msg: string): void; error(o: object, msg: string): void };
  /** Stops; logs "draining" (with the signal) once new connections are refused. `linger`: another process serves on. */
  stop(signal: string, linger: boolean): Promise<void>;
  reload(): Promise<unknown>;
  reopenLogs(): unknown;
  /** Hands over to a new Switchboard; true once it serves (this one then drains). */
  upgrade(): Promise<boolean>;
}

/**
 * Takes the signals from now on, acting on `starting` once it is up (a SIGTERM that comes while
 * workers still start stops them once they have). Resolves once stopped and `after` ran; rejects
 * when `starting` does (the handlers are removed).
 */
function run(starting: Promise<Steered>, after: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const act = (fn: (t: Steered) => unknown): void => {
      void starting.then(fn, () => undefined);
    };
    const hup = (): void => act((t) => t.reload());
    const usr1 = (): void =>
      act((t) => {
        t.log.info({ signal: 'SIGUSR1' }, 'reopening log files');
        return t.reopenLogs();
      });
    let upgrading = false;
    const usr2 = (): void =>
      act(async (t) => {
        if (stopping || upgrading) return;
        upgrading = true;
        t.log.info({ signal: 'SIGUSR2' }, 'upgrade: handing the listening sockets to a new Switchboard');
        const ok = await t.upgrade().catch((err: Error) => {
          t.log.error({ err: err.message }, 'upgrade failed; this one keeps serving');
          return false;
        });
        upgrading = false;
        if (ok) stop('SIGUSR2', true);
      });
    const term = (): void => stop('SIGTERM');
    const int = (): void => stop('SIGINT');
    // An idle gateway or supervisor gives back what bursts grew (util/heap.ts). Start-up's garbage
    // was collected before it listened or forked (beforeListening / beforeForking: compactAtStart).
    let stopCompaction: (() => void) | undefined;
    void starting.then(
      () => {
        if (!stopping) stopCompaction = compactWhenIdle();
      },
      () => undefined,
    );
    const off = (): void => {
      stopCompaction?.();
      process.off('SIGTERM', term);
      process.off('SIGINT', int);
      process.off('SIGHUP', hup);
      process.off('SIGUSR2', usr2);
    };
    const stop = (signal: string, linger = false): void => {
      if (stopping) return;
      stopping = true;
      act((t) => {
        return t
          .stop(signal, linger)
          .then(after)
          .then(() => {
            off();
            resolve();
          });
      });
    };
    process.on('SIGTERM', term);
    process.on('SIGINT', int);
    process.on('SIGHUP', hup);
    // Kept to the end: a SIGUSR1 listener also keeps node from opening its inspector.
    process.on('SIGUSR1', usr1);
    process.on('SIGUSR2', usr2);
    starting.catch((err: unknown) => {
      off();
      reject(err);
    });
  });
}

/**
 * Resolves once the gateway has drained and `after` (the caller's own clean-up) has run; rejects if
 * it fails to start. The gateway is started with `beforeListening: compactAtStart` (util/heap.ts):
 * here only the idle compactions follow.
 */
export function runUntilSignal(starting: Promise<Gateway>, after: () => Promise<void> = async () => undefined): Promise<void> {
  return run(
    starting.then((gw) => ({
      log: gw.log,
      stop: (signal: string, linger: boolean) => {
        gw.log.info({ signal }, 'draining');
        return gw.stop({ lingerIdle: linger });
      },
      reload: () => gw.reload(),
      reopenLogs: () => gw.reopenLogs(),
      upgrade: () => startSuccessor(gw.handoverSockets(), gw.log),
    })),
    after,
  );
}

/** The same for a supervisor, which also upgrades on SIGUSR2. */
export function runSupervisorUntilSignal(starting: Promise<Supervisor>): Promise<void> {
  return run(
    starting.then((sv) => ({
      log: sv.log,
      stop: (signal: string, linger: boolean) => sv.stop(signal, { linger }),
      reload: () => sv.reload(),
      reopenLogs: () => sv.reopenLogs(),
      upgrade: () => sv.handover(),
    })),
    // Started with `beforeForking: compactAtStart`: it collected start-up's garbage before its first
    // worker, whose `memory` state calls it answers (a pause later would stall them).
    async () => undefined,
  );
}
