import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export interface TestRedisPrefix {
  /** A key prefix no other test run uses: `test:<name>:<random>`. */
  prefix: string;
  url: string;
  /** Deletes every key under the prefix, and the ACL users named `<prefix>.<name>`. */
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
        // Users made by createTestRedisUser, or by `npm start` run under this prefix.
        const users = ((await redis.call('ACL', 'USERS')) as string[]).filter((u) =>
          u.startsWith(`${prefix}.`),
        );
        if (users.length > 0) await redis.call('ACL', 'DELUSER', ...users);
      } finally {
        redis.disconnect();
      }
    },
  };
}

export interface TestRedisUser {
  /** `<prefix>.<name>`: the prefix's `cleanup()` deletes it. */
  user: string;
  password: string;
  /** The prefix's Redis URL signed in as this user. */
  url: string;
}

/**
 * An ACL user `<prefix>.<name>` with a random password and `rules` (ACL SETUSER rules, `reset`
 * first), created through the default user. The default user itself is left as it is: other
 * tests depend on it.
 */
export async function createTestRedisUser(
  redis: Pick<TestRedisPrefix, 'url' | 'prefix'>,
  name: string,
  rules: readonly string[],
): Promise<TestRedisUser> {
  const user = `${redis.prefix}.${name}`;
  const password = randomBytes(24).toString('hex');
  const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await admin.connect();
    await admin.call('ACL', 'SETUSER', user, ...rules, `>${password}`);
  } finally {
    admin.disconnect();
  }
  const url = new URL(redis.url);
  url.username = user;
  url.password = password;
  return { user, password, url: url.toString() };
}
