/** Starts the real gateway for a test, with a config object, on 127.0.0.1 port 0. */
import { startGateway, type Gateway } from '../../../src/index.ts';

export interface TestGateway {
  gw: Gateway;
  /** Base URL of the `web` listener (or the named one). */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** A config with one `web` listener and a catch-all route to `upstream` over `endpoints`. */
export function simpleConfig(endpoints: string[], extra: { route?: object; upstream?: object; listener?: object } = {}): Record<string, unknown> {
  return {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http', ...extra.listener } },
    routes: { all: { match: { path: '/' }, upstream: 'app', ...extra.route } },
    upstreams: { app: { balancer: 'round-robin', endpoints: endpoints.map((url) => ({ url })), ...extra.upstream } },
  };
}

export async function startTestGateway(config: string | object, listener = 'web'): Promise<TestGateway> {
  const gw = await startGateway({ config, accessLog: 'off', logLevel: 'silent' });
  const { port } = gw.address(listener);
  return { gw, url: gw.url(listener), port, stop: () => gw.stop({ drainTimeout: 2000 }) };
}
