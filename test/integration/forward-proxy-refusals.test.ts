/**
 * The forward proxy's answers to a Refusal of the destination guard (issue 15 §2), whatever the
 * rules engine: the listener's real pipeline and forward step on 127.0.0.1:0, with a guard that
 * refuses as the rules engine (forward/rules.ts) would, so these answers are tested before it
 * lands. 403 with the JSON error body and the refusal's code and reason, 502 for
 * DESTINATION_UNRESOLVED, the rule on the session (access log), the refusal event (metrics), and
 * nothing connected.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import type { ListenerConfig } from '../../src/config/types.ts';
import { resolveForward } from '../../src/config/resolve-forward.ts';
import type { Decision, DestinationGuard, ForwardAsk } from '../../src/forward/destination-guard.ts';
import { createForwardRoute } from '../../src/forward/forward-route.ts';
import { forwardStep } from '../../src/forward/http-forward.ts';
import type { AccessRecord } from '../../src/observability/access-log.ts';
import { listenerGeneration, serve } from '../helpers/pipeline.ts';
import { rawRequest } from './helpers/raw.ts';

/** Refuses by host name, as a rule would; records every ask; never connects. */
function refusingGuard(asked: ForwardAsk[]): DestinationGuard {
  return {
    check(ask: ForwardAsk): Promise<Decision> {
      asked.push(ask);
      if (ask.host === 'ads.example') return Promise.resolve({ allowed: false, rule: 'ads', code: 'DOMAIN_BLOCKED', reason: 'ads.example is blocked by rule ads' });
      if (ask.port === 22) return Promise.resolve({ allowed: false, rule: 'default:port', code: 'PORT_FORBIDDEN', reason: 'port 22 is not a safe port' });
      if (ask.host === 'nowhere.example')
        return Promise.resolve({ allowed: false, rule: 'resolver', code: 'DESTINATION_UNRESOLVED', reason: 'nowhere.example did not resolve' });
      return Promise.resolve({ allowed: false, rule: 'default:private', code: 'DESTINATION_FORBIDDEN', reason: '10.0.0.1 is a private address' });
    },
    connect(): never {
      throw new Error('a refused destination is never connected to');
    },
  };
}

describe('forward proxy: answers to the destination guard’s refusals', () => {
  const asked: ForwardAsk[] = [];
  const ended: AccessRecord[] = [];
  const refusals: unknown[] = [];
  const onRefusal = (m: unknown): void => {
    refusals.push(m);
  };
  let server: Awaited<ReturnType<typeof serve>>;
  let port: number;
  let closeRoute: () => Promise<void>;

  before(async () => {
    const listener = { name: 'proxy', protocol: 'forward', forward: resolveForward({}, [], '.', []) } as ListenerConfig;
    const route = { ...createForwardRoute(listener, [], () => []), guard: refusingGuard(asked) };
    closeRoute = route.close;
    const gen = listenerGeneration([], {
      name: 'proxy',
      forwardRoute: route,
      settings: {
        scheme: 'http',
        clientCertHeaders: undefined,
        underscores: 'drop',
        sendTimeout: 0,
        policyTimeout: 0,
        maxHeaderSize: 16384,
        draining: false,
        forwardProxy: true,
      },
      onRequestEnd: (s) => ended.push(s),
    });
    diagnostics.subscribe('switchboard:forward:refusal', onRefusal);
    server = await serve(gen, forwardStep);
    port = Number(new URL(server.base).port);
  });
  after(async () => {
    diagnostics.unsubscribe('switchboard:forward:refusal', onRefusal);
    await server?.close();
    await closeRoute?.();
  });

  async function ask(target: string): Promise<{ status: number; code: string; message: string; rule: string | undefined }> {
    const r = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const body = JSON.parse(r.text.slice(r.text.indexOf('{'), r.text.lastIndexOf('}') + 1)) as { error: { code: string; message: string } };
    return { status: r.status, code: body.error.code, message: body.error.message, rule: ended.at(-1)?.proxied?.rule };
  }

  test('403 with the refusal’s code and reason, the rule recorded; 502 for a name that did not resolve', async () => {
    assert.deepEqual(await ask('http://ads.example/banner'), { status: 403, code: 'DOMAIN_BLOCKED', message: 'ads.example is blocked by rule ads', rule: 'ads' });
    assert.deepEqual(await ask('http://example.com:22/'), { status: 403, code: 'PORT_FORBIDDEN', message: 'port 22 is not a safe port', rule: 'default:port' });
    assert.deepEqual(await ask('http://10.0.0.1/'), { status: 403, code: 'DESTINATION_FORBIDDEN', message: '10.0.0.1 is a private address', rule: 'default:private' });
    const unresolved = await ask('http://nowhere.example/');
    assert.equal(unresolved.status, 502);
    assert.equal(unresolved.code, 'DESTINATION_UNRESOLVED');
    assert.deepEqual(
      asked.map((a) => [a.method, a.scheme, a.host, a.port, a.client]),
      [
        ['GET', 'http', 'ads.example', 80, '127.0.0.1'],
        ['GET', 'http', 'example.com', 22, '127.0.0.1'],
        ['GET', 'http', '10.0.0.1', 80, '127.0.0.1'],
        ['GET', 'http', 'nowhere.example', 80, '127.0.0.1'],
      ],
    );
    assert.deepEqual(refusals.at(0), { listener: 'proxy', code: 'DOMAIN_BLOCKED', rule: 'ads' });
    assert.equal(refusals.length, 4);
  });
});
