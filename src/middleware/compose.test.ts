import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compose } from './compose.ts';
import type { Middleware, RequestContext } from './context.ts';

const ctx = {} as RequestContext;

test('runs middleware in order around the final step', async () => {
  const seen: string[] = [];
  const mw = (name: string): Middleware => async (_c, next) => {
    seen.push(`${name}>`);
    await next();
    seen.push(`<${name}`);
  };
  await compose([mw('a'), mw('b')], async () => {
    seen.push('final');
  })(ctx);
  assert.deepEqual(seen, ['a>', 'b>', 'final', '<b', '<a']);
});

test('a middleware that does not call next stops the chain', async () => {
  let reached = false;
  await compose([async () => undefined], async () => {
    reached = true;
  })(ctx);
  assert.equal(reached, false);
});

test('next() twice rejects', async () => {
  const twice: Middleware = async (_c, next) => {
    await next();
    await next();
  };
  await assert.rejects(compose([twice], async () => undefined)(ctx), /more than once/);
});

test('an empty chain is the final step itself', () => {
  const final = async (): Promise<void> => undefined;
  assert.equal(compose([], final), final);
});
