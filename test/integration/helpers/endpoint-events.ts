/** Waiting for an endpoint state change (health, ejection) published by the gateway. */
import diagnostics from 'node:diagnostics_channel';
import type { EndpointStateEvent } from '../../../src/upstream/state.ts';
import { guard } from './guard.ts';

/** Resolves with the first `switchboard:endpoint:state` event matching `when`, or fails after `ms`. */
export function endpointEvent(when: (e: EndpointStateEvent) => boolean, what: string, ms = 5000): Promise<EndpointStateEvent> {
  const channel = diagnostics.channel('switchboard:endpoint:state');
  let listener: ((m: unknown) => void) | undefined;
  const seen = new Promise<EndpointStateEvent>((resolve) => {
    listener = (m: unknown) => {
      if (when(m as EndpointStateEvent)) resolve(m as EndpointStateEvent);
    };
    channel.subscribe(listener);
  });
  return guard(seen, what, ms).finally(() => channel.unsubscribe(listener!));
}
