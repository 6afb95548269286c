/**
 * The forward proxy's answers to the destination guard's refusals (issue 15 §2), with the real
 * rules engine (forward/rules.ts) behind a real forward listener, and names resolved by a DNS
 * server the test controls (helpers/dns-server.ts: NXDOMAIN for every name): 403 with the JSON
 * error body and the refusal's code and reason, 502 for DESTINATION_UNRESOLVED, the rule on the
 * request's record (access log), the refusal event (metrics), and nothing resolved that a rule
 * decided by name alone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { startGateway, type Gateway } from '../../src/index.ts';
import type { AccessRecord } from '../../src/observability/access-log.ts';
import type { ForwardRefusalEvent } from '../../src/observability/events.ts';
import { type DnsServer, startDnsServer } from './helpers/dns-server.ts';
import { rawRequest } from './helpers/raw.ts';

describe('forward proxy: answers to the destination guard’s refusals', () => {
  const ended: AccessRecord[] = [];
  const refusals: ForwardRefusalEvent[] = [];
  const onEnd = (m: unknown): void => {
    ended.push(m as AccessRecord);
  };
  const onRefusal = (m: unknown): void => {
    refusals.push(m as ForwardRefusalEvent);
  };
  let dns: DnsServer;
  let gw: Gateway;
  let port: number;

  before(async () => {
    dns = await startDnsServer(() => undefined);
    gw = await startGateway({
      config: {
        listeners: {
          proxy: {
            address: '127.0.0.1:0',
            protocol: 'forward',
            forward: { rules: [{ name: 'ads', action: 'deny', domains: ['ads.example'] }], resolver: { servers: [dns.address], timeout: '2s' } },
          },
        },
      },
      accessLog: 'off',
      logLevel: 'silent',
    });
    port = gw.address('proxy').port;
    diagnostics.subscribe('switchboard:request:end', onEnd);
    diagnostics.subscribe('switchboard:forward:refusal', onRefusal);
  });
  after(async () => {
    diagnostics.unsubscribe('switchboard:request:end', onEnd);
    diagnostics.unsubscribe('switchboard:forward:refusal', onRefusal);
    await gw?.stop({ drainTimeout: 1000 });
    await dns?.close();
  });

  async function ask(target: string): Promise<{ status: number; code: string; message: string; rule: string | null | undefined }> {
    const r = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const body = JSON.parse(r.text.slice(r.text.indexOf('{'), r.text.lastIndexOf('}') + 1)) as { error: { code: string; message: string } };
    return { status: r.status, code: body.error.code, message: body.error.message, rule: ended.at(-1)?.proxied?.rule };
  }

  test('403 with the refusal’s code and reason, the rule recorded; 502 for a name that did not resolve', async () => {
    assert.deepEqual(await ask('http://ads.example/banner'), { status: 403, code: 'DOMAIN_BLOCKED', message: 'ads.example port 80: denied by ads', rule: 'ads' });
    assert.deepEqual(await ask('http://example.com:22/'), {
      status: 403,
      code: 'PORT_FORBIDDEN',
      message: 'port 22 is not among the safe ports',
      rule: 'default:port',
    });
    assert.deepEqual(await ask('http://10.0.0.1/'), { status: 403, code: 'DESTINATION_FORBIDDEN', message: '10.0.0.1: a private address', rule: 'default:private' });
    assert.deepEqual(await ask('http://nowhere.example/'), {
      status: 502,
      code: 'DESTINATION_UNRESOLVED',
      message: 'nowhere.example did not resolve (ENOTFOUND)',
      rule: 'resolver',
    });
    assert.deepEqual(refusals, [
      { listener: 'proxy', code: 'DOMAIN_BLOCKED', rule: 'ads' },
      { listener: 'proxy', code: 'PORT_FORBIDDEN', rule: 'default:port' },
      { listener: 'proxy', code: 'DESTINATION_FORBIDDEN', rule: 'default:private' },
      { listener: 'proxy', code: 'DESTINATION_UNRESOLVED', rule: 'resolver' },
    ]);
    // Decided by name or port alone: never resolved. Only the name no rule decided was looked up.
    assert.equal(dns.count('ads.example'), 0);
    assert.equal(dns.count('example.com'), 0);
    assert.ok(dns.count('nowhere.example', 'A') >= 1);
  });
});
