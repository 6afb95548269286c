/**
 * Calendar periods in a time zone: which day or month an instant falls in, and when that period
 * ends. Intl gives the local date and the zone's offset; a boundary is found by subtracting the
 * offset at the boundary (two rounds, for a boundary near a daylight-saving change).
 */

/** One calendar period: its name (`2026-12-05`, `2026-12`) and its bounds (ms since the epoch). */
export interface Period {
  readonly id: string;
  readonly start: number;
  readonly end: number;
}

/** A formatter of `timeZone` giving the numeric parts; throws RangeError for an unknown zone. */
export function zoneFormatter(timeZone: string): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
}

/** The local wall clock of `t` as if it were UTC (ms), and its date. */
function local(fmt: Intl.DateTimeFormat, t: number): { wall: number; y: number; m: number; d: number } {
  const p: Record<string, number> = {};
  for (const part of fmt.formatToParts(t)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const wall = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return { wall, y: p.year!, m: p.month!, d: p.day! };
}

/** The instant whose local wall clock is `wall` (ms, read as UTC). */
function instantOf(fmt: Intl.DateTimeFormat, wall: number): number {
  let t = wall - (local(fmt, wall).wall - wall);
  t = wall - (local(fmt, t).wall - t);
  return t;
}

const two = (n: number): string => String(n).padStart(2, '0');

/** The period of `period` kind that `now` falls in, in the zone of `fmt`. */
export function periodAt(period: 'day' | 'month', fmt: Intl.DateTimeFormat, now: number): Period {
  const { y, m, d } = local(fmt, now);
  if (period === 'day') {
    return { id: `${y}-${two(m)}-${two(d)}`, start: instantOf(fmt, Date.UTC(y, m - 1, d)), end: instantOf(fmt, Date.UTC(y, m - 1, d + 1)) };
  }
  return { id: `${y}-${two(m)}`, start: instantOf(fmt, Date.UTC(y, m - 1, 1)), end: instantOf(fmt, Date.UTC(y, m, 1)) };
}
