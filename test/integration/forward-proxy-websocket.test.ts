/**
 * WebSocket through the forward proxy (issue 15 §1), with the `ws` package against a `ws` origin:
 * an absolute-form `GET http://host/ws` upgrade (not tunnelled: the proxy checks the destination,
 * adds Via, splices after the 101), and `ws` inside a CONNECT tunnel.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http, { type ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { forwardConfig } from './helpers/forward.ts';
import { closedWs, nextMessage, openWs, startWsOrigin, type WsOrigin } from './helpers/websocket.ts';

/** Opens a CONNECT tunnel to `authority` through the proxy at `port`. */
function tunnel(port: number, authority: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'CONNECT', path: authority, headers: { host: authority } });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) resolve(socket);
      else reject(new Error(`CONNECT answered ${res.statusCode}`));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('forward proxy: WebSocket', () => {
  let origin: WsOrigin;
  let gw: TestGateway;
  let originPort: number;

  before(async () => {
    origin = await startWsOrigin('ws-origin');
    originPort = Number(new URL(origin.url).port);
    gw = await startTestGateway(forwardConfig(), 'proxy');
  });
  after(async () => {
    await gw?.stop();
    await origin?.close();
  });

  test('an absolute-form upgrade (ws, not tunnelled): 101 from the destination, messages both ways, Via on both sides', async () => {
    const target = `http://127.0.0.1:${originPort}/chat?room=1`;
    // ws connects to the proxy and, just before sending, makes the request line absolute-form.
    const {
      ws,
      origin: who,
      headers,
    } = await openWs(`ws://127.0.0.1:${gw.port}/chat?room=1`, {
      finishRequest: (req: ClientRequest) => {
        req.path = target;
        req.end();
      },
    });
    try {
      assert.equal(who, 'ws-origin');
      assert.equal(headers.via, '1.1 switchboard');
      const upgrade = origin.upgrades.at(-1)!;
      assert.equal(upgrade.url, '/chat?room=1');
      assert.equal(upgrade.headers.host, `127.0.0.1:${originPort}`);
      assert.equal(upgrade.headers.via, '1.1 switchboard');
      ws.send('ping through the proxy');
      assert.equal((await nextMessage(ws)).data.toString(), 'ping through the proxy');
    } finally {
      ws.close();
      await closedWs(ws);
    }
  });

  test('ws inside a CONNECT tunnel', async () => {
    const before = origin.upgrades.length;
    const socket = await tunnel(gw.port, `127.0.0.1:${originPort}`);
    const { ws, origin: who } = await openWs(`ws://127.0.0.1:${originPort}/inside`, { createConnection: () => socket });
    try {
      assert.equal(who, 'ws-origin');
      assert.equal(origin.upgrades.length, before + 1);
      assert.equal(origin.upgrades.at(-1)!.headers.via, undefined, 'inside a tunnel nothing is added');
      ws.send(Buffer.from([1, 2, 3]), { binary: true });
      assert.deepEqual([...(await nextMessage(ws)).data], [1, 2, 3]);
    } finally {
      ws.close();
      await closedWs(ws);
    }
  });
});
