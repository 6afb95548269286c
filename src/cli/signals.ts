/** Process signals for a running gateway: SIGTERM/SIGINT drain and exit 0, SIGHUP reloads. */
import type http from 'node:http';
import type { Gateway } from '../gateway.ts';

export function runUntilSignal(gw: Gateway, after: () => Promise<void> = async () => undefined, opts: { closeAllOnStop?: http.Server[] } = {}): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      gw.log.info({ signal }, 'draining');
      void gw
        .stop()
        .then(async () => {
          for (const s of opts.closeAllOnStop ?? []) s.closeAllConnections();
          await after();
        })
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
