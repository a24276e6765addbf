import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EventQueue,
  PermissionPattern,
  type Caller,
  type DomainEventJob,
  type ImageChanged,
  type LaunchDecision,
  type SubscriptionChanged,
} from '@imagemart/contracts';
import { createPrismaClient, type PrismaClient } from '@imagemart/database';
import {
  DOMAIN_EVENT_HANDLERS,
  createQueue,
  createRpcClient,
  sendRpc,
  startRpcService,
  type DomainEventHandlers,
  type RedisStreamsClient,
  type RunningRpcService,
} from '@imagemart/messaging';
import {
  createTestDatabase,
  createTestRedisPrefix,
  TestIdentities,
  waitFor,
  type TestDatabase,
  type TestRedisPrefix,
} from '@imagemart/testing';
import { ImageProjectionService } from '../images/image-projection.service.js';
import { LaunchPermissionsService } from '../launch-permissions/launch-permissions.service.js';
import {
  UpstreamState,
  image,
  newAccountId,
  startPermissionInstance,
  startUpstreamStandIns,
} from '../permission.fixture.js';
import { PermissionModule } from '../permission.module.js';
import { permissionConfigSchema } from '../permission.config.js';
import { SubscriptionProjectionService } from '../subscriptions/subscription-projection.service.js';
import { DecisionCache } from './decision-cache.js';
import { decisionInvalidationChannel } from './decision-invalidation.bus.js';
import { LaunchDecisionService } from './launch-decision.service.js';

/**
 * The launch decision against PostgreSQL and Redis, on two replicas of the service that share a
 * database and a Redis prefix (A and B): every rule, its caching, and the invalidations that keep
 * a cached allow from outliving a revoke on either replica.
 */
let db: TestDatabase;
let redis: TestRedisPrefix;
let a: TestingModule;
let b: TestingModule;
let stopUpstream: () => Promise<void>;
const upstream = new UpstreamState();

const owner: Caller = { accountId: newAccountId(), roles: ['seller'] };
const PAID = 'prod-paid0000000000000001';
const OTHER_PAID = 'prod-paid0000000000000002';

