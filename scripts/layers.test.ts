/**
 * The layer rules (.dependency-cruiser.mjs, .dependency-cruiser-folders.mjs) catch what they are
 * meant to: dependency-cruiser runs with the project's own config files over a tiny tree made in a
 * temporary folder, with one breach of each rule and a few imports the rules allow, and must report
 * exactly the breaches. `npm run lint` (in `npm test`) runs the same configs over the real tree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEPCRUISE = path.join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs');

/** Each fixture file and what it imports (a relative path or a package). */
const FILES: Record<string, string[]> = {
  'src/cli/main.ts': ['../gateway.ts', '../simulate/engine.ts'],
  'src/gateway.ts': ['./generation.ts', './stray/stray.ts'],
  'src/generation.ts': ['./listeners/http.ts', './policies/registry.ts', './policies/hsts/index.ts', './policies/cors/index.ts'],
  'src/listeners/http.ts': ['../http/pipeline.ts'],
  'src/listeners/udp.ts': [],
  'src/http/pipeline.ts': [
    '../routing/router.ts',
    '../transport/forward.ts',
    '../policies/filter.ts',
    '../policies/hsts/index.ts',
    '../simulate/engine.ts',
    '../listeners/udp.ts',
    'ws',
  ],
  'src/http/pipeline.test.ts': ['../cli/main.ts'],
  'src/http/respond.ts': [],
  'src/routing/router.ts': ['../upstream/upstream.ts', './matchers.ts'],
  'src/routing/matchers.ts': ['./router.ts'],
  'src/upstream/upstream.ts': ['./balancers/index.ts', '../health/active.ts'],
  'src/upstream/upstream.test.ts': ['../routing/router.ts'],
  'src/upstream/endpoint.ts': [],
  'src/upstream/balancers/index.ts': ['../endpoint.ts'],
  'src/health/active.ts': ['../transport/forward.ts'],
  'src/transport/forward.ts': ['../http/respond.ts', '../errors.ts', '../observability/events.ts'],
  'src/observability/events.ts': ['../config/types.ts'],
  'src/config/types.ts': ['../listeners/udp.ts', '../policies/filter.ts'],
  'src/policies/filter.ts': [],
  'src/policies/registry.ts': ['./hsts/index.ts', './cors/index.ts'],
  'src/policies/hsts/index.ts': ['../filter.ts', './config.ts', '../../util/units.ts', '../cors/index.ts', '../../errors.ts'],
  'src/policies/hsts/config.ts': [],
  'src/policies/cors/index.ts': ['../filter.ts'],
  'src/util/units.ts': ['../config/types.ts'],
  'src/errors.ts': ['./util/units.ts'],
  'src/simulate/engine.ts': ['../upstream/balancers/index.ts', '../upstream/upstream.ts'],
  'src/stray/stray.ts': ['../util/units.ts'],
};

/**
 * Folders in a cycle although no file is: listeners/http.ts -> http/, http/pipeline.ts ->
 * listeners/udp.ts. A test's import makes none: routing/ -> upstream/ and upstream.test.ts -> routing/.
 */
const FOLDER_FILES: Record<string, string[]> = {
  'src/listeners/http.ts': ['../http/pipeline.ts'],
  'src/listeners/udp.ts': [],
  'src/http/pipeline.ts': ['../listeners/udp.ts'],
  'src/routing/router.ts': ['../upstream/upstream.ts'],
  'src/upstream/upstream.ts': [],
  'src/upstream/upstream.test.ts': ['../routing/router.ts'],
};

