/**
 * The files for running Switchboard as a service: the systemd unit (systemd-analyze verify and its
 * offline security review), the Dockerfile (hadolint when installed; its structure always, and that
 * .dockerignore lets in every file it copies), the LICENSE. The image itself is not built here: that
 * needs a Docker daemon and the node:24-slim base image from a registry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers/paths.ts';

const run = promisify(execFile);

/** Where a command is, or undefined. */
async function which(cmd: string): Promise<string | undefined> {
  try {
    return (await run('sh', ['-c', `command -v ${cmd}`])).stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Runs a command to completion, whatever its exit code. */
async function exec(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const UNIT = join(ROOT, 'deploy/switchboard.service');

/**
 * The unit with its install path (/usr/local/bin/switchboard, which verify requires to exist) pointed
 * at this checkout's bin/switchboard.js; nothing else changed.
 */
async function unitHere(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'switchboard.service');
  await writeFile(file, (await readFile(UNIT, 'utf8')).replaceAll('/usr/local/bin/switchboard', join(ROOT, 'bin/switchboard.js')));
  return file;
}

const systemdAnalyze = await which('systemd-analyze');

test('deploy/switchboard.service: systemd-analyze verify finds nothing to say', {
  skip: systemdAnalyze ? false : 'systemd-analyze is not installed (Debian package systemd; .ci/run installs it)',
}, async (t) => {
  const r = await exec('systemd-analyze', ['verify', await unitHere(t)]);
  // verify exits 0 even for unknown keys or bad values: it warns on stderr. Nothing on stderr is the bar.
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), '');
});

test('deploy/switchboard.service: the offline security review rates it OK (exposure ≤ 2)', {
  skip: systemdAnalyze ? false : 'systemd-analyze is not installed',
}, async (t) => {
  const r = await exec('systemd-analyze', ['security', '--offline=true', '--no-pager', await unitHere(t)]);
  const m = /Overall exposure level for switchboard\.service: (\d+\.\d+)/.exec(r.stdout);
  assert.ok(m, r.stdout + r.stderr);
  assert.ok(Number(m[1]) <= 2, `exposure ${m[1]}`);
});

test('deploy/switchboard.service: reload by SIGHUP, stop by SIGTERM with time for the drain, hardened', async () => {
  const unit = await readFile(UNIT, 'utf8');
  const keys = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string): string | undefined => keys.get(k)?.at(-1);
  assert.match(one('ExecStart') ?? '', /switchboard start -c \/etc\/switchboard\/switchboard\.yaml/);
  assert.match(one('ExecReload') ?? '', /kill -HUP \$MAINPID/);
  assert.equal(one('KillSignal'), 'SIGTERM');
  // drainTimeout defaults to 30 s: systemd must wait longer before SIGKILL.
  assert.ok(Number(/^(\d+)s$/.exec(one('TimeoutStopSec') ?? '')?.[1]) > 30, `TimeoutStopSec=${one('TimeoutStopSec')}`);
  assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.ok(one('DynamicUser') === 'yes' || (one('User') ?? 'root') !== 'root', 'an unprivileged user');
  assert.ok(Number(one('LimitNOFILE')) >= 65536, `LimitNOFILE=${one('LimitNOFILE')}`);
  assert.equal(one('RestartPreventExitStatus'), '2', 'an invalid config (exit 2) is not restarted in a loop');
});

const hadolint = await which('hadolint');

test('Dockerfile: hadolint passes', {
  skip: hadolint ? false : 'hadolint is not installed: Debian does not package it (the structure test below still runs)',
}, async () => {
  const r = await exec('hadolint', ['Dockerfile']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test('Dockerfile: multi-stage, production dependencies only at run time, a non-root user, validate as a build check, a health check on /healthz', async () => {
  const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  // Instructions, continuation lines joined, comments dropped.
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = lines.filter((l) => /^FROM /i.test(l));
  assert.ok(stages.length >= 2, 'a build stage and a runtime stage');
  for (const s of stages) assert.match(s, /^FROM node:24(-slim)?\b/, 'Node 24 base images');
  const runtime = lines.slice(lines.lastIndexOf(stages.at(-1)!));
  assert.ok(
    runtime.some((l) => /^RUN .*npm ci .*--omit=dev/.test(l)),
    'the runtime stage installs production dependencies only',
  );
  assert.ok(!runtime.some((l) => /^COPY (?!--from)[^\n]*\bsrc\b/.test(l)), 'no sources in the runtime stage');
  assert.ok(
    runtime.some((l) => /^COPY --from=build .*dist/.test(l)),
    'the compiled code comes from the build stage',
  );
  assert.ok(
    runtime.some((l) => /^RUN .*switchboard\.js validate -c examples\/demo\.yaml/.test(l)),
    'validate as a build check',
  );
  const user = runtime.filter((l) => /^USER /.test(l)).at(-1);
  assert.ok(user && !/^USER (root|0)(:|$)/.test(user), `a non-root user (${user})`);
  assert.match(runtime.find((l) => /^HEALTHCHECK /.test(l)) ?? '', /127\.0\.0\.1:9901\/healthz/);
  assert.match(runtime.find((l) => /^ENTRYPOINT /.test(l)) ?? '', /^ENTRYPOINT \[/, 'exec form: node is PID 1 and gets SIGTERM');
});

test('.dockerignore excludes everything but the files the Dockerfile copies from the context', async () => {
  const dockerfile = (await readFile(join(ROOT, 'Dockerfile'), 'utf8')).split('\n');
  const ignore = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim());
  assert.ok(ignore.includes('*'), 'everything is excluded unless listed');
  const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
  const sources = dockerfile
    .filter((l) => /^COPY (?!--from)/.test(l))
    .flatMap((l) =>
      l
        .replace(/^COPY /, '')
        .split(/\s+/)
        .slice(0, -1),
    );
  assert.ok(sources.length > 0);
  for (const s of sources) assert.ok(allowed.includes(s.replace(/\/$/, '')), `.dockerignore lets in ${s}`);
});

test('LICENSE: MIT, as package.json says', async () => {
  const license = await readFile(join(ROOT, 'LICENSE'), 'utf8');
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { license: string; files: string[] };
  assert.equal(pkg.license, 'MIT');
  assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 Switchboard contributors\n/);
  assert.match(license, /THE SOFTWARE IS PROVIDED "AS IS"/);
});
