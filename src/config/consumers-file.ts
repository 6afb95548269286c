/**
 * `consumers.file`: more consumers from a YAML or JSON file (the same shape as the section), for
 * thousands of keys kept apart from the config. Read on every config load and reload, in the
 * process that resolves the config (each worker reads it too). Problems inside the file are
 * reported at `consumers.file` in the config, their `found` naming the file's own line:column and
 * key path (`users.yaml:12:9: alice.credentials[0].password: a plain-text password (not shown)`).
 *
 * The YAML parser is loaded only when a config has such a file: a worker without one never loads
 * it (see load.ts).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import type { Document, LineCounter } from 'yaml';
import { consumersMap, type RawConsumer } from './consumers-schema.ts';
import { issueProblems, valueAt } from './issues.ts';
import { isSecretPath, show, type KeyPath, type Problem } from './problems.ts';

const require = createRequire(import.meta.url);

/**
 * Where a consumer was written: the config itself, or `consumers.file`. Problems are given with
 * key paths relative to the consumers map (`['alice', 'credentials', 0]`); the source places them.
 */
export interface ConsumerSource {
  report(rel: KeyPath, p: Omit<Problem, 'path'>): void;
  /** The place of `rel` in words, for "the same key as …". */
  where(rel: KeyPath): string;
}

function formatPath(path: KeyPath): string {
  return path.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join('');
}

/** line:column of the value at `path` (or the deepest part of it that exists). */
function lineOf(doc: Document, lines: LineCounter, path: KeyPath): string {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) {
      const { line, col } = lines.linePos(node.range[0]);
      return `${line}:${col}`;
    }
  }
  return '1:1';
}

/** The consumers of `file` with the source that places their problems; none when it cannot be read or parsed. */
export function readConsumersFile(file: string, baseDir: string, problems: Problem[]): Array<{ name: string; consumer: RawConsumer; src: ConsumerSource }> {
  const at: KeyPath = ['consumers', 'file'];
  const expected = 'a readable YAML or JSON file of consumers (a map of names to consumers)';
  let text: string;
  try {
    text = readFileSync(isAbsolute(file) ? file : resolvePath(baseDir, file), 'utf8');
  } catch (err) {
    problems.push({ path: at, expected, found: `${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` });
    return [];
  }
  const yaml = require('yaml') as typeof import('yaml');
  const lines = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const { line, col } = lines.linePos(doc.errors[0].pos[0]);
    problems.push({ path: at, expected, found: `${file}:${line}:${col}: a syntax error (${doc.errors[0].code})` });
    return [];
  }
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  const src: ConsumerSource = {
    report: (rel, p) => problems.push({ path: at, expected: p.expected, found: `${file}:${lineOf(doc, lines, rel)}: ${formatPath(rel)}: ${p.found}`, hint: p.hint }),
    where: (rel) => `${file}:${lineOf(doc, lines, rel)} (${formatPath(rel)})`,
  };
  const parsed = consumersMap.safeParse(data ?? {});
  if (!parsed.success) {
    // The same wording as for the config itself; secrets described, never shown.
    const found = (path: KeyPath): string => {
      if (isSecretPath(['consumers', ...path])) return 'a value that is not shown (a secret)';
      const { present, value } = valueAt(data, path);
      return present ? show(value) : 'it missing';
    };
    for (const issue of parsed.error.issues) for (const p of issueProblems(issue, { data, found })) src.report(p.path, p);
    return [];
  }
  return Object.entries(parsed.data).map(([name, consumer]) => ({ name, consumer, src }));
}
