/**
 * A worker process (forked by the supervisor through node:cluster): one Gateway serving every
 * listener, configured and steered by the supervisor's messages (messages.ts). It takes no signal
 * of its own: a terminal's Ctrl-C or a SIGHUP reaches the whole process group, and the supervisor
 * alone decides (a worker that acted on them too would drain twice or reload unvalidated). When the
 * supervisor goes away (its IPC channel closes) the worker drains and exits: no orphan keeps a port.
 */
import { Gateway } from '../gateway.ts';
import { createLogger } from '../observability/logger.ts';
import { AccessTap } from '../observability/access-tap.ts';
import { isMessage, type FromWorker, type HealthNews, type ToWorker } from './messages.ts';
import type { RuntimeChange } from '../upstream/state.ts';
import { loadKey } from '../upstream/machine-link.ts';
import { WorkerLink } from './worker-link.ts';
import { compactAtStart, compactWhenIdle } from '../util/heap.ts';
import type { StateChannel } from '../state/state-channel.ts';

/** How often a worker reports its memory, for `workerMemoryLimit`. */
const RSS_EVERY_MS = 2000;

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

export function runWorker(): void {
  const id = Number(process.env.SWITCHBOARD_WORKER_ID ?? 0);
  let gw: Gateway | undefined;
  const link = new WorkerLink(send);
  let draining = false;
  /** A reload that came while the worker was still starting. */
  let pending: { data: unknown; file: string } | undefined;
  /** Endpoint health from the supervisor: endpoints start with it; news that comes while starting is kept to replay. */
  const health = new Map<string, boolean>();
  const healthNews: HealthNews[] = [];
  /** Parent proxies' health from the supervisor (forward/parent-health.ts), the same way: per worker, a copy of the machine's. */
  const parentHealth = new Map<string, boolean>();
  const parentNews: Array<{ key: string; healthy: boolean; reason: string }> = [];
  /** Runtime changes (admin API) that came while starting, replayed once serving (applying one twice is harmless). */
  const runtimeNews: RuntimeChange[] = [];
  /** The admin's live tail: on while the supervisor says someone tails (per worker). */
  const tap = new AccessTap((batch) => send({ sb: 'tail-lines', lines: batch.lines, dropped: batch.dropped }));
  const ignore = (): void => undefined;
  // Signals are the supervisor's. A SIGUSR1 listener also keeps node from opening its inspector.
  for (const sig of ['SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, ignore);

  const drain = (linger: boolean): void => {
    if (draining) return;
    draining = true;
    const stopped = gw?.stop({ lingerIdle: linger, onStoppedAccepting: () => send({ sb: 'stopped-accepting' }) });
    if (stopped === undefined) send({ sb: 'stopped-accepting' });
    void (stopped ?? Promise.resolve()).finally(() => process.exit(0));
  };
  // A message to a supervisor that went away fails later, as an 'error' event: 'disconnect' drains.
  process.on('error', ignore);
  process.on('SIGTERM', () => drain(false));
  process.on('disconnect', () => drain(false));

  process.on('message', (m: unknown) => {
    // Answers to this worker's shared-state operations (state/remote-state.ts) first.
    if (gw?.state.handle(m)) return;
    if (!isMessage<ToWorker>(m)) return;
    switch (m.sb) {
      case 'init': {
        for (const h of m.health) health.set(loadKey.endpoint(h.upstream, h.endpoint), h.healthy);
        for (const h of m.parentHealth) parentHealth.set(h.key, h.healthy);
        if (m.tail) tap.start();
        const logger = createLogger(m.logLevel, m.logFormat).child({ worker: id, pid: process.pid });
        link.log = logger;
        Gateway.start({
          config: m.file,
          configData: { data: m.data, file: m.file },
          accessLog: m.accessLog,
          accessLogFormat: m.accessLogFormat,
          logger,
          // Reloads are counted by the supervisor, which validates them for the machine.
          metrics: m.metrics ? { reloads: false } : false,
          sockets: new Map(Object.entries(m.sockets)),
          worker: { id, ticketKeys: Buffer.from(m.ticketKeys, 'base64'), link, stateChannel: process as StateChannel, health, parentHealth, runtime: m.runtime },
          // Start-up's garbage is collected before this worker accepts (and so before `ready`):
          // meanwhile the other workers, or in a reload or an upgrade the old ones, serve (util/heap.ts).
          beforeListening: compactAtStart,
        }).then(
          (started) => {
            gw = started;
            for (const h of healthNews.splice(0)) started.setHealth(h.upstream, h.endpoint, h.healthy, h.reason);
            for (const h of parentNews.splice(0)) started.setParentHealth(h.key, h.healthy, h.reason);
            for (const c of runtimeNews.splice(0)) started.change(c);
            if (draining) return void started.stop().finally(() => process.exit(0));
            send({ sb: 'ready', addresses: started.addresses() });
            if (pending !== undefined) void started.reloadData(pending.data, pending.file);
            setInterval(() => send({ sb: 'rss', rss: process.memoryUsage.rss() }), RSS_EVERY_MS).unref();
            // Compacted before listening: from now on only after idle periods.
            compactWhenIdle();
          },
          (err: NodeJS.ErrnoException) => {
            draining = true;
            const failed: FromWorker = { sb: 'failed', message: err.message, code: err.code };
            if (process.connected) process.send!(failed, () => process.exit(1));
            else process.exit(1);
          },
        );
        return;
      }
      case 'reload':
        if (gw === undefined) {
          // Still starting (on the config it got with init): it swaps as soon as it serves.
          pending = m;
          return send({ sb: 'reloaded', seq: m.seq, ok: true, errors: [] });
        }
        void gw.reloadData(m.data, m.file).then((r) => send({ sb: 'reloaded', seq: m.seq, ok: r.ok, errors: r.errors.map((e) => e.message) }));
        return;
      case 'health':
        if (gw !== undefined) return gw.setHealth(m.upstream, m.endpoint, m.healthy, m.reason);
        health.set(loadKey.endpoint(m.upstream, m.endpoint), m.healthy);
        healthNews.push(m);
        return;
      case 'parent-health':
        if (gw !== undefined) return gw.setParentHealth(m.key, m.healthy, m.reason);
        parentHealth.set(m.key, m.healthy);
        parentNews.push(m);
        return;
      case 'reopen':
        void gw?.reopenLogs();
        return;
      case 'admin-read':
        return send({ sb: 'admin-view', id: m.id, upstreams: gw?.upstreamViews() ?? [] });
      case 'admin-change':
        if (gw !== undefined) gw.change(m.change);
        else runtimeNews.push(m.change);
        return;
      case 'cache-purge':
        // A worker still starting has stored nothing yet: 0.
        void (gw?.purge(m.policy, m.query) ?? Promise.resolve(0)).then(
          (purged) => send({ sb: 'cache-purged', id: m.id, purged: purged ?? 0 }),
          () => send({ sb: 'cache-purged', id: m.id, purged: 0 }),
        );
        return;
      case 'tail':
        if (m.on) tap.start();
        else tap.stop();
        return;
      case 'certs':
        gw?.reloadCertificates();
        return;
      case 'drain':
        drain(m.linger);
        return;
      case 'sockets': {
        // The supervisor hands these to the Switchboard that upgrades it (process/handover.ts).
        const sockets = gw?.handoverSockets() ?? [];
        if (sockets.length === 0) return send({ sb: 'socket', id: m.id, count: 0 });
        for (const s of sockets) process.send!({ sb: 'socket', id: m.id, name: s.name, count: sockets.length } satisfies FromWorker, s.handle as never);
        return;
      }
      case 'metrics': {
        const id = m.id;
        const metrics = gw?.metrics;
        if (metrics === undefined) return send({ sb: 'metrics', id, metrics: [] });
        void metrics.snapshot().then(
          (json) => send({ sb: 'metrics', id, metrics: json }),
          () => send({ sb: 'metrics', id, metrics: [] }),
        );
        return;
      }
      case 'load':
      case 'slot':
      case 'eject':
        link.handle(m);
        return;
    }
  });
  // Messages that arrive before a listener exists are lost (loading the modules takes a while):
  // the supervisor sends `init` once the worker says it listens.
  send({ sb: 'hello' });
}
