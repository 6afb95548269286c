/**
 * The list files that policy configs name (ip-filter's `allowFiles`/`denyFiles`, content-filter's
 * `urlFiles`): one entry a line, `#` to the end of a line a comment, blank lines skipped. Read once
 * when the config is resolved, never per request; problems name the key path, the file and the line.
 */
import { forEachListLine } from '../util/list-file.ts';
import type { ResolveContext } from './filter.ts';

/** Bad lines reported one by one per file; the rest are counted in one more problem. */
const MAX_LINE_PROBLEMS = 10;

/** What a list file holds, for its problems: `what` ("addresses or CIDR ranges"), `one` ("one address or CIDR range a line"), `expected` (a bad line's expectation). */
export interface ListFileKind {
  readonly what: string;
  readonly one: string;
  readonly expected: string;
}

/**
 * Reads `file` (relative to the config file) and gives each entry to `add`, which returns
 * undefined when it took it, or a reason ('' for none) when the line is bad. An unreadable file is
 * one problem at `at`.
 */
export function readListFile(file: string, at: [string, number], kind: ListFileKind, ctx: ResolveContext, add: (entry: string) => string | undefined): void {
  let bad = 0;
  const unreadable = forEachListLine(file, ctx.baseDir, (line, n) => {
    const reason = add(line);
    if (reason !== undefined && ++bad <= MAX_LINE_PROBLEMS) {
      ctx.problem({ path: at, expected: kind.expected, found: `${JSON.stringify(line)} (${file} line ${n}${reason === '' ? '' : `: ${reason}`})` });
    }
  });
  if (unreadable !== undefined) ctx.problem({ path: at, expected: `a readable file of ${kind.what}, one a line`, found: `${JSON.stringify(file)} (${unreadable})` });
  if (bad > MAX_LINE_PROBLEMS) ctx.problem({ path: at, expected: kind.one, found: `${bad - MAX_LINE_PROBLEMS} more bad lines in ${file}` });
}
