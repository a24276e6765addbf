import { Redis, type RedisOptions } from 'ioredis';
import type { LoggerService } from '@nestjs/common';

/** How to reach Redis: a `redis://` URL or ioredis options. */
export type RedisConnection = string | RedisOptions;

/** A new ioredis connection; `overrides` win over what the caller passed. */
export function createRedis(connection: RedisConnection, overrides: RedisOptions): Redis {
  return typeof connection === 'string'
    ? new Redis(connection, overrides)
    : new Redis({ ...connection, ...overrides });
}

/**
 * ioredis emits `error` on every failed reconnect attempt; log the first one of an outage and
 * stay quiet until the connection is ready again.
 */
export function logConnectionErrors(redis: Redis, logger: LoggerService, name: string): void {
  let quiet = false;
  redis.on('error', (err: Error) => {
    if (quiet) return;
    quiet = true;
    logger.warn(`Redis connection ${name}: ${err.message}; retrying in the background`);
  });
  redis.on('ready', () => {
    if (quiet) logger.log(`Redis connection ${name} is back`);
    quiet = false;
  });
}
