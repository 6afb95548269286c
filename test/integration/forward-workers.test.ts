/**
 * A forward listener under `workers: 2` (`switchboard start`): the workers share its socket, and
 * each answers absolute-form requests (curl -x) and CONNECT tunnels (curl -p) with the same rules.
 * The real supervisor and workers in a child process group that ends with the test.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curl, errorAnswer } from './helpers/forward.ts';
import { Instance } from './helpers/instance.ts';
import { startOrigin } from './helpers/origin.ts';

const dir = await mkdtemp(join(tmpdir(), 'switchboard-forward-workers-'));
const origin = await startOrigin('o1');
let inst: Instance | undefined;
after(async () => {
  inst?.kill();
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

test('two workers serve one forward listener: absolute-form and CONNECT through curl, all answered; the rules hold', async () => {
  ({ inst } = await Instance.startWith(
    dir,
    'forward',
    `workers: 2
listeners:
  proxy:
    address: "127.0.0.1:0"
    protocol: forward
    forward:
      rules:
        - { action: allow, destinations: ["127.0.0.1/32"], ports: [${origin.port}] }
`,
  ));
  const proxy = inst.url('proxy');
  const runs = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      Promise.all([curl(['-x', proxy, `http://127.0.0.1:${origin.port}/get${i}`]), curl(['-p', '-x', proxy, `http://127.0.0.1:${origin.port}/tunnel${i}`])]),
    ),
  );
  runs.forEach(([get, tunnel], i) => {
    assert.equal(get.exit, 0, get.stderr);
    const forwarded = JSON.parse(get.stdout) as { url: string; headers: Record<string, string> };
    assert.equal(forwarded.url, `/get${i}`);
    assert.equal(forwarded.headers.via, '1.1 switchboard');
    assert.equal(tunnel.exit, 0, tunnel.stderr);
    const tunnelled = JSON.parse(tunnel.stdout) as { url: string; headers: Record<string, string> };
    assert.equal(tunnelled.url, `/tunnel${i}`);
    assert.equal(tunnelled.headers.via, undefined, 'a tunnel carries the client’s bytes as they are');
  });
  assert.equal(origin.seen.length, 16);
  // Whichever worker takes it, a destination no rule allows is refused by the defaults.
  for (let i = 0; i < 4; i++) {
    const refused = await curl(['-i', '-x', proxy, 'http://127.0.0.2:8080/']);
    assert.deepEqual(errorAnswer(refused.stdout), { status: 403, code: 'DESTINATION_FORBIDDEN' });
  }
});
