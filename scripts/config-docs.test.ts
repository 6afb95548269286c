import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DOCS_PATH, EXAMPLE_CONFIG, renderConfigDocs } from './config-docs.ts';
import { loadConfigText } from '../src/config/load-text.ts';
import { configSchema } from '../src/config/schema.ts';

test('docs/config.md is up to date', () => {
  let committed = '';
  try {
    committed = readFileSync(DOCS_PATH, 'utf8');
  } catch {
    // reported by the comparison below
  }
  assert.ok(committed === renderConfigDocs(), 'docs/config.md is stale: run `node scripts/config-docs.ts`');
});

test('the example config in the docs is valid', () => {
  const result = loadConfigText(EXAMPLE_CONFIG, 'example.yaml', {});
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.message).join('\n'));
  assert.equal(result.config.upstreams.get('web')?.endpoints[0].url, 'http://127.0.0.1:3000');
  assert.equal(result.config.routes.length, 2);
});

test('every key path has a description', () => {
  const rows = renderConfigDocs()
    .split('\n')
    .filter((line) => line.startsWith('| `'));
  assert.ok(rows.length > 30);
  for (const row of rows) assert.doesNotMatch(row, /\|\s*\|$/, `no description: ${row}`);
});

test('the introduction names every top-level key of the schema', () => {
  const intro = renderConfigDocs().split('\n\n').slice(0, 4).join('\n');
  for (const key of Object.keys(configSchema().shape)) assert.match(intro, new RegExp(`\`${key}\``), `the introduction of docs/config.md names \`${key}\``);
});
