import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grpcStatus, renderReply } from './error-response.ts';

test('gRPC statuses: the gateway’s own codes by kind, policy refusals by their HTTP status', () => {
  const cases: Array<[string, number, number]> = [
    ['UPSTREAM_TIMEOUT', 504, 4],
    ['UPSTREAM_CONNECT_REFUSED', 502, 14],
    ['ROUTE_NOT_FOUND', 404, 12],
    ['BODY_TOO_LARGE', 413, 8],
    ['POLICY_ERROR', 500, 13],
    ['AUTH_REQUIRED', 401, 16],
    ['AUTH_INVALID', 401, 16],
    ['FORBIDDEN', 403, 7],
    ['IP_FORBIDDEN', 403, 7],
    ['RATE_LIMITED', 429, 8],
    ['QUOTA_EXCEEDED', 429, 8],
    ['CONCURRENCY_LIMITED', 429, 8],
    ['AUTH_UNAVAILABLE', 503, 14],
    ['POLICY_TIMEOUT', 503, 14],
    ['MY_POLICY_SAYS_NO', 418, 2],
    ['MY_POLICY_FAILED', 500, 13],
  ];
  for (const [code, status, grpc] of cases) assert.equal(grpcStatus(code, status), grpc, `${code} ${status}`);
});

test('a policy’s error Reply to a gRPC call is Trailers-Only: HTTP 200, grpc-status and grpc-message, no body', () => {
  const r = renderReply({ status: 401, headers: { 'www-authenticate': 'Bearer' }, error: { code: 'AUTH_REQUIRED', message: 'this route needs a credential' } }, 'req-1', {
    'content-type': 'application/grpc+proto',
  });
  assert.equal(r.status, 200);
  assert.equal(r.body, undefined);
  assert.equal(r.headers.get('grpc-status'), '16');
  assert.equal(r.headers.get('grpc-message'), 'AUTH_REQUIRED: this route needs a credential');
  assert.equal(r.headers.get('content-type'), 'application/grpc');
  const http = renderReply({ status: 429, error: { code: 'RATE_LIMITED', message: 'slow down' } }, 'req-2', {});
  assert.equal(http.status, 429);
  assert.equal(http.headers.get('grpc-status'), undefined);
});
