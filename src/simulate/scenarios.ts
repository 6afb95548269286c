/**
 * The built-in scenarios of `switchboard simulate`, each showing one classic trade-off between
 * balancing algorithms. Unless a scenario says otherwise an endpoint serves 4 requests at once with
 * exponential service times of mean 20 ms, so it completes about 200 requests/s; arrival rates put
 * the fleet at 70-75% utilisation. Event times are percentages of the run, so `--requests` scales
 * them.
 */
import type { EndpointModel, Scenario } from './model.ts';

/** Requests per run unless `--requests` or a scenario file says otherwise. */
export const DEFAULT_REQUESTS = 20_000;

function server(name: string, mean = 20): EndpointModel {
  return { name, weight: 1, capacity: 4, service: { distribution: 'exponential', mean } };
}

function fleet(n: number): EndpointModel[] {
  return Array.from({ length: n }, (_, i) => server(`s${i + 1}`));
}

const common = {
  requests: DEFAULT_REQUESTS,
  clients: { count: 200, zipf: 1 },
  keys: { count: 1000, zipf: 0.8 },
  events: [],
  hashTable: 'ring',
} satisfies Partial<Scenario>;

export const SCENARIOS: readonly Scenario[] = [
  {
    ...common,
    name: 'equal',
    description: '4 equal servers (capacity 4, exponential 20 ms), 600 req/s: 75% utilisation',
    rate: 600,
    endpoints: fleet(4),
    explanation:
      'With identical servers every algorithm spreads the load about evenly, and latency is mostly ' +
      "the servers' own service time. The differences that remain come from queueing: algorithms that " +
      'look at load (least-connections, least-response-time, power-of-two) avoid sending a request to a ' +
      'server that is momentarily busy, so their p99 is lower than blind rotation or random choice. The ' +
      'hashing algorithms are only as even as their keys: a popular client or key lands on one server.',
  },
  {
    ...common,
    name: 'half-speed',
    description: 'one of 4 servers is half as fast (s4: 40 ms), 525 req/s: 75% of the fleet',
    rate: 525,
    endpoints: [...fleet(3), server('s4', 40)],
    explanation:
      'Round robin, weighted round robin with equal weights and random give the slow server a quarter ' +
      'of the traffic although it can serve only about a seventh (the hashing algorithms give it ' +
      'whatever its keys bring): its queue grows for the whole run and every request sent to it waits ' +
      'longer and longer, so p99 is huge. Least-connections, least-response-time and power-of-two see ' +
      'the slow server busier or slower and send it less, so nothing piles up. If you know a server is ' +
      'slower, give it a lower weight; if you do not, use a load-aware algorithm.',
  },
  {
    ...common,
    name: 'slowdown',
    description: '4 servers, 560 req/s (70%); s2 becomes 10x slower from 40% to 70% of the run',
    rate: 560,
    endpoints: fleet(4),
    events: [{ type: 'slowdown', endpoint: 's2', at: { percent: 40 }, until: { percent: 70 }, factor: 10 }],
    explanation:
      'A server that is still up but slow (a noisy neighbour, a long garbage collection, a bad disk) ' +
      'is not taken out by health checks. Round robin keeps sending it a quarter of the traffic, its ' +
      'queue explodes, and latency stays high until the backlog drains, long after it recovered (see the ' +
      'timeline in the HTML report). Least-response-time notices the slower responses within a few ' +
      'requests and routes around it; least-connections and power-of-two do too, because slow requests ' +
      'pile up as in-flight counts.',
  },
  {
    ...common,
    name: 'heavy-clients',
    description: '4 servers, 600 req/s (75%); 3 of 200 clients send 60% of all requests',
    rate: 600,
    clients: { count: 200, heavy: { clients: 3, share: 0.6 } },
    endpoints: fleet(4),
    explanation:
      'ip-hash sends every request of a client to the same server, so each heavy client (a NAT gateway, ' +
      'an office, a crawler, another service) lands whole on one server: endpoint shares are as uneven ' +
      'as the clients, and a server that draws two heavy clients is overloaded while others idle. ' +
      'Per-request algorithms do not care who sends what. Consistent-hash on a well-spread request key ' +
      '(a user id) stays much more even than ip-hash; use either only when affinity is worth it.',
  },
  {
    ...common,
    name: 'failure',
    description: '5 servers, 700 req/s (70%); s3 fails at 40% and recovers at 80%, health checks take 2 s to notice',
    rate: 700,
    endpoints: fleet(5),
    events: [{ type: 'fail', endpoint: 's3', at: { percent: 40 }, recover: { percent: 80 }, detectAfter: 2000 }],
    explanation:
      'Until health checking takes the failed server out, every algorithm sends it traffic and those ' +
      'requests fail (retries, not simulated here, would hide most of them). Load-aware algorithms can ' +
      'make it worse: a refused connection ends at once, so the failed server looks idle and attracts ' +
      'more than its share. Afterwards the hashing algorithms keep almost every key (consistent-hash) or ' +
      'client (ip-hash) on the server it had, "moved" close to 0%, which keeps caches and sessions warm; ' +
      "only the failed server's keys move, and a heavy key or client moves whole onto one server, which " +
      'may overload it. The other algorithms reshuffle keys freely, so their "keys moved" is large; that ' +
      'matters only if your servers keep per-key state.',
  },
];

/** A built-in scenario by name. */
export function builtinScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
