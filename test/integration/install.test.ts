/**
 * Installing Switchboard as a user does: `npm pack` (which builds dist/ through `prepack`), the
 * tarball installed with `npm install -g` into a temporary prefix, and the installed `switchboard`
 * run on Node 24; and the refusal, with a way out, on a Node that is too old.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { NODE, ROOT } from './helpers/paths.ts';

const run = promisify(execFile);
// Node 24 first on PATH: npm and the installed bin's `#!/usr/bin/env node` run on it.
const PATH24 = `${dirname(NODE)}${delimiter}${process.env.PATH}`;
const env24 = { ...process.env, PATH: PATH24 };

test('npm pack, npm install -g --prefix, then the installed switchboard runs --version and validate', { timeout: 300_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-install-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  const pack = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, env: env24, maxBuffer: 64 << 20 });
  const [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as [{ filename: string; files: { path: string }[] }];
  const files = packed.files.map((f) => f.path);
  for (const f of [
    'bin/switchboard.js',
    'dist/cli/main.js',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/process/worker-main.js',
    'dist/dashboard/index.html',
    'dist/dashboard/app.js',
    'dist/dashboard/app.css',
    'examples/demo.yaml',
    'deploy/switchboard.service',
    'LICENSE',
    'README.md',
    'package.json',
  ]) {
    assert.ok(files.includes(f), `the package has ${f}`);
  }
  for (const f of files) assert.doesNotMatch(f, /^(src|test|bench|scripts|node_modules)\/|\.test\.js$/, `the package leaves out ${f}`);

  const prefix = join(dir, 'prefix');
  const install = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(dir, packed.filename)], {
    cwd: dir,
    env: env24,
    maxBuffer: 64 << 20,
  });
  // No engine warnings on the supported Node, and no install script of ours to approve.
  assert.doesNotMatch(install.stderr, /EBADENGINE|install-scripts/, install.stderr);

  const bin = join(prefix, 'bin/switchboard');
  const installed = join(prefix, 'lib/node_modules/switchboard');
  assert.ok(!existsSync(join(installed, 'src')), 'the installed package runs dist/');
  const version = await run(bin, ['--version'], { cwd: dir, env: env24 });
  assert.equal(version.stdout.trim(), '0.1.0');
  const valid = await run(bin, ['validate', '-c', join(installed, 'examples/demo.yaml')], { cwd: dir, env: env24 });
  assert.match(valid.stdout, /demo\.yaml: valid \(/);
});

// The machine's own node, whatever it is (not the project's Node 24).
const systemPath = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((p) => !p.includes('node_modules'))
  .join(delimiter);
let systemNode: { path: string; version: string } | undefined;
try {
  const { stdout } = await run('node', ['-p', 'process.execPath + " " + process.versions.node'], { env: { ...process.env, PATH: systemPath } });
  const [path, version] = stdout.trim().split(' ');
  systemNode = { path: path!, version: version! };
} catch {
  systemNode = undefined;
}
const [major = 0, minor = 0] = (systemNode?.version ?? '0.0').split('.').map(Number);
const tooOld = systemNode !== undefined && (major < 22 || (major === 22 && minor < 22));

test('on a Node older than 22.22 the command refuses with the version it needs and how to get it', {
  skip: tooOld ? false : `the system node (${systemNode?.version ?? 'none'}) is not older than 22.22`,
}, async () => {
  const r = await run(systemNode!.path, [join(ROOT, 'bin/switchboard.js'), '--version']).then(
    () => assert.fail('exit 0 on an old Node'),
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`switchboard needs Node\\.js 22\\.22 or newer \\(24 LTS recommended\\); this is v${systemNode!.version.replaceAll('.', '\\.')}\\.`));
  assert.match(r.stderr, /Install Node\.js 24/);
  assert.match(r.stderr, /npx switchboard/);
});
