/**
 * What a worker process loads before it serves (issue 11: RSS per idle worker): not Node's bundled
 * undici (node:http is required, not imported: util/node-http.ts), and not the libraries only some
 * configs use (util/lazy-module.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The builtin modules a fresh process has loaded after importing `module` (a path from the repository's root). */
function loadedAfter(module: string): string[] {
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `await import(${JSON.stringify(`./${module}`)}); console.log(JSON.stringify(process.moduleLoadList));`],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  return JSON.parse(out) as string[];
}

test("a worker's modules leave Node's bundled undici unloaded (node:http is required, not imported, everywhere)", () => {
  const loaded = loadedAfter('src/process/worker.ts');
  assert.ok(loaded.includes('NativeModule http'), 'the worker loads node:http');
  assert.ok(!loaded.includes('NativeModule internal/deps/undici/undici'), 'node:http was imported as an ES module somewhere: its lazy WebSocket getter loaded undici');
});

test('the check can fail: an ES import of node:http loads it', () => {
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', "await import('node:http'); console.log(process.moduleLoadList.includes('NativeModule internal/deps/undici/undici'))"],
    { encoding: 'utf8' },
  );
  assert.equal(out.trim(), 'true');
});

/** The packages (under node_modules) a fresh process resolves while importing `module`. */
function packagesAfter(module: string): string[] {
  const code = `
    const { registerHooks } = await import('node:module');
    const seen = new Set();
    registerHooks({ resolve(s, c, next) { const r = next(s, c); const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(r.url); if (m) seen.add(m[1]); return r; } });
    await import(${JSON.stringify(`./${module}`)});
    console.log(JSON.stringify([...seen]));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' })) as string[];
}

test('a worker loads jose, bcryptjs and mime-types only when a policy or a static route uses them', () => {
  const packages = packagesAfter('src/process/worker.ts');
  assert.ok(packages.includes('zod') && packages.includes('undici'), `the hook sees packages: ${packages.join(', ')}`);
  for (const lazy of ['jose', 'bcryptjs', 'mime-types', 'mime-db']) assert.ok(!packages.includes(lazy), `${lazy} is loaded at start`);
});
