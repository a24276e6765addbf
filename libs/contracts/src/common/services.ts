/**
 * The services that answer requests over the Redis Streams transport. Each has one request
 * stream; renaming one strands the requests in its old stream.
 */
export const RpcService = {
  permission: 'permission',
  catalog: 'catalog',
  billing: 'billing',
} as const;
export type RpcService = (typeof RpcService)[keyof typeof RpcService];

/** Every process that /health reports on, besides the gateway itself. */
export const PROCESSES = ['permission', 'catalog', 'billing', 'bundler-worker'] as const;
export type ProcessName = (typeof PROCESSES)[number];

/** Every RPC service answers this pattern with `HealthPong`. */
export const healthPattern = (service: RpcService) => `${service}.health.ping` as const;

export interface HealthPong {
  service: RpcService;
  /** Instance id of the replica that answered. */
  instance: string;
  /** Whether that replica reached PostgreSQL just now. */
  database: boolean;
}
