/**
 * Process signals for a running gateway or supervisor: SIGTERM/SIGINT drain and exit 0, SIGHUP
 * reloads, SIGUSR1 reopens log files (logrotate; a listener also keeps node from opening its
 * inspector on it), SIGUSR2 upgrades (a supervisor starts new workers from the code on disk, then
 * drains the old ones).
 */
import type { Gateway } from '../gateway.ts';
import type { Supervisor } from '../process/supervisor.ts';
import { compactWhenIdle } from '../util/heap.ts';

interface Steered {
  readonly log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** Stops; logs "draining" (with the signal) once new connections are refused. */
  stop(signal: string): Promise<void>;
  reload(): Promise<unknown>;
  reopenLogs(): unknown;
  upgrade?: () => Promise<unknown>;
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
    const usr2 = (): void =>
      act((t) => (t.upgrade === undefined ? t.log.warn({ signal: 'SIGUSR2' }, 'upgrade needs workers (workers: 2 or more); ignored') : t.upgrade()));
    const term = (): void => stop('SIGTERM');
    const int = (): void => stop('SIGINT');
    // An idle gateway or supervisor gives back what start-up and bursts grew (util/heap.ts).
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
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      act((t) => {
        return t
          .stop(signal)
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

/** Resolves once the gateway has drained and `after` (the caller's own clean-up) has run; rejects if it fails to start. */
export function runUntilSignal(starting: Promise<Gateway>, after: () => Promise<void> = async () => undefined): Promise<void> {
  return run(
    starting.then((gw) => ({
      log: gw.log,
      stop: (signal: string) => {
        gw.log.info({ signal }, 'draining');
        return gw.stop();
      },
      reload: () => gw.reload(),
      reopenLogs: () => gw.reopenLogs(),
    })),
    after,
  );
}

/** The same for a supervisor, which also upgrades on SIGUSR2. */
export function runSupervisorUntilSignal(starting: Promise<Supervisor>): Promise<void> {
  return run(
    starting.then((sv) => ({
      log: sv.log,
      stop: (signal: string) => sv.stop(signal),
      reload: () => sv.reload(),
      reopenLogs: () => sv.reopenLogs(),
      upgrade: () => sv.upgrade(),
    })),
    async () => undefined,
  );
}
