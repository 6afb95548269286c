/**
 * The `admin` section: the admin listener (src/admin/): status API, runtime changes, `/metrics`,
 * `/healthz` and `/readyz`. Shape only; `resolve-admin.ts` checks the address against the traffic
 * listeners and asks for a token off loopback.
 */
import { z } from 'zod';

export const adminSection = z
  .strictObject({
    address: z.string().meta({
      description:
        'host:port of the admin listener, e.g. `127.0.0.1:9901`; port 0 picks a free one. Never the address of a traffic listener. Anything but a loopback address (127.0.0.0/8, ::1, localhost) needs `token`.',
    }),
    token: z.string().min(1).optional().meta({
      description:
        'Bearer token every `/api` and `/metrics` request must send (`Authorization: Bearer <token>`); `/healthz` and `/readyz` need none. Substitute it from an environment variable (ADMIN_TOKEN, say) to keep it out of the file. Without it the admin answers loopback clients only.',
    }),
  })
  .meta({
    description: 'The admin listener (docs/admin.md): JSON status API, runtime changes (drain, disable, weight, reload), metrics, health and readiness. Off when absent.',
  });

/** The `admin` section as written. */
export type RawAdmin = z.infer<typeof adminSection>;
