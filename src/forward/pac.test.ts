import assert from 'node:assert/strict';
import { test } from 'node:test';
import vm from 'node:vm';
import type { ForwardConfig, ForwardRuleConfig } from '../config/types.ts';
import { jsString, pacFile, servePac } from './pac.ts';

/** The standard PAC helpers the file uses, as browsers define them (isInNet on IP literals only: the file must never make a browser resolve a name). */
const HELPERS = {
  isPlainHostName: (host: string) => !host.includes('.'),
  dnsDomainIs: (host: string, domain: string) => host.length >= domain.length && host.endsWith(domain),
  isInNet: (host: string, pattern: string, mask: string) => {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(host)) throw new Error(`isInNet would resolve ${host}`);
    const n = (ip: string) => ip.split('.').reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0);
    return (n(host) & n(mask)) >>> 0 === (n(pattern) & n(mask)) >>> 0;
  },
};

/** Evaluates a PAC file in a fresh context; returns its FindProxyForURL and what the context holds after. */
function load(source: string): { find: (url: string) => string; context: vm.Context } {
  const context = vm.createContext({ ...HELPERS });
  vm.runInContext(source, context);
  const find = context.FindProxyForURL as (url: string, host: string) => string;
  return { find: (url) => find(url, new URL(url).hostname), context };
}

function config(pac: ForwardConfig['pac'], rules: Partial<ForwardRuleConfig>[] = []): ForwardConfig {
  return {
    rules: rules.map((r, i) => ({
      name: `rules[${i}]`,
      action: 'deny',
      clients: undefined,
      consumers: undefined,
      groups: undefined,
      domains: undefined,
      destinations: undefined,
      ports: undefined,
      methods: undefined,
      schemes: undefined,
      time: undefined,
      ...r,
    })),
    safePorts: [],
    connectPorts: [],
    connectToHttp: false,
    anonymity: 'anonymous',
    via: 'switchboard',
    resolverServers: [],
    resolverTimeout: 5000,
    resolverMaxTtl: 30000,
    connectTimeout: 10000,
    tunnelIdleTimeout: 300000,
    parents: [],
    pac,
    allowUnauthenticated: false,
  };
}

test('the PAC file sends plain names, loopback, private literals and pac.direct names direct, the rest to the proxy', () => {
  const { find } = load(pacFile(config({ proxy: undefined, direct: ['intranet.example', '*.corp.example'] }, [{ domains: ['ads.example'] }]), 'proxy.example:3128'));
  const cases: Array<[string, string]> = [
    ['http://intranet/', 'DIRECT'],
    ['http://localhost:8080/', 'DIRECT'],
    ['http://app.localhost/', 'DIRECT'],
    ['http://127.0.0.1/', 'DIRECT'],
    ['http://127.9.8.7:3000/', 'DIRECT'],
    ['http://[::1]:8080/', 'DIRECT'],
    ['http://10.1.2.3/', 'DIRECT'],
    ['http://192.168.0.10/', 'DIRECT'],
    ['http://172.20.0.1/', 'DIRECT'],
    ['http://169.254.169.254/latest/meta-data', 'DIRECT'],
    ['https://intranet.example/', 'DIRECT'],
    ['https://wiki.corp.example/', 'DIRECT'],
    ['https://corp.example/', 'PROXY proxy.example:3128'],
    ['https://notintranet.example/', 'PROXY proxy.example:3128'],
    ['https://www.example.com/', 'PROXY proxy.example:3128'],
    ['http://ads.example/', 'PROXY proxy.example:3128'],
    ['http://172.32.0.1/', 'PROXY proxy.example:3128'],
    ['http://8.8.8.8/', 'PROXY proxy.example:3128'],
    ['http://[2001:db8::1]/', 'PROXY proxy.example:3128'],
  ];
  for (const [url, expected] of cases) assert.equal(find(url), expected, url);
});

test('a rule allowing destinations by address sends every IP literal to the proxy', () => {
  const { find } = load(pacFile(config({ proxy: undefined, direct: [] }, [{ action: 'allow', destinations: ['10.1.0.0/16'] }]), '[::1]:3128'));
  assert.equal(find('http://10.1.2.3/'), 'PROXY [::1]:3128');
  assert.equal(find('http://127.0.0.1/'), 'DIRECT');
});

test('nothing embedded from the config or the Host header can break out of its string literal', () => {
  const evil = [
    'x"; globalThis.pwned = true; "',
    "x'; globalThis.pwned = true; '",
    'x\\"; globalThis.pwned = true; //',
    'x\u2028globalThis.pwned = true;//',
    '</script><script>globalThis.pwned = true</script>',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the attack is this very text
    'x`${globalThis.pwned = true}`',
  ];
  for (const bad of evil) {
    const source = pacFile(config({ proxy: undefined, direct: [bad, `*.${bad}`] }), `${bad}:3128`);
    const { find, context } = load(source);
    assert.equal(context.pwned, undefined, bad);
    assert.equal(find('https://www.example.com/'), `PROXY ${bad}:3128`, bad);
    assert.equal(find('https://nothing.example/'), `PROXY ${bad}:3128`);
    assert.doesNotMatch(source, /<\/script>|\u2028/, bad);
  }
  assert.equal(jsString('a"b\\c</d>\u2028'), '"a\\"b\\\\c\\u003c/d\\u003e\\u2028"');
});

test('servePac: GET and HEAD of /proxy.pac and /wpad.dat, 405 for other methods, undefined elsewhere or when off', () => {
  const c = config({ proxy: undefined, direct: [] });
  const get = servePac(c, 'GET', '/proxy.pac', 'gw.example:3128', '127.0.0.1:3128');
  assert.equal(get?.status, 200);
  assert.equal(get?.headers['content-type'], 'application/x-ns-proxy-autoconfig');
  assert.equal(get?.headers['content-length'], String(Buffer.byteLength(get?.body ?? '')));
  assert.equal(load(get?.body ?? '').find('https://a.example/'), 'PROXY gw.example:3128');
  const head = servePac(c, 'HEAD', '/wpad.dat?x=1', 'gw.example:3128', '127.0.0.1:3128');
  assert.equal(head?.status, 200);
  assert.equal(head?.body, '');
  assert.equal(head?.headers['content-length'], get?.headers['content-length']);
  assert.equal(servePac(c, 'POST', '/proxy.pac', 'gw.example', '127.0.0.1:3128')?.status, 405);
  assert.equal(servePac(c, 'GET', '/other', 'gw.example', '127.0.0.1:3128'), undefined);
  assert.equal(servePac(config(undefined), 'GET', '/proxy.pac', 'gw.example', '127.0.0.1:3128'), undefined);
  // Host without a port: the default port; a Host that is not host[:port]: the listener's address.
  assert.equal(load(servePac(c, 'GET', '/proxy.pac', 'gw.example', '127.0.0.1:3128')?.body ?? '').find('https://a.example/'), 'PROXY gw.example:80');
  assert.equal(load(servePac(c, 'GET', '/proxy.pac', 'gw"; x', '127.0.0.1:3128')?.body ?? '').find('https://a.example/'), 'PROXY 127.0.0.1:3128');
  // pac.proxy wins over the Host header.
  const fixed = config({ proxy: 'proxy.corp.example:8080', direct: [] });
  assert.equal(load(servePac(fixed, 'GET', '/proxy.pac', 'gw.example:3128', '127.0.0.1:3128')?.body ?? '').find('https://a.example/'), 'PROXY proxy.corp.example:8080');
});