beforeAll(async () => {
  db = await createTestDatabase('launch-decision');
  redis = createTestRedisPrefix('launch-decision');
  stopUpstream = await startUpstreamStandIns(redis.url, redis.prefix, upstream);
  a = await startPermissionInstance({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
  b = await startPermissionInstance({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await stopUpstream?.();
  await db?.drop();
  await redis?.cleanup();
});

const decide = (instance: TestingModule, accountId: string, imageId: string) =>
  instance.get(LaunchDecisionService).decide(accountId, imageId);
const allowed = (reason: LaunchDecision['reason']) => ({ allowed: true, reason });
const denied = (reason: LaunchDecision['reason']) => ({ allowed: false, reason });

async function registered(overrides: Partial<ImageChanged> = {}): Promise<ImageChanged> {
  const img = image({ ownerId: owner.accountId, ...overrides });
  await a.get(ImageProjectionService).apply(img);
  return img;
}

const modify = (imageId: string, add: object[], remove: object[] = [], instance = a) =>
  instance.get(LaunchPermissionsService).modify(owner, imageId, add as never, remove as never);

let subscriptionSeq = 0;
function subscription(accountId: string, productCode: string, entitled: boolean, revision = 1, id = `sub-${++subscriptionSeq}`): SubscriptionChanged {
  return { subscriptionId: id, accountId, productCode, status: entitled ? 'active' : 'canceled', entitled, revision };
}

describe('the rules', () => {
  it('lets the owner, the public and named accounts launch a free image, and no one else', async () => {
    const img = await registered();
    const named = newAccountId();
    const stranger = newAccountId();
    expect(await decide(a, owner.accountId, img.imageId)).toEqual(allowed('owner'));
    expect(await decide(a, named, img.imageId)).toEqual(denied('no-launch-permission'));
    await modify(img.imageId, [{ userId: named }]);
    expect(await decide(a, named, img.imageId)).toEqual(allowed('launch-permission'));
    expect(await decide(a, stranger, img.imageId)).toEqual(denied('no-launch-permission'));
    await modify(img.imageId, [{ group: 'all' }]);
    expect(await decide(a, stranger, img.imageId)).toEqual(allowed('public'));
    expect(await decide(b, stranger, img.imageId)).toEqual(allowed('public'));
  });

  it('holds the launch permission whatever the state of the share', async () => {
    const img = await registered();
    const named = newAccountId();
    await modify(img.imageId, [{ userId: named }]);
    for (const state of ['pending', 'rejected', 'accepted'] as const) {
      await db.prisma.permissionLaunchGrant.update({
        where: { imageId_accountId: { imageId: img.imageId, accountId: named } },
        data: { shareState: state },
      });
      a.get(DecisionCache).clear();
      expect(await decide(a, named, img.imageId)).toEqual(allowed('launch-permission'));
    }
  });

  it('lets no one, not even the owner, launch an image that is not available', async () => {
    for (const state of ['pending', 'failed', 'deregistered'] as const) {
      const img = await registered({ state });
      await modify(img.imageId, [{ group: 'all' }]).catch(() => undefined); // refused for a deregistered image
      expect(await decide(a, owner.accountId, img.imageId)).toEqual(denied('image-not-available'));
      expect(await decide(a, newAccountId(), img.imageId)).toEqual(denied('image-not-available'));
    }
  });

  it('checks a pending image with the catalog, whose event that it became available may still be on its way', async () => {
    const img = await registered({ state: 'pending', revision: 1 });
    upstream.images.set(img.imageId, { ...img, state: 'available', revision: 2 });
    expect(await decide(a, owner.accountId, img.imageId)).toEqual(allowed('owner'));
    expect(await db.prisma.permissionImage.findUnique({ where: { id: img.imageId } })).toMatchObject({ state: 'available', revision: 2 });
  });

  it('asks the catalog for an image it has not heard of, and says image-not-found when the catalog does not know it', async () => {
    const unknown = image({ ownerId: owner.accountId }).imageId;
    expect(await decide(a, owner.accountId, unknown)).toEqual(denied('image-not-found'));
    const fresh = image({ ownerId: owner.accountId, revision: 3 });
    upstream.images.set(fresh.imageId, fresh);
    expect(await decide(b, owner.accountId, fresh.imageId)).toEqual(allowed('owner'));
    expect(await db.prisma.permissionImage.findUnique({ where: { id: fresh.imageId } })).toMatchObject({ revision: 3 });
  });
});

describe('paid images', () => {
  it('are launched by their owner, and by others with a launch permission and an entitling subscription to every product code', async () => {
    const img = await registered({ productCodes: [PAID] });
    const buyer = newAccountId();
    expect(await decide(a, owner.accountId, img.imageId)).toEqual(allowed('owner'));
    expect(await decide(a, buyer, img.imageId)).toEqual(denied('no-launch-permission'));
    // Public and paid: anyone sees it, subscribers launch it.
    await modify(img.imageId, [{ group: 'all' }]);
    expect(await decide(a, buyer, img.imageId)).toEqual(denied('no-subscription'));
    await a.get(SubscriptionProjectionService).apply(subscription(buyer, PAID, true));
    expect(await decide(a, buyer, img.imageId)).toEqual(allowed('subscription'));
    expect(await decide(b, buyer, img.imageId)).toEqual(allowed('subscription'));

    const two = await registered({ productCodes: [PAID, OTHER_PAID] });
    await modify(two.imageId, [{ userId: buyer }]);
    expect(await decide(a, buyer, two.imageId)).toEqual(denied('no-subscription'));
    await a.get(SubscriptionProjectionService).apply(subscription(buyer, OTHER_PAID, true));
    expect(await decide(b, buyer, two.imageId)).toEqual(allowed('subscription'));
  });

  it('asks billing when the projection says no, so a buyer who subscribed a moment ago launches at once; the answer is cached', async () => {
    const img = await registered({ productCodes: [PAID] });
    await modify(img.imageId, [{ group: 'all' }]);
    const buyer = newAccountId();
    const billingCalls = () =>
      upstream.calls.filter((c) => c.pattern === 'billing.entitlement.check' && (c.data as { accountId: string }).accountId === buyer)
        .length;

    expect(await decide(a, buyer, img.imageId)).toEqual(denied('no-subscription'));
    expect(billingCalls()).toBe(1);
    expect(await decide(a, buyer, img.imageId)).toEqual(denied('no-subscription'));
    expect(billingCalls()).toBe(1); // cached

    // Billing knows before its event arrives; the event invalidates the account everywhere.
    upstream.entitlements.add(`${buyer}|${PAID}`);
    const sub = subscription(buyer, PAID, false, 1);
    await b.get(SubscriptionProjectionService).apply(sub); // an earlier state of the subscription: invalidates
    expect(await decide(a, buyer, img.imageId)).toEqual(allowed('subscription'));
    expect(billingCalls()).toBe(2);
    expect(await decide(a, buyer, img.imageId)).toEqual(allowed('subscription'));
    expect(billingCalls()).toBe(2);

    // The subscription is canceled: the event with the higher revision takes the launch away at once.
    upstream.entitlements.delete(`${buyer}|${PAID}`);
    await b.get(SubscriptionProjectionService).apply({ ...sub, status: 'canceled', entitled: false, revision: 2 });
    expect(await decide(a, buyer, img.imageId)).toEqual(denied('no-subscription'));
  });

  it('keeps a subscription row only for a higher revision', async () => {
    const buyer = newAccountId();
    const subs = a.get(SubscriptionProjectionService);
    const sub = subscription(buyer, PAID, true, 5);
    expect(await subs.apply(sub)).toBe(true);
    expect(await subs.apply({ ...sub, entitled: false, status: 'canceled', revision: 4 })).toBe(false);
    expect(await subs.apply({ ...sub, entitled: false, status: 'canceled', revision: 5 })).toBe(false);
    expect(await subs.entitledProductCodes(buyer)).toEqual([PAID]);
    expect(await subs.apply({ ...sub, entitled: false, status: 'past_due', revision: 6 })).toBe(true);
    expect(await subs.entitledProductCodes(buyer)).toEqual([]);
  });
});

describe('no stale allow after a revoke', () => {
  it('denies at once on the replica that made the change and on the other one', async () => {
    const img = await registered();
    for (let round = 0; round < 20; round++) {
      const buyer = newAccountId();
      await modify(img.imageId, [{ userId: buyer }], [], round % 2 ? a : b);
      // Both replicas decide, and cache, an allow.
      expect(await decide(a, buyer, img.imageId)).toEqual(allowed('launch-permission'));
      expect(await decide(b, buyer, img.imageId)).toEqual(allowed('launch-permission'));
      expect(a.get(DecisionCache).images.peek(img.imageId)?.grantees.has(buyer)).toBe(true);
      expect(b.get(DecisionCache).images.peek(img.imageId)?.grantees.has(buyer)).toBe(true);
      // Revoke on one replica; the very next decision on either is a deny.
      const [writer, other] = round % 2 ? [a, b] : [b, a];
      await modify(img.imageId, [], [{ userId: buyer }], writer);
      expect(await decide(other, buyer, img.imageId)).toEqual(denied('no-launch-permission'));
      expect(await decide(writer, buyer, img.imageId)).toEqual(denied('no-launch-permission'));
    }
  });

  it('denies at once after a reset, after making a public image private, and after the image is deregistered', async () => {
    const img = await registered();
    const buyer = newAccountId();
    await modify(img.imageId, [{ group: 'all' }]);
    expect(await decide(b, buyer, img.imageId)).toEqual(allowed('public'));
    await a.get(LaunchPermissionsService).reset(owner, img.imageId);
    expect(await decide(b, buyer, img.imageId)).toEqual(denied('no-launch-permission'));

    await modify(img.imageId, [{ group: 'all' }]);
    expect(await decide(b, buyer, img.imageId)).toEqual(allowed('public'));
    await modify(img.imageId, [], [{ group: 'all' }]);
    expect(await decide(b, buyer, img.imageId)).toEqual(denied('no-launch-permission'));

    await modify(img.imageId, [{ group: 'all' }]);
    expect(await decide(b, owner.accountId, img.imageId)).toEqual(allowed('owner'));
    await a.get(ImageProjectionService).apply({ ...img, state: 'deregistered', revision: img.revision + 1 });
    expect(await decide(b, owner.accountId, img.imageId)).toEqual(denied('image-not-available'));
  });

  it('never caches the state read before a revoke that commits while the decision is computed', async () => {
    const img = await registered();
    const cache = b.get(DecisionCache);
    const decisions = b.get(LaunchDecisionService);
    for (let round = 0; round < 20; round++) {
      const buyer = newAccountId();
      await modify(img.imageId, [{ userId: buyer }]);
      cache.clear();
      // A decision on B races the revoke on A; whatever it answers, afterwards B must deny.
      await Promise.all([decisions.decide(buyer, img.imageId), modify(img.imageId, [], [{ userId: buyer }])]);
      expect(await decisions.decide(buyer, img.imageId)).toEqual(denied('no-launch-permission'));
    }
  });

  it('turns the cache off while the invalidation channel is down, and back on, empty, once it returns', async () => {
    const img = await registered();
    const buyer = newAccountId();
    await modify(img.imageId, [{ group: 'all' }]);
    const cache = b.get(DecisionCache);
    await decide(b, buyer, img.imageId);
    expect(cache.images.peek(img.imageId)).toBeDefined();
    // Kill B's subscription connection from the server side, as a network cut would.
    const admin = await import('ioredis').then(({ Redis }) => new Redis(redis.url));
    try {
      // Only this test's replicas: their subscriptions carry the channel's name.
      const clients = (await admin.client('LIST')) as string;
      const subscribers = clients
        .split('\n')
        .filter((l) => l.includes(` name=${decisionInvalidationChannel(redis.prefix)} `))
        .map((l) => /id=(\d+)/.exec(l)?.[1]);
      expect(subscribers).toHaveLength(2);
      for (const id of subscribers) await admin.client('KILL', 'ID', id!);
      await waitFor(() => !cache.enabled, { timeoutMs: 2000, what: 'the cache to turn off' });
      expect(cache.images.peek(img.imageId)).toBeUndefined();
      await waitFor(() => cache.enabled, { timeoutMs: 5000, what: 'the cache to come back' });
      expect(cache.images.peek(img.imageId)).toBeUndefined();
      // And invalidations flow again.
      await decide(b, buyer, img.imageId);
      await modify(img.imageId, [], [{ group: 'all' }]);
      expect(await decide(b, buyer, img.imageId)).toEqual(denied('no-launch-permission'));
    } finally {
      admin.disconnect();
    }
  });
});

describe('the service as deployed', () => {
  let replicas: RunningRpcService[] = [];
  let client: RedisStreamsClient;
  let prisma: PrismaClient;
  let redis2: TestRedisPrefix;

  beforeAll(async () => {
    redis2 = createTestRedisPrefix('launch-decision-rpc');
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: redis2.url,
      REDIS_PREFIX: redis2.prefix,
      LOG_LEVEL: 'silent',
      ...TestIdentities.shared().env('permission'),
    };
    replicas = await Promise.all(
      [0, 1].map(() =>
        startRpcService({
          service: 'permission',
          configSchema: permissionConfigSchema,
          imports: [PermissionModule],
          outboxSchema: 'permission',
          eventQueue: EventQueue.permission,
          env,
        }),
      ),
    );
    client = createRpcClient('permission', {
      connection: redis2.url,
      prefix: redis2.prefix,
      timeoutMs: 5000,
      signer: TestIdentities.shared().asAllowedSender(),
    });
    await client.connect();
    prisma = createPrismaClient(db.url);
  });

  afterAll(async () => {
    await client?.close();
    await Promise.all(replicas.map((r) => r.stop()));
    await prisma?.$disconnect();
    await redis2?.cleanup();
  });

  it('answers permission.launch.decide over the transport and applies catalog.image.changed and billing.subscription.changed from its queue', async () => {
    expect(replicas[0].app.get<DomainEventHandlers>(DOMAIN_EVENT_HANDLERS)).toHaveProperty(['catalog.image.changed']);
    const queue = createQueue<DomainEventJob>(EventQueue.permission, { url: redis2.url, prefix: redis2.prefix });
    try {
      const img = image({ ownerId: owner.accountId, productCodes: [PAID] });
      const buyer = newAccountId();
      await queue.add('catalog.image.changed', TestIdentities.shared().signedEvent('catalog', { id: 'e1', type: 'catalog.image.changed', payload: img, occurredAt: new Date().toISOString() }, EventQueue.permission));
      await waitFor(() => prisma.permissionImage.findUnique({ where: { id: img.imageId } }).then((r) => r ?? undefined), {
        what: 'the image projected',
      });
      const ask = (accountId: string) =>
        sendRpc<LaunchDecision>(client, PermissionPattern.launchDecide, { accountId, imageId: img.imageId });
      expect(await ask(owner.accountId)).toEqual(allowed('owner'));
      const lp = replicas[0].app.get(LaunchPermissionsService);
      await lp.modify(owner, img.imageId, [{ userId: buyer }], []);
      // No billing replica listens on this prefix: the buyer's subscription comes as an event.
      await queue.add(
        'billing.subscription.changed',
        TestIdentities.shared().signedEvent(
          'billing',
          { id: 'e2', type: 'billing.subscription.changed', payload: subscription(buyer, PAID, true), occurredAt: new Date().toISOString() },
          EventQueue.permission,
        ),
      );
      await waitFor(() => prisma.permissionSubscription.count({ where: { accountId: buyer } }).then((n) => n > 0), {
        what: 'the subscription projected',
      });
      // Both replicas answer (the stream spreads the calls); every answer is the same.
      const answers = await Promise.all(Array.from({ length: 20 }, () => ask(buyer)));
      expect(new Set(answers.map((x) => JSON.stringify(x)))).toEqual(new Set([JSON.stringify(allowed('subscription'))]));
      await replicas[1].app.get(LaunchPermissionsService).modify(owner, img.imageId, [], [{ userId: buyer }]);
      const after = await Promise.all(Array.from({ length: 20 }, () => ask(buyer)));
      expect(new Set(after.map((x) => JSON.stringify(x)))).toEqual(new Set([JSON.stringify(denied('no-launch-permission'))]));
      await expect(sendRpc(client, PermissionPattern.launchDecide, { accountId: 'x', imageId: img.imageId })).rejects.toMatchObject({
        code: 'InvalidParameterValue',
      });
    } finally {
      await queue.close();
    }
  });
});
