/** Every config under examples/ validates with `switchboard validate` as it stands, with no environment set. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/run-cli.ts';
import { ROOT } from './helpers/paths.ts';

const EXAMPLES = join(ROOT, 'examples');
const files = (await readdir(EXAMPLES)).filter((f) => /\.ya?ml$/.test(f)).sort();

test('examples/ holds the demo, the API gateway and the TCP balancing configs', () => {
  for (const f of ['demo.yaml', 'api-gateway.yaml', 'tcp-balancing.yaml']) assert.ok(files.includes(f), `examples/${f}`);
});

// The variables the examples read, unset: each falls back to its default, as for a first try.
const UNSET = [
  'DEMO_PORT',
  'DEMO_ADMIN_PORT',
  'DEMO_ORIGIN_1',
  'DEMO_ORIGIN_2',
  'DEMO_ORIGIN_3',
  'PORT',
  'USERS_1',
  'USERS_2',
  'ORDERS_1',
  'PG_1',
  'PG_2',
  'REDIS_1',
  'REDIS_2',
  'IDP_ISSUER',
];

for (const f of files) {
  test(`switchboard validate -c examples/${f}: valid`, async () => {
    const env = Object.fromEntries(UNSET.map((k) => [k, '']));
    const r = await runCli(['validate', '-c', join('examples', f)], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`examples/${f.replace('.', '\\.')}: valid \\(`));
  });
}
