import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per process, with the figures every service shares. A process that serves
 * `/metrics` exposes this registry.
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry });

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const httpRequestDuration = new Histogram({
  name: 'imagemart_http_request_duration_seconds',
  help: 'HTTP requests served by storefront-api, by method, route and status code.',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: SECONDS,
  registers: [metricsRegistry],
});

export const rpcClientDuration = new Histogram({
  name: 'imagemart_rpc_client_duration_seconds',
  help: 'Round trips of RPC calls made by this process, by service, pattern and outcome.',
  labelNames: ['service', 'pattern', 'outcome'] as const,
  buckets: SECONDS,
  registers: [metricsRegistry],
});

export const rpcServerDuration = new Histogram({
  name: 'imagemart_rpc_server_duration_seconds',
  help: 'RPC requests handled by this process, by pattern and outcome.',
  labelNames: ['pattern', 'outcome'] as const,
  buckets: SECONDS,
  registers: [metricsRegistry],
});

export const rpcReclaimed = new Counter({
  name: 'imagemart_rpc_reclaimed_total',
  help: 'RPC requests taken over from a replica that stopped answering.',
  labelNames: ['service'] as const,
  registers: [metricsRegistry],
});

export const rpcCallerRefused = new Counter({
  name: 'imagemart_rpc_caller_refused_total',
  help: 'Requests and events a service refused because their caller assertion did not hold (forged, expired, replayed, bound to another payload, or from a process not allowed to send the pattern).',
  labelNames: ['service', 'reason'] as const,
  registers: [metricsRegistry],
});
