/** Process signals for a running gateway: SIGTERM/SIGINT drain and exit 0, SIGHUP reloads. */
import type { Gateway } from '../gateway.ts';

/** Resolves once the gateway has drained and `after` (the caller's own clean-up) has run. */
export function runUntilSignal(gw: Gateway, after: () => Promise<void> = async () => undefined): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      gw.log.info({ signal }, 'draining');
      void gw
        .stop()
        .then(after)
        .then(() => {
          process.off('SIGHUP', hup);
          resolve();
        });
    };
    const hup = (): void => {
      void gw.reload();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', hup);
  });
}
