/**
 * Key paths → places in the YAML source: the line:column an error points at and the value as it is
 * written there. Works on the parsed Document (not the plain JS value) so positions survive
 * environment substitution.
 */
import { isAlias, isMap, isScalar, isSeq, visit, type Document, type LineCounter, type Node } from 'yaml';
import type { KeyPath } from './problems.ts';

/** A 1-based place in a file. */
export interface Position {
  line: number;
  column: number;
}

interface Found {
  /** The deepest node reached along the path. */
  node: Node | null;
  /** The key node of the last map entry walked through, if any. */
  key: Node | null;
  /** Whether the whole path exists. */
  complete: boolean;
}

function deref(doc: Document, node: unknown): Node | null {
  if (isAlias(node)) return (node.resolve(doc) as Node | undefined) ?? null;
  return (node as Node | null) ?? null;
}

/** Walks `path` through maps and lists, as far as it exists. */
export function nodeAt(doc: Document, path: KeyPath): Found {
  let node = deref(doc, doc.contents);
  let key: Node | null = null;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (!pair) return { node, key, complete: false };
      key = (pair.key as Node | null) ?? null;
      node = deref(doc, pair.value);
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      key = null;
      node = deref(doc, node.items[seg]);
    } else {
      return { node, key, complete: false };
    }
  }
  return { node, key, complete: true };
}

function isEmpty(node: Node | null): boolean {
  return !node?.range || (isScalar(node) && node.value === null && node.range[0] === node.range[1]);
}

/**
 * Where an error about `path` points. `atKey` points at the key of the entry rather than its value
 * (unknown keys, missing keys); a path that does not exist points at the deepest part that does;
 * an empty value points at its key.
 */
export function positionOf(doc: Document, lines: LineCounter, path: KeyPath, atKey = false): Position {
  const { node, key } = nodeAt(doc, path);
  const anchor = (atKey || isEmpty(node)) && key?.range ? key : node;
  const offset = anchor?.range?.[0] ?? 0;
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * The value at `path` as written: strings quoted, other scalars in their source spelling, `a map`,
 * `a list`, `nothing` for an empty value, `it missing` when absent. `original` holds the scalars
 * environment substitution changed (their source text is not their value).
 */
export function foundAt(doc: Document, source: string, path: KeyPath, original: ReadonlyMap<Node, string>): string {
  const { node, complete } = nodeAt(doc, path);
  if (!complete) return 'it missing';
  if (isMap(node)) return node.items.length ? 'a map' : 'an empty map';
  if (isSeq(node)) return node.items.length ? 'a list' : 'an empty list';
  if (!isScalar(node) || !node.range) return 'nothing';
  if (node.value === null && node.range[0] === node.range[1]) return 'nothing';
  if (typeof node.value === 'string') return clip(JSON.stringify(node.value));
  return original.has(node) ? String(node.value) : source.slice(node.range[0], node.range[1]);
}

/** The text a substituted scalar at `path` had before substitution, if it was substituted. */
export function originalAt(doc: Document, path: KeyPath, original: ReadonlyMap<Node, string>): string | undefined {
  const { node, complete } = nodeAt(doc, path);
  return complete && node ? original.get(node) : undefined;
}

/** The value of the map key that starts at `offset` (for duplicate-key errors). */
export function keyStartingAt(doc: Document, offset: number): string | undefined {
  let found: string | undefined;
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        found = String(pair.key.value);
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}
