import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export interface TestRedisPrefix {
  /** A key prefix no other test run uses: `test:<name>:<random>`. */
  prefix: string;
  url: string;
  /** Deletes every key under the prefix. */
  cleanup(): Promise<void>;
}

/** The Redis tests use: `REDIS_URL`, else the local default. */
export const testRedisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A unique key prefix on the shared test Redis (or the Redis at `url`). Tests put every key under it and call
 * `cleanup()` when done, so runs never see each other's keys.
 */
export function createTestRedisPrefix(name = 'redis', url = testRedisUrl()): TestRedisPrefix {
  const safeName = name.replace(/[^A-Za-z0-9_-]/g, '-');
  const prefix = `test:${safeName}:${randomBytes(6).toString('hex')}`;
  return {
    prefix,
    url,
    async cleanup() {
      const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        // The prefix holds only [A-Za-z0-9_:-], so it needs no glob escaping.
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          if (keys.length > 0) await redis.unlink(...keys);
          cursor = next;
        } while (cursor !== '0');
      } finally {
        redis.disconnect();
      }
    },
  };
}
