/**
 * Real clients configured to use the forward proxy (issue 15 §6): git over `http.proxy` cloning a
 * repository served by the "dumb" HTTP protocol, and Debian's Chromium with `--proxy-server`
 * loading an https page through a CONNECT tunnel, and through a socks5 listener. Origins on
 * 127.0.0.1, allowed by rule. The origin sees the proxy's Via; the proxy reports each tunnel
 * (the access-log record, the SOCKS connection event) when it closes.
 */
import { after, before, describe, test } from 'node:test';
import diagnostics from 'node:diagnostics_channel';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { startGateway, type Gateway } from '../../src/index.ts';
import type { AccessRecord } from '../../src/observability/access-log.ts';
import type { SocksConnectionEvent } from '../../src/observability/events.ts';
import { launchChromium, skipWithoutChromium } from './helpers/browser.ts';
import { createPki, type TestPki } from './helpers/certs.ts';
import { guard } from './helpers/guard.ts';

const run = promisify(execFile);

/** git with no user or system config, no proxy from the environment, and a fixed identity. */
function git(dir: string, home: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.invalid',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.invalid',
  };
  return run('git', args, { cwd: dir, env, timeout: 20_000 });
}

/** Resolves with the first message on `channel` that `matches`, from now on (unsubscribes then); fails the test after 15 s. */
function nextEvent<T>(channel: string, matches: (m: T) => boolean, what: string): Promise<T> {
  let onMessage: (m: unknown) => void = () => undefined;
  const found = new Promise<T>((resolve) => {
    onMessage = (m: unknown): void => {
      if (matches(m as T)) resolve(m as T);
    };
    diagnostics.subscribe(channel, onMessage);
  });
  return guard(found, what, 15_000).finally(() => diagnostics.unsubscribe(channel, onMessage));
}

let dir: string;
let gw: Gateway;
let proxyPort: number;
let socksPort: number;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-forward-clients-'));
  const forward = { rules: [{ name: 'loopback-origins', action: 'allow', destinations: ['127.0.0.0/8'] }] };
  gw = await startGateway({
    config: {
      listeners: {
        proxy: { address: '127.0.0.1:0', protocol: 'forward', forward },
        socks: { address: '127.0.0.1:0', protocol: 'socks5', forward },
      },
    },
    accessLog: 'off',
    logLevel: 'silent',
  });
  proxyPort = gw.address('proxy').port;
  socksPort = gw.address('socks').port;
});

after(async () => {
  await gw?.stop({ drainTimeout: 1000 });
  await rm(dir, { recursive: true, force: true });
});

describe('git over http.proxy', () => {
  let origin: http.Server;
  let originPort: number;
  const seen: Array<{ url: string; via: string | undefined }> = [];

  before(async () => {
    // A bare repository with one commit, readable by the dumb HTTP protocol (info/refs, objects/).
    const work = join(dir, 'work');
    await run('mkdir', ['-p', work]);
    await git(dir, dir, ['init', '-q', '--bare', 'repo.git']);
    await git(work, dir, ['init', '-q', '-b', 'main']);
    await git(work, dir, ['commit', '-q', '--allow-empty', '-m', 'through the proxy']);
    await git(work, dir, ['push', '-q', join(dir, 'repo.git'), 'main']);
    await git(join(dir, 'repo.git'), dir, ['symbolic-ref', 'HEAD', 'refs/heads/main']);
    await git(join(dir, 'repo.git'), dir, ['update-server-info']);
    const root = join(dir, 'repo.git');
    origin = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', via: req.headers.via });
      const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      if (!path.startsWith('/repo.git/')) return void res.writeHead(404).end();
      const file = join(root, path.slice('/repo.git/'.length));
      stat(file).then(
        (s) => {
          if (!s.isFile()) return void res.writeHead(404).end();
          res.writeHead(200, { 'content-length': s.size, 'content-type': 'application/octet-stream' });
          createReadStream(file).pipe(res);
        },
        () => void res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originPort = (origin.address() as AddressInfo).port;
  });
  after(async () => {
    origin?.closeAllConnections();
    await new Promise((resolve) => origin?.close(resolve));
  });

  test('git clone through `-c http.proxy=`: the clone has the commit; every request reached the origin through the proxy', async () => {
    await git(dir, dir, ['-c', `http.proxy=http://127.0.0.1:${proxyPort}`, 'clone', '-q', `http://127.0.0.1:${originPort}/repo.git`, 'clone']);
    const { stdout: subject } = await git(join(dir, 'clone'), dir, ['log', '-1', '--format=%s']);
    assert.equal(subject.trim(), 'through the proxy');
    const [{ stdout: cloned }, { stdout: served }] = await Promise.all([
      git(join(dir, 'clone'), dir, ['rev-parse', 'HEAD']),
      git(join(dir, 'repo.git'), dir, ['rev-parse', 'main']),
    ]);
    assert.equal(cloned, served);
    assert.ok(
      seen.some((r) => r.url.startsWith('/repo.git/info/refs')),
      JSON.stringify(seen),
    );
    assert.ok(
      seen.every((r) => r.via === '1.1 switchboard'),
      `every request came through the proxy: ${JSON.stringify(seen)}`,
    );
  });
});

describe('Chromium with --proxy-server', () => {
  let pki: TestPki;
  let origin: https.Server;
  let page: string;

  before(async () => {
    pki = await createPki();
    const cert = await pki.issue({ names: ['127.0.0.1'] });
    origin = https.createServer({ cert: cert.cert, key: cert.key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>tunnelled</title><p id="who">the https origin</p>');
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    page = `https://127.0.0.1:${(origin.address() as AddressInfo).port}/`;
  });
  after(async () => {
    origin?.closeAllConnections();
    await new Promise((resolve) => origin?.close(resolve));
    await pki?.cleanup();
  });

  for (const way of ['http', 'socks5'] as const) {
    test(`an https page through ${way === 'http' ? 'a CONNECT tunnel of the forward listener' : 'the socks5 listener'}`, async (t) => {
      const proxy = way === 'http' ? `http://127.0.0.1:${proxyPort}` : `socks5://127.0.0.1:${socksPort}`;
      // Chromium sends loopback destinations direct unless `<-loopback>` removes that implicit bypass.
      const chrome = await launchChromium({ args: [`--proxy-server=${proxy}`, '--proxy-bypass-list=<-loopback>'], ignoreHTTPSErrors: true });
      if (skipWithoutChromium(t, chrome)) return;
      // A tunnel is reported when it closes: closing the browser ends its tunnels.
      const destination = new URL(page).host;
      const tunnelled =
        way === 'http'
          ? nextEvent<AccessRecord>(
              'switchboard:request:end',
              (r) => r.proxied?.kind === 'connect' && r.proxied.destination === destination && r.status === 200 && r.bytesOut > 0,
              'a CONNECT tunnel to the origin, closed',
            )
          : nextEvent<SocksConnectionEvent>(
              'switchboard:socks:connection',
              (e) => e.listener === 'socks' && e.outcome === 'connect' && e.bytesOut > 0,
              'a SOCKS tunnel, closed',
            );
      try {
        const tab = await chrome.context.newPage();
        const response = await tab.goto(page);
        assert.equal(response?.status(), 200);
        assert.equal(await tab.title(), 'tunnelled');
        assert.equal(await tab.textContent('#who'), 'the https origin');
      } finally {
        await chrome.close();
      }
      await tunnelled;
    });
  }
});
