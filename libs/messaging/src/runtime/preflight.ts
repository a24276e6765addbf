import { Redis } from 'ioredis';
import { createPrismaClient, describeConnectionError, type PrismaClient } from '@imagemart/database';

/** Raised when a process cannot start; its message is one sentence for the operator. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** Connects to PostgreSQL and proves it answers; the client is the process's from then on. */
export async function connectDatabase(databaseUrl: string, poolSize?: number): Promise<PrismaClient> {
  const prisma = createPrismaClient(databaseUrl, poolSize ? { poolSize } : undefined);
  try {
    await prisma.$queryRaw`SELECT 1`;
    return prisma;
  } catch (err) {
    await prisma.$disconnect().catch(() => undefined);
    throw new StartupError(describeConnectionError(err, 'PostgreSQL', databaseUrl), { cause: err });
  }
}

/** Proves Redis answers, with one try and no retry loop, so a missing Redis is said at once. */
export async function checkRedis(redisUrl: string): Promise<void> {
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: 3000,
  });
  // ioredis rejects connect() with a bare "Connection is closed"; the socket's own error (refused,
  // not found, timed out) comes through the 'error' event.
  let socketError: unknown;
  redis.on('error', (err) => (socketError ??= err));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    const cause = socketError ?? err;
    throw new StartupError(describeConnectionError(cause, 'Redis', redisUrl), { cause });
  } finally {
    redis.disconnect();
  }
}

/**
 * Runs a process's main function; a failure to start prints one clear sentence (no stack trace)
 * and exits with status 1.
 */
export function runMain(name: string, main: () => Promise<unknown>): void {
  main().catch((err: unknown) => {
    const message =
      err instanceof StartupError || (err instanceof Error && err.name === 'ConfigError')
        ? err.message
        : `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`${name} could not start: ${message}\n`);
    process.exit(1);
  });
}
