import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { redisAclTemplate, redisPasswordVariable } from '@imagemart/messaging';
import { REDIS_ACL_PROCESSES, redisUserName } from '@imagemart/contracts';

const read = (path: string) => readFileSync(fileURLToPath(new URL(`../${path}`, import.meta.url)), 'utf8');

describe('the Redis ACL file of docker-compose', () => {
  it('is the one the rules generate (regenerate: npx tsx tools/redis-acl-file.ts > deploy/redis/users.acl.template)', () => {
    expect(read('deploy/redis/users.acl.template')).toBe(redisAclTemplate('imagemart'));
  });

  it("gives Redis every password the template names, and each service its own user's", () => {
    const compose = read('docker-compose.yml');
    const template = read('deploy/redis/users.acl.template');
    const named = [
      ...new Set([...template.matchAll(/\{\{sha256:([A-Z0-9_]+)\}\}/g)].map((m) => m[1])),
    ].sort();
    expect(named).toEqual(
      [...REDIS_ACL_PROCESSES, 'admin' as const].map((p) => redisPasswordVariable(p)).sort(),
    );
    for (const variable of named)
      expect(compose).toContain(`      ${variable}: \${${variable}:?set ${variable}}\n`);
    for (const process of REDIS_ACL_PROCESSES) {
      const variable = redisPasswordVariable(process);
      expect(compose).toContain(
        `REDIS_URL: redis://${redisUserName('imagemart', process)}:\${${variable}:?set ${variable}}@redis:6379\n`,
      );
    }
  });
});
