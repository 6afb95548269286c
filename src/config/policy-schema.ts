/**
 * The `policies` section: one entry per named policy, `type` choosing its kind. The schema of each
 * kind is its policy module's own (src/policies/<type>/config.ts), assembled here from the
 * registry, so a new policy type touches no file of src/config.
 */
import { z } from 'zod';
import { policyTypes } from '../policies/registry.ts';

/** One policy: `type` and that type's keys, for the policy types registered now. */
export function policySchema(): z.ZodType {
  const branches = policyTypes.map((t) =>
    z.strictObject({ type: z.literal(t.type).meta({ description: t.description }), ...t.config.shape }).meta({ title: t.type, description: t.description }),
  );
  return z
    .discriminatedUnion('type', branches as unknown as [z.ZodObject, ...z.ZodObject[]])
    .meta({ description: `A policy: \`type\` names its kind (${policyTypes.map((t) => t.type).join(', ')}); the other keys are that kind's.` });
}

/** A policy list of a listener or a route: names of entries of `policies`, run in this order. */
export const policyList = z.array(z.string()).meta({ description: 'Names of policies (entries of the top-level `policies`), run in this order.' });
