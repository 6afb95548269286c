/** A route as the runtime holds it: its config, its upstream and its compiled request handler. */
import type { RouteConfig, Timeouts } from '../config/types.ts';
import type { RequestContext } from '../middleware/context.ts';
import type { ProxyTarget } from '../upstream/proxy.ts';
import type { Upstream } from '../upstream/upstream.ts';
import type { Routable } from './router.ts';

export interface RuntimeRoute extends Routable, ProxyTarget {
  readonly name: string;
  readonly config: RouteConfig;
  readonly upstream: Upstream;
  /** The upstream's timeouts with this route's overrides. */
  readonly timeouts: Timeouts;
  /** Largest request body in bytes; 0 = no limit. */
  readonly maxBodySize: number;
  /** The middleware chain ending in the proxy step; resolves when the exchange is over. */
  readonly handle: (ctx: RequestContext) => Promise<void> | void;
}
