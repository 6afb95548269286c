/** Forward-proxy test configs: a `proxy` listener (protocol forward) that allows the loopback origins by a rule, as a user would. */

/** A forward listener `proxy` on 127.0.0.1:0 allowing 127.0.0.0/8, with `forward` settings, listener keys and top-level sections merged in. */
export function forwardConfig(forward: object = {}, listener: object = {}, extra: object = {}): object {
  return {
    listeners: {
      proxy: {
        address: '127.0.0.1:0',
        protocol: 'forward',
        forward: { rules: [{ action: 'allow', destinations: ['127.0.0.0/8'] }], ...forward },
        ...listener,
      },
    },
    ...extra,
  };
}
