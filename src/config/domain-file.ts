/**
 * Destination-name patterns for the forward proxy's rules: checking the ones written in the config
 * (`domains`) and reading `domainFiles`, relative to the config file, on every config load and
 * reload. A file is one pattern a line (`name` or `*.suffix`), or hosts format (`0.0.0.0 name …`,
 * the blocklists' usual form: every name after the address); `#` to the end of a line is a comment.
 * Address "names" in hosts files (`0.0.0.0 0.0.0.0`) are skipped; any other entry that is no host
 * name is a problem at the key, naming the file's line (the first ten of them, then a count).
 */
import { isIP } from 'node:net';
import { isHostName } from '../util/host.ts';
import { forEachListLine } from '../util/list-file.ts';
import { show, type KeyPath, type Problem } from './problems.ts';

const MAX_LINE_PROBLEMS = 10;
const EXPECTED = 'a host name, `*.` and a host name, or `~` and a regular expression';

/** One pattern of `domains`, lower-cased (a `~regex` kept as written); undefined, with a problem, when it is none. */
export function checkDomainPattern(raw: string, at: KeyPath, problems: Problem[]): string | undefined {
  if (raw.startsWith('~')) {
    try {
      new RegExp(raw.slice(1)); // on its own first: the error speaks of what was written
      return raw;
    } catch (err) {
      problems.push({ path: at, expected: 'a valid regular expression after `~`', found: `${show(raw)} (${(err as Error).message})` });
      return undefined;
    }
  }
  const p = raw.toLowerCase().replace(/\.$/, '');
  if (isHostName(p.startsWith('*.') ? p.slice(2) : p)) return p;
  problems.push({ path: at, expected: EXPECTED, found: show(raw) });
  return undefined;
}

/** Appends the patterns of one domain file to `out`. */
export function readDomainFile(file: string, baseDir: string, at: KeyPath, out: string[], problems: Problem[]): void {
  let bad = 0;
  const unreadable = forEachListLine(file, baseDir, (line, n) => {
    const fields = line.split(/\s+/);
    const names = fields.length > 1 && isIP(fields[0]) !== 0 ? fields.slice(1) : fields;
    for (const raw of names) {
      if (isIP(raw) !== 0) continue;
      const p = raw.toLowerCase().replace(/\.$/, '');
      if (isHostName(p.startsWith('*.') ? p.slice(2) : p)) out.push(p);
      else if (++bad <= MAX_LINE_PROBLEMS) problems.push({ path: at, expected: 'a host name or `*.` and a host name', found: `${show(raw)} (${file} line ${n})` });
    }
  });
  if (unreadable !== undefined) {
    problems.push({ path: at, expected: 'a readable file of host names, one a line (or hosts format)', found: `${JSON.stringify(file)} (${unreadable})` });
    return;
  }
  if (bad > MAX_LINE_PROBLEMS)
    problems.push({ path: at, expected: 'a host name or `*.` and a host name', found: `${bad - MAX_LINE_PROBLEMS} more bad entries in ${file}` });
}
