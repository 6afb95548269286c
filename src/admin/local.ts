/**
 * The admin backend of a lone gateway process: everything is this process's own (its StateStore,
 * its listeners, its reloads). `gatewayAdmin` is the `AdminHostFactory` `startGateway` passes.
 */
import type { AdminHost, AdminHostFactory, Gateway } from '../gateway.ts';
import type { MetricsProvider } from '../observability/metrics-provider.ts';
import { AccessTap } from '../observability/access-tap.ts';
import type { AdminBackend, AdminUpstream, WorkerView } from './backend.ts';
import { AdminServer } from './server.ts';

export function localBackend(gw: Gateway): AdminBackend {
  return {
    log: gw.log,
    config: () => gw.config,
    generation: () => gw.generation,
    listenerUrls: () => gw.addresses(),
    // Listeners are bound before the admin starts and stay bound until it stops.
    serving: () => true,
    health: () => gw.health(),
    upstreams: async (): Promise<AdminUpstream[]> => gw.upstreamViews(),
    workers: async (): Promise<WorkerView[]> => [{ id: 0, pid: process.pid, state: 'serving', rss: process.memoryUsage.rss() }],
    configErrors: () => gw.configErrors(),
    change: async (c) => gw.change(c),
    purge: async (policy, query) => ({ purged: (await gw.purge(policy, query)) ?? 0, processes: 1 }),
    reload: async () => {
      const r = await gw.reload();
      return { ok: r.ok, errors: r.errors.map((e) => e.message) };
    },
    tail: (deliver) => {
      const tap = new AccessTap(deliver);
      tap.start();
      return () => tap.stop();
    },
  };
}

/** The admin listener of a lone gateway. */
export const gatewayAdmin: AdminHostFactory = (gw: Gateway, metrics: () => MetricsProvider | undefined): AdminHost =>
  new AdminServer({ backend: localBackend(gw), metrics });
