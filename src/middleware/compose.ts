/**
 * Composes a route's middleware chain into one function (after Hono's compose). `final` runs after
 * the last middleware calls next: it is the forwarding step.
 */
import type { Middleware, RequestContext } from './context.ts';

export function compose(chain: readonly Middleware[], final: (ctx: RequestContext) => Promise<void>): (ctx: RequestContext) => Promise<void> {
  if (chain.length === 0) return final;
  return (ctx) => {
    let last = -1;
    const step = (i: number): Promise<void> => {
      if (i <= last) return Promise.reject(new Error('next() called more than once'));
      last = i;
      if (i === chain.length) return final(ctx);
      return chain[i](ctx, () => step(i + 1));
    };
    return step(0);
  };
}
