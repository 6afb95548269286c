/**
 * A Session for unit tests of filters, without sockets: a request view, a client, and the
 * per-request locals, with everything overridable.
 */
import type { Client, Identity, RequestView, Session } from '../../src/policies/filter.ts';

export interface FakeSessionInit {
  request?: Partial<RequestView>;
  client?: Partial<Client>;
  id?: string;
  listener?: string;
  route?: string;
  upstream?: string;
  status?: number;
  error?: string;
  identity?: Identity;
}

/** A session as the pipeline would hand a filter: GET / from 192.0.2.1 unless told otherwise. */
export function fakeSession(init: FakeSessionInit = {}): Session {
  const locals = new Map<object, unknown>();
  const s = {
    request: { method: 'GET', authority: 'example.com', path: '/', query: '', headers: {}, scheme: 'http', upgrade: false, hasBody: false, ...init.request },
    client: { ip: '192.0.2.1', peer: '192.0.2.1', tls: false, certificate: undefined, ...init.client },
    id: init.id ?? 'req-1',
    listener: init.listener ?? 'web',
    route: init.route,
    upstream: init.upstream,
    status: init.status ?? 0,
    error: init.error,
    identity: init.identity,
    cache: undefined,
    identify(identity: Identity): void {
      s.identity = identity;
    },
    local<T>(key: object, value?: T): T | undefined {
      if (value !== undefined) locals.set(key, value);
      return locals.get(key) as T | undefined;
    },
  };
  return s;
}
