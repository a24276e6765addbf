import { redisAclRules, type RedisAclProcess } from '@imagemart/contracts';
import { createTestRedisUser, type TestRedisUser } from './test-redis.js';

/**
 * A Redis user with exactly the rights a platform process gets (`redisAclRules`), under a test's
 * key prefix: for tests that act as that process, or as someone holding its credentials.
 * Deleted with the prefix's cleanup.
 */
export function createProcessRedisUser(
  redis: { url: string; prefix: string },
  process: RedisAclProcess,
): Promise<TestRedisUser> {
  return createTestRedisUser(redis, process, redisAclRules(redis.prefix, process));
}
