/**
 * The pipeline's last line of defence: an exception thrown by the step that ends it (the proxy
 * step, or anything it calls) becomes a 500 for that request only, and the listener keeps serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ListenerRoute } from './listener-generation.ts';
import type { RequestSession } from './session.ts';
import { respond } from './respond.ts';
import { listenerGeneration, listenerRoute, routeConfig, serve } from '../../test/helpers/pipeline.ts';

test('an exception in a route handler is a 500 for that request only', async () => {
  // A route with an upstream reaches the forward step; which step runs is chosen by route name below.
  const upstream = {} as NonNullable<ListenerRoute['upstream']>;
  const route = (name: string, path: string): ListenerRoute => listenerRoute(routeConfig(name, { path: { kind: 'prefix', value: path } }), { upstream });
  let ended = 0;
  const internal: string[] = [];
  const gen = listenerGeneration([route('sync-throw', '/sync'), route('async-throw', '/async'), route('ok', '/ok')], {
    generation: { enter: () => undefined, leave: () => ended++ },
    onInternalError: (_s, err) => internal.push((err as Error).message),
  });
  const forward = (s: RequestSession, r: ListenerRoute): void | Promise<void> => {
    if (r.name === 'sync-throw') throw new Error('boom');
    if (r.name === 'async-throw') return Promise.reject(new Error('async boom'));
    respond(s, { status: 200, body: 'fine' }, Infinity);
  };
  const { base, close } = await serve(gen, forward);
  try {
    for (const path of ['/sync', '/async']) {
      const res = await fetch(base + path);
      assert.equal(res.status, 500);
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'INTERNAL_ERROR');
    }
    const ok = await fetch(`${base}/ok`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'fine');
    assert.equal(ended, 3);
    assert.deepEqual(internal, ['boom', 'async boom']);
  } finally {
    await close();
  }
});
