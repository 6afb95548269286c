/**
 * What a reload changed: the listeners, routes, upstreams and policies of the old and the new
 * resolved config compared by name (added, removed, changed = not deep-equal), and which other
 * top-level settings differ. For the one "config reloaded" log line (gateway.ts for one process,
 * the supervisor for workers).
 */
import { isDeepStrictEqual } from 'node:util';
import type { GatewayConfig } from './types.ts';

type Section = 'listeners' | 'routes' | 'upstreams' | 'policies';

/** Only the sections with something in them; `settings`: the other top-level keys that changed. */
export interface ConfigChanges {
  added?: Partial<Record<Section, string[]>>;
  removed?: Partial<Record<Section, string[]>>;
  changed?: Partial<Record<Section, string[]>>;
  settings?: string[];
}

/** A section's entries by name; a route's `order` (its place in the file) is left out, so a route that only moved is not "changed". */
function byName(c: GatewayConfig, section: Section): Map<string, unknown> {
  switch (section) {
    case 'listeners':
      return new Map(c.listeners.map((l) => [l.name, l]));
    case 'routes':
      return new Map(c.routes.map(({ order: _order, ...r }) => [r.name, r]));
    case 'upstreams':
      return c.upstreams;
    case 'policies':
      return c.policies;
  }
}

const SECTIONS: readonly Section[] = ['listeners', 'routes', 'upstreams', 'policies'];

export function configChanges(before: GatewayConfig, after: GatewayConfig): ConfigChanges {
  const out: ConfigChanges = {};
  const put = (kind: 'added' | 'removed' | 'changed', section: Section, names: string[]): void => {
    if (names.length === 0) return;
    out[kind] ??= {};
    out[kind][section] = names;
  };
  for (const section of SECTIONS) {
    const old = byName(before, section);
    const now = byName(after, section);
    put(
      'added',
      section,
      [...now.keys()].filter((n) => !old.has(n)),
    );
    put(
      'removed',
      section,
      [...old.keys()].filter((n) => !now.has(n)),
    );
    put(
      'changed',
      section,
      [...now.keys()].filter((n) => old.has(n) && !isDeepStrictEqual(old.get(n), now.get(n))),
    );
  }
  const settings = (Object.keys(after) as (keyof GatewayConfig)[]).filter((k) => !(SECTIONS as readonly string[]).includes(k) && !isDeepStrictEqual(before[k], after[k]));
  if (settings.length > 0) out.settings = settings;
  return out;
}
