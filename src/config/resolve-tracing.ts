/**
 * The `tracing` section of resolve: an http(s) OTLP URL, a rate within 0..1 (the schema checks
 * it), trusted ranges that parse, a positive export timeout; defaults applied. Absent: undefined
 * (tracing off).
 */
import { parseCidr } from '../util/cidr.ts';
import { parseDuration } from '../util/units.ts';
import { defaults } from './defaults.ts';
import { show, type Problem } from './problems.ts';
import type { RawConfig } from './schema.ts';
import type { TracingConfig } from './types.ts';

export function resolveTracing(raw: RawConfig, problems: Problem[]): TracingConfig | undefined {
  const t = raw.tracing;
  if (t === undefined) return undefined;
  const d = defaults.tracing;
  const endpoint = t.otlp.endpoint;
  let protocol = '';
  try {
    protocol = new URL(endpoint).protocol;
  } catch {
    // reported below
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    problems.push({ path: ['tracing', 'otlp', 'endpoint'], expected: 'an http:// or https:// URL such as "http://127.0.0.1:4318/v1/traces"', found: show(endpoint) });
  }
  const timeout = parseDuration(t.otlp.timeout ?? d.otlp.timeout);
  if (timeout <= 0) problems.push({ path: ['tracing', 'otlp', 'timeout'], expected: 'a duration above 0, such as 10s', found: show(t.otlp.timeout) });
  t.trust?.forEach((cidr, i) => {
    if (!parseCidr(cidr)) problems.push({ path: ['tracing', 'trust', i], expected: 'an IP address or CIDR range', found: show(cidr) });
  });
  return {
    endpoint,
    headers: { ...t.otlp.headers },
    timeout,
    sampleRate: t.sampleRate ?? d.sampleRate,
    serviceName: t.serviceName ?? d.serviceName,
    trust: t.trust,
  };
}
