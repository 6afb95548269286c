/**
 * For unit tests of policy types, without the loader: a ResolveContext that collects problems, and
 * the header list the pipeline hands hooks (`HeaderList`, from pairs).
 */
import type { PolicyProblem, ResolveContext } from '../../src/policies/filter.ts';
import { HeaderList } from '../../src/http/header-list.ts';

/** A ResolveContext over `env` and `baseDir`, and the problems it was told about. */
export function fakeResolveContext(init: { env?: Record<string, string | undefined>; baseDir?: string } = {}): {
  ctx: ResolveContext;
  problems: PolicyProblem[];
} {
  const problems: PolicyProblem[] = [];
  return { ctx: { baseDir: init.baseDir ?? process.cwd(), env: init.env ?? {}, problem: (p) => problems.push(p) }, problems };
}

/** A header list from `[name, value]` pairs, names as given. */
export function headerList(pairs: ReadonlyArray<readonly [string, string]> = []): HeaderList {
  return new HeaderList(pairs.flat());
}

/** The `[name, value]` pairs of a header list, in order. */
export function pairs(headers: HeaderList): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  headers.forEach((value, name) => {
    out.push([name, value]);
  });
  return out;
}
