/**
 * `HeaderList`: the `Headers` of the filter contract over a flat `[name, value, name, value, …]`
 * array, the form node:http's `writeHead` and undici's `dispatch` take, so a filtered head goes on
 * without conversion. Names are compared case-insensitively and kept as written. Built only for
 * requests that have a filter in the phase: the unfiltered path keeps the bare array.
 */
import type { Headers } from '../policies/filter.ts';

function same(stored: string, lower: string): boolean {
  return stored.length === lower.length && (stored === lower || stored.toLowerCase() === lower);
}

export class HeaderList implements Headers {
  /** The flat list itself: changes are made in place. */
  readonly raw: string[];

  constructor(raw: string[] = []) {
    this.raw = raw;
  }

  /** From a `{ name: value | values }` record (a Reply's headers, undici's parsed response headers). */
  static from(record: Readonly<Record<string, string | number | readonly string[] | undefined>> | undefined): HeaderList {
    const raw: string[] = [];
    if (record !== undefined) {
      for (const name in record) {
        const v = record[name];
        if (v === undefined) continue;
        if (typeof v === 'string') raw.push(name, v);
        else if (typeof v === 'number') raw.push(name, String(v));
        else for (const one of v) raw.push(name, one);
      }
    }
    return new HeaderList(raw);
  }

  get(name: string): string | undefined {
    const lower = name.toLowerCase();
    const raw = this.raw;
    let out: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      if (same(raw[i], lower)) out = out === undefined ? raw[i + 1] : `${out}, ${raw[i + 1]}`;
    }
    return out;
  }

  getAll(name: string): string[] {
    const lower = name.toLowerCase();
    const raw = this.raw;
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) if (same(raw[i], lower)) out.push(raw[i + 1]);
    return out;
  }

  has(name: string): boolean {
    const lower = name.toLowerCase();
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) if (same(raw[i], lower)) return true;
    return false;
  }

  set(name: string, value: string): void {
    const lower = name.toLowerCase();
    const raw = this.raw;
    let at = -1;
    for (let i = 0; i < raw.length; i += 2) {
      if (!same(raw[i], lower)) continue;
      if (at === -1) {
        at = i;
        raw[i + 1] = value;
      } else {
        raw.splice(i, 2);
        i -= 2;
      }
    }
    if (at === -1) raw.push(name, value);
  }

  append(name: string, value: string): void {
    this.raw.push(name, value);
  }

  delete(name: string): boolean {
    const lower = name.toLowerCase();
    const raw = this.raw;
    let found = false;
    for (let i = 0; i < raw.length; i += 2) {
      if (!same(raw[i], lower)) continue;
      raw.splice(i, 2);
      i -= 2;
      found = true;
    }
    return found;
  }

  rename(from: string, to: string): void {
    const lower = from.toLowerCase();
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) if (same(raw[i], lower)) raw[i] = to;
  }

  forEach(fn: (value: string, name: string) => void): void {
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) fn(raw[i + 1], raw[i]);
  }
}
