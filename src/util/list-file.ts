/**
 * The list files configs name (ip-filter's address lists, content-filter's URL patterns, the
 * forward rules' domain files): one entry a line, `#` to the end of a line a comment, blank lines
 * skipped. Read when the config is resolved, never per request.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve as resolvePath } from 'node:path';

/**
 * Calls `each(line, n)` for every entry line of `file` (relative to `baseDir`), trimmed and without
 * its comment; `n` counts from 1. Returns undefined, or why the file could not be read (its error code).
 */
export function forEachListLine(file: string, baseDir: string, each: (line: string, n: number) => void): string | undefined {
  let text: string;
  try {
    text = readFileSync(isAbsolute(file) ? file : resolvePath(baseDir, file), 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
  let start = 0;
  for (let n = 1; start < text.length; n++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let line = text.slice(start, end);
    start = end + 1;
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim(); // spaces, tabs, the \r of CRLF files, a byte order mark
    if (line !== '') each(line, n);
  }
  return undefined;
}
