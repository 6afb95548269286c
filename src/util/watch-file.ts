/**
 * Watches a file (a config file) or several (certificates and keys) and calls `changed` once edits settle: editors' and
 * Kubernetes' atomic swaps (a new file renamed over the old) count as changes. Resolves with the
 * watcher once it is ready, so that no edit after the call is missed; close it to stop.
 */
import type { FSWatcher } from 'chokidar';

export async function watchFile(file: string | string[], changed: () => void): Promise<FSWatcher> {
  // Loaded on first use: a worker watches nothing (its supervisor does) and never pays for it.
  const { watch } = await import('chokidar');
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(file, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 20 } });
  watcher.on('all', (event) => {
    if (event !== 'change' && event !== 'add') return;
    clearTimeout(timer);
    timer = setTimeout(changed, 50);
  });
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return watcher;
}
