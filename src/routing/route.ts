/** A route as the runtime holds it: its config, its upstream and the route's effective limits. */
import type { RouteConfig, Timeouts } from '../config/types.ts';
import type { Upstream } from '../upstream/upstream.ts';
import type { Routable } from './router.ts';

export interface RuntimeRoute extends Routable {
  readonly name: string;
  readonly config: RouteConfig;
  /** Undefined for a route whose policies answer every request (a `respond` policy). */
  readonly upstream: Upstream | undefined;
  /** The upstream's timeouts with this route's overrides. */
  readonly timeouts: Timeouts;
  /** Largest request body in bytes; 0 = no limit. */
  readonly maxBodySize: number;
}
