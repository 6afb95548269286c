/**
 * Every default of the configuration, in one place. `resolve.ts` applies them; `docs/config.md` is
 * generated from the schema and this object, so what is written here is what is documented.
 */
export const defaults = {
  drainTimeout: '30s',
  listener: {
    trustedProxies: [] as string[],
    headerTimeout: '20s',
    requestTimeout: '300s',
    sendTimeout: '60s',
    keepAliveTimeout: '5s',
    maxHeaderSize: '16KiB',
    maxConnections: 10_000,
    maxConnectionsPerClient: 0,
    maxRequestsPerConnection: 0,
    headersWithUnderscores: 'drop',
  },
  route: {
    priority: 0,
    maxBodySize: 0,
  },
  upstream: {
    balancer: 'round-robin',
    hashTable: 'ring',
    slowStart: 0,
    panicThreshold: 50,
    sticky: { ttl: 0, path: '/', secure: false, sameSite: 'Lax' },
    healthCheck: {
      type: 'http',
      method: 'GET',
      path: '/',
      statuses: '200-399',
      interval: '5s',
      timeout: '2s',
      rise: 2,
      fall: 3,
      initialState: 'healthy',
    },
    outlierDetection: {
      consecutiveFailures: 5,
      baseEjectionTime: '30s',
      maxEjectionTime: '300s',
      maxEjectedPercent: 10,
    },
    circuitBreaker: { maxRequests: 0, maxQueued: 0, queueTimeout: '1s' },
    retries: {
      attempts: 3,
      perTryTimeout: 0,
      retryOn: ['reset', 'timeout'],
      statuses: [] as number[],
      budget: { percent: 20, minConcurrent: 10 },
    },
    hostHeader: 'preserve',
    connectionsPerEndpoint: 128,
    keepAliveTimeout: '4s',
    timeouts: {
      connect: '5s',
      responseHeaders: '60s',
      bodyIdle: '60s',
      request: 0,
    },
  },
  endpoint: {
    weight: 1,
  },
} as const;
