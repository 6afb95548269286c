/** Conversion of the config's human units. Callers have already checked the pattern (config-primitives.ts). */

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_BYTES: Record<string, number> = {
  B: 1,
  KB: 1000,
  KiB: 1024,
  MB: 1000 ** 2,
  MiB: 1024 ** 2,
  GB: 1000 ** 3,
  GiB: 1024 ** 3,
};

/** `250ms` → 250, `5s` → 5000, `0` → 0. Throws on anything else. */
export function parseDuration(value: string | number): number {
  if (value === 0 || value === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(String(value));
  if (!m) throw new Error(`not a duration: ${String(value)}`);
  return Math.round(Number(m[1]) * DURATION_MS[m[2]]);
}

/** `16KiB` → 16384, `10MB` → 10000000, 512 → 512. Throws on anything else. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/.exec(value);
  if (!m) throw new Error(`not a size: ${value}`);
  return Math.round(Number(m[1]) * SIZE_BYTES[m[2] ?? 'B']);
}
