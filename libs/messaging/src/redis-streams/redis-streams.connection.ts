import { Redis, type RedisOptions } from 'ioredis';
import type { LoggerService } from '@nestjs/common';
import { callerOfRedisUser } from '@imagemart/contracts';

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

/**
 * The process a connection's Redis user speaks for, which an RPC client names its reply list
 * after (see `callerOfRedisUser`); none for the default user.
 */
export function rpcCallerName(connection: RedisConnection, prefix: string): string | undefined {
  if (typeof connection !== 'string') return callerOfRedisUser(connection.username, prefix);
  try {
    return callerOfRedisUser(decodeURIComponent(new URL(connection).username), prefix);
  } catch {
    return undefined; // not a URL ioredis would take either: connecting says so
  }
}
