/**
 * The pipeline's last line of defence: an exception thrown by a route's handler (a matcher,
 * middleware or the proxy step) becomes a 500 for that request only, and the listener keeps serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RuntimeRoute } from '../routing/route.ts';
import { listenerRuntime, routeConfig, serve } from '../../test/helpers/pipeline.ts';

test('an exception in a route handler is a 500 for that request only', async () => {
  const route = (name: string, path: string, handle: RuntimeRoute['handle']): RuntimeRoute =>
    ({ name, config: routeConfig(name, { path: { kind: 'prefix', value: path } }), handle, maxBodySize: 0 }) as unknown as RuntimeRoute;
  let ended = 0;
  const internal: string[] = [];
  const rt = listenerRuntime(
    [
      route('sync-throw', '/sync', () => {
        throw new Error('boom');
      }),
      route('async-throw', '/async', async () => {
        throw new Error('async boom');
      }),
      route('ok', '/ok', (ctx) => {
        ctx.status = 200;
        ctx.res.end('fine');
      }),
    ],
    {
      generation: { enter: () => undefined, leave: () => ended++ },
      onInternalError: (_ctx, err) => internal.push((err as Error).message),
    },
  );
  const { base, close } = await serve(rt);
  try {
    for (const path of ['/sync', '/async']) {
      const res = await fetch(base + path);
      assert.equal(res.status, 500);
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'INTERNAL_ERROR');
    }
    const ok = await fetch(base + '/ok');
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'fine');
    assert.equal(ended, 3);
    assert.deepEqual(internal, ['boom', 'async boom']);
  } finally {
    await close();
  }
});
