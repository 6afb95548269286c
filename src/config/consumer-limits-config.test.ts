/**
 * `consumers.NAME.limits`: per-consumer overrides of rate-limit, quota and concurrency-limit
 * policies, resolved into the directory (`limits(policy)`), and every wrong name or key reported at
 * file:line:column, in the config and in `consumers.file` alike.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from './load-text.ts';
import { redact } from '../admin/redact.ts';

const BASE = `listeners:
  web:
    address: "127.0.0.1:8080"
    protocol: http
policies:
  per-key: { type: rate-limit, key: consumer, limit: 10, window: 1s }
  monthly: { type: quota, limit: 100, period: month }
  inflight: { type: concurrency-limit, limit: 2 }
  cors: { type: cors, origins: ["https://a.example"] }
`;

function errors(text: string, file = 'sb.yaml'): string[] {
  const r = loadConfigText(text, file, {});
  return r.ok ? [] : r.errors.map((e) => e.message);
}

test('limits resolve per policy: durations in ms, unlimited kept; /api/config shows them; a policy nobody overrides has none', () => {
  const r = loadConfigText(
    `${BASE}consumers:
  alice:
    limits:
      per-key: { limit: 1000, window: 1m, burst: 50 }
      monthly: { limit: 5000000 }
      inflight: { limit: unlimited }
  bob: {}
`,
    'sb.yaml',
    {},
  );
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
  const d = r.config.consumers;
  assert.deepEqual(d.limits('per-key'), new Map([['alice', { limit: 1000, window: 60_000, burst: 50 }]]));
  assert.deepEqual(d.limits('monthly'), new Map([['alice', { limit: 5_000_000 }]]));
  assert.deepEqual(d.limits('inflight'), new Map([['alice', { limit: 'unlimited' }]]));
  assert.equal(d.limits('cors'), undefined);
  const shown = redact(r.config) as { consumers: { consumers: Record<string, { limits?: unknown }> } };
  assert.deepEqual(shown.consumers.consumers.alice?.limits, {
    'per-key': { limit: 1000, window: 60_000, burst: 50 },
    monthly: { limit: 5_000_000 },
    inflight: { limit: 'unlimited' },
  });
  assert.equal(shown.consumers.consumers.bob?.limits, undefined);
});

test('limits naming no counting policy, or with a key the type does not take: errors at file:line:column with a did-you-mean', () => {
  assert.deepEqual(
    errors(`${BASE}consumers:
  bob:
    limits:
      per-kye: { limit: 1 }
      cors: { limit: 1 }
      monthly: { limit: 5, window: 1m }
      inflight: { limit: unlimited, burst: 3 }
      per-key: { limit: unlimited, window: 1m }
      per-key2: { limit: 0 }
`),
    [
      'sb.yaml:13:7: consumers.bob.limits.per-kye: expected the name of a rate-limit, quota or concurrency-limit policy (one of: per-key, monthly, inflight), found "per-kye" (did you mean "per-key"?)',
      'sb.yaml:14:7: consumers.bob.limits.cors: expected the name of a rate-limit, quota or concurrency-limit policy (one of: per-key, monthly, inflight), found "cors", a cors policy (it takes no per-consumer limits)',
      'sb.yaml:15:28: consumers.bob.limits.monthly.window: expected a key a quota policy’s override takes (limit), found "window"',
      'sb.yaml:16:37: consumers.bob.limits.inflight.burst: expected a key a concurrency-limit policy’s override takes (limit), found "burst"',
      'sb.yaml:17:36: consumers.bob.limits.per-key.window: expected no window or burst beside limit: unlimited, found one',
      'sb.yaml:18:26: consumers.bob.limits.per-key2.limit: expected a number above 0, found 0',
    ],
  );
  assert.match(errors(`${BASE}consumers:\n  bob:\n    limits:\n      per-key: { limit: 3, window: 0 }\n`)[0] ?? '', /per-key\.window: expected a duration above 0/);
});

const dir = mkdtempSync(join(tmpdir(), 'consumer-limits-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('limits of consumers from consumers.file: resolved alike, problems named by the file’s line', () => {
  const main = `${BASE}consumers: { file: users.yaml }\n`;
  writeFileSync(join(dir, 'sb.yaml'), main);
  writeFileSync(join(dir, 'users.yaml'), 'carol:\n  limits:\n    per-key: { limit: 20 }\n');
  const r = loadConfigText(main, join(dir, 'sb.yaml'), {});
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
  assert.deepEqual(r.config.consumers.limits('per-key'), new Map([['carol', { limit: 20 }]]));
  writeFileSync(join(dir, 'users.yaml'), 'carol:\n  limits:\n    monthly: { limit: 20, burst: 2 }\n    nope: { limit: 1 }\n');
  assert.deepEqual(
    errors(main, join(dir, 'sb.yaml')).map((e) => e.replace(dir, '<dir>')),
    [
      '<dir>/sb.yaml:10:20: consumers.file: expected a key a quota policy’s override takes (limit), found users.yaml:3:34: carol.limits.monthly.burst: "burst"',
      '<dir>/sb.yaml:10:20: consumers.file: expected the name of a rate-limit, quota or concurrency-limit policy (one of: per-key, monthly, inflight), found users.yaml:4:11: carol.limits.nope: "nope"',
    ],
  );
});
