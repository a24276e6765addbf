import { describe, expect, it } from 'vitest';
import { EVENT_ROUTES, EventQueue, INSTANCE_HOST_QUEUE, QueueName } from '@imagemart/contracts';
import { rpcCallerName } from '../redis-streams/redis-streams.connection.js';
import {
  REDIS_ACL_PROCESSES,
  callerOfRedisUser,
  queuesOf,
  redisAclDefinition,
  redisAclRules,
  redisUserName,
} from '@imagemart/contracts';
import { redisAclTemplate, redisPasswordVariable, redisUrlWithUser } from './redis-acl.users.js';

describe('Redis ACL rules', () => {
  it('names each user after the prefix and its process, and each caller after the process again', () => {
    expect(redisUserName('imagemart', 'storefront-api')).toBe('imagemart.storefront-api');
    expect(callerOfRedisUser('imagemart.catalog', 'imagemart')).toBe('catalog');
    expect(callerOfRedisUser('ops', 'imagemart')).toBe('ops');
    expect(callerOfRedisUser('default', 'imagemart')).toBeUndefined();
    expect(callerOfRedisUser(undefined, 'imagemart')).toBeUndefined();
    // A test prefix holds colons: the URL carries them encoded.
    const url = redisUrlWithUser('redis://127.0.0.1:6379', 'test:x:01ab.billing', 'p@ss/word');
    expect(url).toBe('redis://test%3Ax%3A01ab.billing:p%40ss%2Fword@127.0.0.1:6379');
    expect(rpcCallerName(url, 'test:x:01ab')).toBe('billing');
    expect(rpcCallerName('redis://127.0.0.1:6379', 'imagemart')).toBeUndefined();
    expect(rpcCallerName({ username: 'imagemart.permission' }, 'imagemart')).toBe('permission');
  });

  it('gives each process the queues it consumes and every queue its outbox relays to', () => {
    expect(queuesOf('catalog')).toEqual(
      [
        EventQueue.billing,
        EventQueue.bundling,
        EventQueue.catalog,
        INSTANCE_HOST_QUEUE,
        EventQueue.permission,
      ].sort(),
    );
    expect(queuesOf('permission')).toEqual([EventQueue.catalog, EventQueue.permission]);
    expect(queuesOf('billing')).toEqual(
      [EventQueue.billing, QueueName.stripeSync, EventQueue.permission].sort(),
    );
    expect(queuesOf('bundler-worker')).toEqual(
      [QueueName.bundling, EventQueue.bundling, EventQueue.catalog].sort(),
    );
    expect(queuesOf('storefront-api')).toEqual(Object.values(QueueName).sort());
    // Every routed event queue has a writer and a reader.
    for (const queue of new Set(Object.values(EVENT_ROUTES).flat())) {
      expect(
        REDIS_ACL_PROCESSES.filter((p) => queuesOf(p).includes(queue)).length,
        queue,
      ).toBeGreaterThanOrEqual(2);
    }
  });

  it("lets no process read another's reply lists, and only the services write to them", () => {
    for (const process of REDIS_ACL_PROCESSES) {
      const { grants } = redisAclDefinition('p', process);
      const replyKeys = grants.flatMap((g) => g.keys).filter((k) => k.includes(':rpc:reply:'));
      for (const key of replyKeys) {
        if (key.startsWith('%RW~')) expect(key).toBe(`%RW~p:rpc:reply:${process}:*`);
        else expect(key).toMatch(/^%W~p:rpc:reply:[a-z-]+:\*$/);
      }
      // Nothing touches every key, and no grant allows a keyless administrative command.
      expect(grants.flatMap((g) => g.keys).some((k) => /~\*$|~p:\*$/.test(k))).toBe(false);
      expect(redisAclRules('p', process).join(' ')).not.toMatch(
        /\+@|\+(keys|scan|flushall|flushdb|config|acl|debug|monitor|client\|list)\b/,
      );
    }
    // The gateway is answered by every service; the bundler-worker calls only the permission
    // service (a signing key's revocation) and serves no one.
    const writesReplies = (caller: string) =>
      REDIS_ACL_PROCESSES.filter((p) =>
        redisAclDefinition('p', p).grants.some((g) => g.keys.includes(`%W~p:rpc:reply:${caller}:*`)),
      );
    expect(writesReplies('storefront-api')).toEqual(['permission', 'catalog', 'billing']);
    expect(writesReplies('bundler-worker')).toEqual(['permission']);
    const bundlerRpcKeys = redisAclDefinition('p', 'bundler-worker')
      .grants.flatMap((g) => g.keys)
      .filter((k) => k.includes(':rpc:'));
    expect(bundlerRpcKeys.sort()).toEqual(['%RW~p:rpc:reply:bundler-worker:*', '%W~p:rpc:permission']);
  });

  it('writes a template with a password placeholder per user', () => {
    const template = redisAclTemplate('imagemart');
    expect(template).toContain('user default off');
    for (const process of REDIS_ACL_PROCESSES) {
      expect(template).toContain(`user ${redisUserName('imagemart', process)} reset on `);
      expect(template).toContain(`#{{sha256:${redisPasswordVariable(process)}}}\n`);
    }
    expect(redisPasswordVariable('bundler-worker')).toBe('REDIS_PASSWORD_BUNDLER_WORKER');
  });
});
