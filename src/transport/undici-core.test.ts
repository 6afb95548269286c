import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as undici from 'undici';
import { Client, Pool } from './undici-core.ts';

test('the Pool and Client loaded from their own modules are the classes undici exports', () => {
  assert.equal(Pool, undici.Pool);
  assert.equal(Client, undici.Client);
});