/** Every breach in FILES, as `rule: from -> to` (a cycle: its modules); nothing else may be reported. */
const EXPECTED = [
  'balancers-self-contained: src/upstream/balancers/index.ts -> src/upstream/endpoint.ts',
  'layer-config: src/config/types.ts -> src/listeners/udp.ts',
  'layer-http: src/http/pipeline.ts -> src/listeners/udp.ts',
  'layer-http: src/http/pipeline.ts -> src/simulate/engine.ts',
  'layer-leaves: src/util/units.ts -> src/config/types.ts',
  'layer-transport: src/transport/forward.ts -> src/http/respond.ts',
  'layer-unknown: src/stray/stray.ts -> src/util/units.ts',
  'layer-unknown-target: src/gateway.ts -> src/stray/stray.ts',
  'leaves-errors: src/errors.ts -> src/util/units.ts',
  'leaves-util: src/util/units.ts -> src/config/types.ts',
  'no-circular: src/routing/matchers.ts, src/routing/router.ts',
  'policy-type-isolated: src/policies/hsts/index.ts -> src/errors.ts',
  'policy-type-isolated: src/policies/hsts/index.ts -> src/policies/cors/index.ts',
  'policy-types-via-registry: src/http/pipeline.ts -> src/policies/hsts/index.ts',
  'policy-types-via-registry: src/generation.ts -> src/policies/cors/index.ts',
  'policy-types-via-registry: src/generation.ts -> src/policies/hsts/index.ts',
  'simulate-layer: src/simulate/engine.ts -> src/upstream/upstream.ts',
  'src-not-to-dev-dep: src/http/pipeline.ts -> node_modules/ws/index.js',
  'transport-not-http: src/transport/forward.ts -> src/http/respond.ts',
];

function makeFixture(files: Record<string, string[]>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-layers-'));
  for (const [file, imports] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    const lines = imports.map((spec, i) => `import * as m${i} from '${spec}';\nexport const u${i} = m${i};`);
    writeFileSync(path.join(dir, file), `${lines.join('\n')}\nexport const here = ${JSON.stringify(file)};\n`);
  }
  mkdirSync(path.join(dir, 'node_modules/ws'), { recursive: true });
  writeFileSync(path.join(dir, 'node_modules/ws/package.json'), JSON.stringify({ name: 'ws', version: '8.0.0', main: 'index.js' }));
  writeFileSync(path.join(dir, 'node_modules/ws/index.js'), 'module.exports = {};\n');
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'fixture', type: 'module', devDependencies: { ws: '^8.0.0' } }));
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', allowImportingTsExtensions: true, noEmit: true }, include: ['src'] }),
  );
  return dir;
}

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
  cycle?: { name: string }[];
}

/** Runs dependency-cruiser with one of the project's configs in `cwd`; its violations. */
function cruise(cwd: string, config: string, args: string[]): Promise<Violation[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [DEPCRUISE, ...args, '--config', path.join(ROOT, config), '--output-type', 'json'], { cwd }, (err, stdout, stderr) => {
      try {
        resolve((JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary.violations);
      } catch {
        reject(new Error(`dependency-cruiser failed: ${err?.message ?? ''}\n${stderr}`));
      }
    });
  });
}

/** A violation as `rule: from -> to`, or for a cycle `rule: ` and the sorted modules (folders) in it. */
function describe(v: Violation): string {
  if (v.cycle === undefined) return `${v.rule.name}: ${v.from} -> ${v.to}`;
  return `${v.rule.name}: ${[...new Set([v.from, ...v.cycle.map((c) => c.name)])].sort().join(', ')}`;
}

test('the layer rules report every breach in a fixture, and only those', async () => {
  const dir = makeFixture(FILES);
  const folderDir = makeFixture(FOLDER_FILES);
  try {
    const [files, folders] = await Promise.all([cruise(dir, '.dependency-cruiser.mjs', ['src']), cruise(folderDir, '.dependency-cruiser-folders.mjs', ['src'])]);
    assert.deepEqual([...new Set(files.map(describe))].sort(), EXPECTED.toSorted());
    assert.deepEqual([...new Set(folders.map(describe))], ['no-circular-folders: src/http, src/listeners']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(folderDir, { recursive: true, force: true });
  }
});
