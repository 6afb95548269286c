/**
 * Compiles a forward listener's rules into its DestinationGuard (once per generation).
 *
 * PLACEHOLDER (being written): today it allows everything, resolving names with the system
 * resolver; the rules, the safe defaults and the checked connect replace it.
 */
import { lookup } from 'node:dns/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import type { ForwardConfig } from '../config/types.ts';
import type { Decision, DestinationGuard, ForwardAsk, Permit } from './destination-guard.ts';

export function compileForwardRules(_config: ForwardConfig): DestinationGuard {
  return {
    async check(ask: ForwardAsk): Promise<Decision> {
      let addresses: string[];
      if (isIP(ask.host) !== 0) addresses = [ask.host];
      else {
        try {
          addresses = (await lookup(ask.host, { all: true })).map((a) => a.address);
        } catch {
          return { allowed: false, rule: 'resolver', code: 'DESTINATION_UNRESOLVED', reason: `${ask.host} did not resolve` };
        }
      }
      return { allowed: true, rule: 'default', host: ask.host, port: ask.port, addresses };
    },
    connect(permit: Permit, timeout: number): Promise<Socket> {
      return new Promise((resolve, reject) => {
        const socket = netConnect({ host: permit.addresses[0], port: permit.port, timeout });
        socket.once('connect', () => {
          socket.setTimeout(0);
          resolve(socket);
        });
        socket.once('timeout', () => socket.destroy(new Error('connect timeout')));
        socket.once('error', reject);
      });
    },
  };
}
