import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as undici from 'undici';
import { Agent, Client, Pool, request } from './undici-core.ts';

test('the Pool and Client loaded from their own modules are the classes undici exports', () => {
  assert.equal(Pool, undici.Pool);
  assert.equal(Client, undici.Client);
  assert.equal(Agent, undici.Agent);
  // The function the index puts on every dispatcher as its request() method.
  assert.equal(request, undici.Client.prototype.request);
});
