/**
 * The `tracing` section: OpenTelemetry traces exported over OTLP/HTTP (src/observability/tracing.ts).
 * Shape only; `resolve-tracing.ts` checks the endpoint URL, the rate and the trusted ranges, and
 * applies the defaults. Absent: tracing is off, and a request does no span work at all.
 */
import { z } from 'zod';
import { cidrList, duration, headerName } from '../util/config-primitives.ts';

export const tracingSection = z
  .strictObject({
    otlp: z
      .strictObject({
        endpoint: z.string().meta({ description: 'The OTLP/HTTP traces URL of the collector, `http://127.0.0.1:4318/v1/traces` (spans are sent as JSON).' }),
        headers: z
          .record(headerName, z.string())
          .optional()
          .meta({ description: 'Request headers sent with each export (an API key: take it from an environment variable). Never logged.' }),
        timeout: duration.optional().meta({ description: 'Time one export request may take before it is given up.' }),
      })
      .meta({ description: 'Where spans go.' }),
    sampleRate: z.number().min(0).max(1).optional().meta({
      description:
        'Share of new traces recorded and exported, 0 to 1. Parent-based: a request whose trusted `traceparent` says sampled is recorded, one that says not sampled is not, whatever the rate. The trace context is passed to the upstream either way.',
    }),
    serviceName: z.string().min(1).optional().meta({ description: 'The `service.name` resource attribute of every span.' }),
    trust: cidrList.optional().meta({
      description:
        'Peers whose `traceparent` and `tracestate` are continued. Absent: each listener’s `trustedProxies`. From any other peer they are dropped and a new trace starts (`0.0.0.0/0` and `::/0` trust everyone).',
    }),
  })
  .meta({ description: 'OpenTelemetry traces: a server span per request and a client span per upstream try, exported over OTLP/HTTP. Off when absent.' });

/** The `tracing` section as written. */
export type RawTracing = z.infer<typeof tracingSection>;
