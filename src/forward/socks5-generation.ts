/**
 * What a socks5 listener's connections depend on that a reload may change (its rules, its
 * credentials), built once per config generation by generation.ts.
 */
import type { ForwardConfig } from '../config/types.ts';
import type { GenerationTracker } from '../http/listener-generation.ts';
import type { ConnectionRecord } from '../observability/access-log.ts';
import type { CredentialMatch } from '../policies/filter.ts';
import type { Tunnels } from '../transport/tunnel.ts';
import type { DestinationGuard } from './destination-guard.ts';

/** Checks a username and password (a basic-auth policy's `Filter.checkPassword`). */
export type PasswordCheck = (user: string, password: string) => Promise<CredentialMatch | undefined>;

/** What a socks5 listener's connections depend on that a reload may change. One per generation. */
export interface SocksGeneration {
  readonly name: string;
  /** This generation's rules, compiled once (in-flight tunnels keep the generation they began in). */
  readonly guard: DestinationGuard;
  readonly forward: ForwardConfig;
  /** The listener's basic-auth policies, in order; empty: no authentication (method 0x00). */
  readonly passwords: readonly PasswordCheck[];
  readonly generation: GenerationTracker;
  /** ms the connections of a replaced generation may live on. */
  readonly drainTimeout: number;
  /** This generation's tunnels (cut together when its drain time is up). */
  readonly tunnels: Tunnels;
  /** This generation's UDP associations (forward/socks5-udp.ts), closed with the tunnels at the drain deadline. */
  readonly associations: Set<{ close(): void }>;
  /** The access log's hook for an ended connection; undefined when it is off (then no record is built). */
  readonly onConnectionEnd: ((c: ConnectionRecord) => void) | undefined;
}
