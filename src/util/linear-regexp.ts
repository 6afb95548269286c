/**
 * Regular expressions that run in linear time, for patterns a request is matched against (a
 * content-filter's `~regex` URLs; the WAF's rules later): no input can make one backtrack for
 * seconds (EDGE-CASES 54; a backtracking `.*.*.*x` takes minutes on a 2 KB URL). They are compiled
 * by V8's non-backtracking engine (the `l` flag, after RE2's automata; V8 blog "An additional
 * non-backtracking RegExp engine"), which takes what it can run in linear time and refuses the
 * rest: backreferences, lookarounds, the `i` flag, very large counted repetitions.
 *
 * The engine is behind the V8 flag `--enable-experimental-regexp-engine`; the first compile turns
 * it on in this process (it only makes the `l` flag known: every other regular expression runs as
 * before). State: that flag, per process (each worker sets its own when it compiles its config).
 */
import { setFlagsFromString } from 'node:v8';

let enabled = false;

/**
 * `source` compiled for V8's linear-time engine, or the reason it cannot be (a syntax error, or a
 * construct that needs backtracking), as a string for a config problem. Called at config load,
 * never per request.
 */
export function linearRegExp(source: string): RegExp | string {
  try {
    new RegExp(source); // on its own first: a syntax error speaks of what was written
  } catch (err) {
    return (err as Error).message;
  }
  if (!enabled) {
    setFlagsFromString('--enable-experimental-regexp-engine');
    enabled = true;
  }
  try {
    return new RegExp(source, 'l');
  } catch {
    return 'it cannot run in linear time (backreferences, lookahead and lookbehind, very large {n,m} repetitions are not supported)';
  }
}
