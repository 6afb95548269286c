/** Failure guards: a promise that must settle does so within a bound, or the test fails saying what hung. */

/** Rejects after `ms` (never used as synchronisation); the timer does not hold the process open. */
export function guard<T>(p: Promise<T>, what: string, ms = 2000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms);
    timer.unref();
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
