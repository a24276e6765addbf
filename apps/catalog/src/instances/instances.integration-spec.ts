import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import type { TestingModule } from '@nestjs/testing';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildManifest,
  bundle,
  exportKeyPem,
  generatePlatformKeys,
  keyFingerprint,
  parseManifest,
  signManifest,
  type PlatformKeys,
} from '@imagemart/bundle-format';
import { loadConfig } from '@imagemart/config';
import {
  BillingPattern,
  BundleKeys,
  ErrorCode,
  PermissionPattern,
  decisionGenerationKey,
  platformKeysKey,
  type Caller,
  type InstanceChanged,
  type LaunchDecision,
  type LaunchDecisionRequest,
  type PricingQuoteResponse,
} from '@imagemart/contracts';
import { OutboxRelay, outboxRecords } from '@imagemart/database';
import { DomainException, QueueRegistry, RedisStreamsServer } from '@imagemart/messaging';
import { createObjectStore, type ObjectStore } from '@imagemart/object-store';
import { requestContext } from '@imagemart/observability';
import {
  createTestDatabase,
  createTestRedisPrefix,
  serviceTestingModule,
  waitFor,
  type TestDatabase,
  type TestRedisPrefix,
  TestIdentities,
} from '@imagemart/testing';
import { CatalogModule } from '../catalog.module.js';
import { catalogConfigSchema, type CatalogConfig } from '../catalog.config.js';
import { ImagesService } from '../images/images.service.js';
import { InstancesRepository } from './instances.repository.js';
import { InstancesService } from './instances.service.js';
import { LaunchCounts } from './launch-counts.js';
import { LaunchDecisions } from './launch-decisions.js';
import { LaunchRateLimiter } from './launch-rate.limiter.js';
import { LaunchUpstreamClient } from './launch-upstream.client.js';

/**
 * Launch, list, get and terminate against the real database and Redis, with the instance host
 * queue relayed from the outbox and run by the simulated host over a filesystem object store.
 * Billing's price quote and permission's decision come from small stand-ins on the RPC transport
 * (both services are tested on their own; e2e/instances.e2e-spec.ts runs the real ones).
 */
let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let instances: InstancesService;
let images: ImagesService;
let relay: OutboxRelay;
let queues: QueueRegistry;
const upstream: INestMicroservice[] = [];
let storeDir: string;
let config: CatalogConfig;
let store: ObjectStore;

const seller: Caller = { accountId: '200000000001', roles: ['seller'] };
const buyer: Caller = { accountId: '200000000002', roles: ['buyer'] };
const other: Caller = { accountId: '200000000003', roles: ['buyer'] };
const RUNNING_LIMIT = 6;

/**
 * What the stand-in permission service answers, per account and image: `{ allowed: true, reason:
 * 'public' }` unless set here. Like the real one, {@link answer} moves the image's decision
 * generation when it changes an answer.
 */
const answers = new Map<string, LaunchDecision>();
/** Decisions the stand-in was asked for, per account and image. */
const asked = new Map<string, number>();
/** Set to move the image's generation while a decision is being answered (a change racing it). */
let changeWhileAnswering: string | undefined;
let generations: Redis;

async function answer(accountId: string, imageId: string, decision: LaunchDecision | undefined): Promise<void> {
  if (decision) answers.set(`${accountId}/${imageId}`, decision);
  else answers.delete(`${accountId}/${imageId}`);
  await generations.incr(decisionGenerationKey(redis.prefix, 'image', imageId));
}

@Controller()
class UpstreamStandIn {
  @MessagePattern(PermissionPattern.launchDecide)
  async decide(@Payload() req: LaunchDecisionRequest): Promise<LaunchDecision> {
    const key = `${req.accountId}/${req.imageId}`;
    asked.set(key, (asked.get(key) ?? 0) + 1);
    if (changeWhileAnswering === req.imageId) {
      changeWhileAnswering = undefined;
      await generations.incr(decisionGenerationKey(redis.prefix, 'image', req.imageId));
    }
    return answers.get(key) ?? { allowed: true, reason: 'public' };
  }

  @MessagePattern(BillingPattern.pricingQuote)
  quote(): PricingQuoteResponse {
    return {
      currency: 'USD',
      instanceTypes: [
        { instanceType: 't3.micro', baseHourly: '0.0104' },
        { instanceType: 'm5.large', baseHourly: '0.096' },
      ],
      products: {},
    };
  }
}
@Module({ controllers: [UpstreamStandIn] })
class UpstreamStandInModule {}

beforeAll(async () => {
  db = await createTestDatabase('catalog_instances');
  redis = createTestRedisPrefix('catalog-instances');
  generations = new Redis(redis.url);
  storeDir = await mkdtemp(path.join(tmpdir(), 'imagemart-instances-'));
  keys = await generatePlatformKeys();
  // The catalog holds no private key: it reads the public signing key the bundler-worker publishes.
  const published = (key: PlatformKeys['signing']['publicKey'], algorithm: string) => ({ keyId: keyFingerprint(key), algorithm, publicKeyPem: exportKeyPem(key) });
  await generations.set(
    platformKeysKey(redis.prefix),
    JSON.stringify({
      wrapping: published(keys.wrapping.publicKey, 'RSA-OAEP-SHA256'),
      signing: published(keys.signing.publicKey, 'Ed25519'),
      publishedAt: new Date().toISOString(),
    }),
  );
  config = loadConfig(catalogConfigSchema, {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    OBJECT_STORE_ROOT: storeDir,
    INSTANCE_RUNNING_LIMIT: String(RUNNING_LIMIT),
    INSTANCE_LAUNCH_BURST: '1000',
    LAUNCH_GRANT_SECRET: 'x'.repeat(40),
    LOG_LEVEL: 'silent',
    ...TestIdentities.shared().env('catalog'),
  });
  store = await createObjectStore({ driver: 'fs', root: storeDir });
  for (const service of ['permission', 'billing'] as const) {
    const app = await NestFactory.createMicroservice(UpstreamStandInModule, {
      strategy: new RedisStreamsServer({
        connection: redis.url,
        prefix: redis.prefix,
        service,
        trustedKeys: TestIdentities.shared().trustedKeys(service),
      }),
      logger: false,
    });
    await app.listen();
    upstream.push(app);
  }
  moduleRef = await serviceTestingModule({ prisma: db.prisma, config, imports: [CatalogModule] }).compile();
  await moduleRef.init();
  instances = moduleRef.get(InstancesService);
  images = moduleRef.get(ImagesService);
  queues = new QueueRegistry({ url: redis.url, prefix: redis.prefix });
  relay = new OutboxRelay({ prisma: db.prisma, schema: 'catalog', queues: (name) => queues.get(name), intervalMs: 20 });
  relay.start();

  // A real bundle in the store, signed with the platform key the host checks against.
  bundled = async (name: string, signer: PlatformKeys = keys) => {
    const image = await images.register(seller, {
      name,
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      rootDeviceType: 'ebs',
      blockDeviceMappings: [],
      platform: 'linux',
      productCodes: [],
    });
    const manifestKey = BundleKeys.manifest(image.imageId);
    const result = await bundle(Readable.from([Buffer.from(`${name} `.repeat(50_000))]), {
      image: { name, user: seller.accountId },
      machineConfiguration: { architecture: 'x86_64' },
      platformPublicKey: keys.wrapping.publicKey,
      signingKey: signer.signing.privateKey,
      partSize: 64 * 1024,
      blockSize: 64 * 1024,
      onPart: async (part) => {
        await store.put(BundleKeys.part(manifestKey, part.filename), part.data);
      },
    });
    await store.put(manifestKey, Buffer.from(result.manifestXml));
    // What the bundler reports as verified: the manifest's digest and the key that signed it.
    await images.setState({
      imageId: image.imageId,
      state: 'available',
      manifestLocation: manifestKey,
      imageSize: result.imageSize,
      manifestDigest: sha256(result.manifestXml),
      signerKeyId: keyFingerprint(signer.signing.publicKey),
    });
    return image.imageId;
  };
  imageId = await bundled('launchable');
  brokenImageId = await bundled('broken-bundle');
  pendingImageId = (
    await images.register(seller, {
      name: 'still-pending',
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      rootDeviceType: 'ebs',
      blockDeviceMappings: [],
      platform: 'linux',
      productCodes: [],
    })
  ).imageId;
}, 60_000);

afterAll(async () => {
  await relay?.stop();
  await queues?.close();
  await moduleRef?.close();
  for (const app of upstream) await app.close();
  generations?.disconnect();
  await store?.close();
  await db?.drop();
  await redis?.cleanup();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
});

let keys: PlatformKeys;
let bundled: (name: string, signer?: PlatformKeys) => Promise<string>;
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
let imageId: string;
let brokenImageId: string;
let pendingImageId: string;
let requests = 0;

/** Each call runs as its own request, as the RPC server would run it. */
const asRequest = <T>(fn: () => Promise<T>) => requestContext.run({ requestId: `req-${++requests}` }, fn);
const launch = (caller: Caller, body: { imageId: string; instanceType?: string; count?: number; clientToken?: string }) =>
  asRequest(() => instances.launch(caller, { instanceType: 't3.micro', count: 1, ...body }));

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof DomainException) return err.code;
    throw err;
  }
  throw new Error('expected a DomainException');
}

async function eventsOf(instanceId: string): Promise<InstanceChanged[]> {
  const rows = await db.prisma.catalogOutboxEvent.findMany({
    where: { type: 'catalog.instance.changed', payload: { path: ['instanceId'], equals: instanceId } },
    orderBy: { createdAt: 'asc' },
  });
  return rows.map((r) => r.payload as unknown as InstanceChanged);
}

const stateOf = async (id: string) => (await db.prisma.catalogInstance.findUniqueOrThrow({ where: { id } })).state;

describe('launch', () => {
  it('launches count instances pending, publishes one event each, counts the launches, and the simulated host runs them', async () => {
    const before = (await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: imageId } })).launchCount;
    const result = await launch(buyer, { imageId, count: 2 });
    expect(result.reservationId).toMatch(/^r-[0-9a-f]{17}$/);
    expect(result.instances.map((i) => [i.launchIndex, i.state, i.imageId, i.ownerId, i.productCode])).toEqual([
      [0, 'pending', imageId, buyer.accountId, null],
      [1, 'pending', imageId, buyer.accountId, null],
    ]);
    // The launch tallies its count beside the image; the fold adds it to the counter.
    expect((await db.prisma.catalogImageLaunchTally.findMany({ where: { imageId } })).map((t) => t.launches)).toContain(2);
    await moduleRef.get(LaunchCounts).fold();
    expect((await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: imageId } })).launchCount).toBe(before + 2n);

    for (const instance of result.instances) {
      await waitFor(async () => (await stateOf(instance.instanceId)) === 'running', { timeoutMs: 20_000, what: 'running' });
      const row = await db.prisma.catalogInstance.findUniqueOrThrow({ where: { id: instance.instanceId } });
      expect(row).toMatchObject({ stateReasonCode: 'Host.Started', revision: 2, stoppedAt: null });
      const events = await eventsOf(instance.instanceId);
      expect(events).toEqual([
        {
          instanceId: instance.instanceId,
          accountId: buyer.accountId,
          imageId,
          sellerId: seller.accountId,
          productCode: null,
          instanceType: 't3.micro',
          state: 'pending',
          runningAt: null,
          stoppedAt: null,
          revision: 1,
        },
        expect.objectContaining({ state: 'running', runningAt: row.runningAt!.toISOString(), stoppedAt: null, revision: 2 }),
      ]);
    }
  });

  it('answers the same instances for the same client token, and IdempotentParameterMismatch for another request', async () => {
    const first = await launch(buyer, { imageId, clientToken: 'token-a' });
    const again = await launch(buyer, { imageId, clientToken: 'token-a' });
    expect(again.instances.map((i) => i.instanceId)).toEqual(first.instances.map((i) => i.instanceId));
    expect(again.reservationId).toBe(first.reservationId);
    expect(await codeOf(launch(buyer, { imageId, clientToken: 'token-a', count: 2 }))).toBe(ErrorCode.IdempotentParameterMismatch);
    expect(await codeOf(launch(buyer, { imageId, clientToken: 'token-a', instanceType: 'm5.large' }))).toBe(
      ErrorCode.IdempotentParameterMismatch,
    );
    // Another account's token is its own.
    const others = await launch(other, { imageId, clientToken: 'token-a' });
    expect(others.instances[0]?.instanceId).not.toBe(first.instances[0]?.instanceId);
    expect(await db.prisma.catalogReservation.count({ where: { clientToken: 'token-a' } })).toBe(2);
  });

  it('launches once for a request that runs twice, and once for the same token sent at once', async () => {
    const body = { imageId, instanceType: 't3.micro', count: 1 };
    const [a, b] = await requestContext.run({ requestId: 'replayed-request' }, () =>
      Promise.all([instances.launch(other, body), instances.launch(other, body)]),
    );
    expect(a.instances[0]?.instanceId).toBe(b.instances[0]?.instanceId);
    const [c, d] = await Promise.all([launch(other, { imageId, clientToken: 'racing' }), launch(other, { imageId, clientToken: 'racing' })]);
    expect(c.instances[0]?.instanceId).toBe(d.instances[0]?.instanceId);
    expect(await db.prisma.catalogInstance.count({ where: { reservationId: { in: [a.reservationId, c.reservationId] } } })).toBe(2);
  });

  it('refuses bad launches with the EC2 code, launching nothing and publishing nothing', async () => {
    // Launch events (the host's later ones are for earlier launches).
    const launchEvents = { where: { type: 'catalog.instance.changed', payload: { path: ['state'], equals: 'pending' } } };
    const before = await db.prisma.catalogInstance.count();
    const eventsBefore = await db.prisma.catalogOutboxEvent.count(launchEvents);
    expect(await codeOf(launch(buyer, { imageId: 'ami-00000000000000000' }))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(launch(buyer, { imageId, instanceType: 'zz9.huge' }))).toBe(ErrorCode.InvalidInstanceType);
    await answer(buyer.accountId, pendingImageId, { allowed: false, reason: 'image-not-available' });
    // Pending: the owner learns so; anyone else cannot see the image at all.
    expect(await codeOf(launch(seller, { imageId: pendingImageId }))).toBe(ErrorCode.InvalidAMIIDUnavailable);
    expect(await codeOf(launch(buyer, { imageId: pendingImageId }))).toBe(ErrorCode.InvalidAMIIDNotFound);
    await answer(buyer.accountId, brokenImageId, { allowed: false, reason: 'no-subscription' });
    expect(await codeOf(launch(buyer, { imageId: brokenImageId }))).toBe(ErrorCode.OptInRequired);
    await answer(buyer.accountId, brokenImageId, { allowed: false, reason: 'no-launch-permission' });
    expect(await codeOf(launch(buyer, { imageId: brokenImageId }))).toBe(ErrorCode.InvalidAMIIDNotFound);
    await answer(buyer.accountId, pendingImageId, undefined);
    await answer(buyer.accountId, brokenImageId, undefined);
    expect(await db.prisma.catalogInstance.count()).toBe(before);
    expect(await db.prisma.catalogOutboxEvent.count(launchEvents)).toBe(eventsBefore);
  });

  it('enforces the running-instance limit all or nothing', async () => {
    const quota: Caller = { accountId: '200000000009', roles: ['buyer'] };
    await launch(quota, { imageId, count: RUNNING_LIMIT - 1 });
    expect(await codeOf(launch(quota, { imageId, count: 2 }))).toBe(ErrorCode.InstanceLimitExceeded);
    expect(await db.prisma.catalogInstance.count({ where: { accountId: quota.accountId } })).toBe(RUNNING_LIMIT - 1);
    const last = await launch(quota, { imageId, count: 1 });
    expect(await codeOf(launch(quota, { imageId }))).toBe(ErrorCode.InstanceLimitExceeded);
    // A terminated instance no longer counts.
    await asRequest(() => instances.terminate(quota, last.instances[0].instanceId));
    expect((await launch(quota, { imageId })).instances).toHaveLength(1);
  });

  it('terminates an instance whose bundle is gone, with the reason, and meters nothing', async () => {
    const manifest = (await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: brokenImageId } })).manifestLocation!;
    await unlink(path.join(storeDir, manifest));
    const result = await launch(buyer, { imageId: brokenImageId });
    const id = result.instances[0].instanceId;
    await waitFor(async () => (await stateOf(id)) === 'terminated', { timeoutMs: 20_000, what: 'terminated' });
    const view = await instances.get(buyer, id);
    expect(view).toMatchObject({ state: 'terminated', runningAt: null, stateReason: { code: 'Server.InvalidBundle' } });
    expect((await eventsOf(id)).map((e) => [e.state, e.runningAt, e.revision])).toEqual([
      ['pending', null, 1],
      ['terminated', null, 2],
    ]);
  });
});

describe('the launch and change statements', () => {
  it('writes nothing for a launch whose image stopped being available after the launch read it', async () => {
    const repo = moduleRef.get(InstancesRepository);
    const image = await images.register(seller, {
      name: 'deregistered-in-the-race',
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      rootDeviceType: 'ebs',
      blockDeviceMappings: [],
      platform: 'linux',
      productCodes: [],
    });
    // The launch read it available; the deregister commits before the launch does.
    await db.prisma.catalogImage.update({ where: { id: image.imageId }, data: { state: 'deregistered' } });
    const now = new Date();
    const reservation = {
      id: 'r-0123456789abcdef0',
      accountId: buyer.accountId,
      clientToken: null,
      requestDigest: 'a'.repeat(64),
      imageId: image.imageId,
      instanceType: 't3.micro',
      instanceCount: 1,
      createdAt: now,
      updatedAt: now,
    };
    const instance = {
      id: 'i-0123456789abcdef0',
      reservationId: reservation.id,
      launchIndex: 0,
      accountId: buyer.accountId,
      imageId: image.imageId,
      sellerId: seller.accountId,
      productCode: null,
      instanceType: 't3.micro',
      state: 'pending',
      stateReasonCode: 'Launch.Accepted',
      stateReasonMessage: 'accepted',
      stateChangedAt: now,
      runningAt: null,
      stoppedAt: null,
      manifestLocation: null,
      revision: 1,
      createdAt: now,
      updatedAt: now,
    };
    const event = outboxRecords([{ type: 'catalog.instance.changed', queue: 'billing-events', payload: { instanceId: instance.id } }]);

    await expect(repo.reserve(reservation, [instance], event, 100)).resolves.toEqual({ outcome: 'unavailable' });
    expect(await db.prisma.catalogReservation.count({ where: { id: reservation.id } })).toBe(0);
    expect(await db.prisma.catalogInstance.count({ where: { id: instance.id } })).toBe(0);
    expect(await db.prisma.catalogOutboxEvent.count({ where: { id: event[0].id } })).toBe(0);
    expect(await db.prisma.catalogImageLaunchTally.count({ where: { imageId: image.imageId } })).toBe(0);
    expect((await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: image.imageId } })).launchCount).toBe(0n);
  });

  it('refuses to launch an image deregistered since a launch kept its record, launching nothing', async () => {
    const image = await images.register(seller, {
      name: 'deregistered-after-a-launch',
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      rootDeviceType: 'ebs',
      blockDeviceMappings: [],
      platform: 'linux',
      productCodes: [],
    });
    await images.setState({ imageId: image.imageId, state: 'available', manifestLocation: BundleKeys.manifest(image.imageId), imageSize: 1 });
    await launch(other, { imageId: image.imageId });
    await asRequest(() => images.deregister(seller, image.imageId));
    const before = await db.prisma.catalogInstance.count({ where: { imageId: image.imageId } });

    // The decision (the stand-in, like a projection the deregister has not reached yet) still
    // allows it, and this process keeps the image's record from before: the launch statement
    // refuses it, and the caller learns only what it may: another account gets the 404 of a
    // missing image at once, the owner the 409.
    expect(await codeOf(launch(other, { imageId: image.imageId }))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(launch(other, { imageId: image.imageId }))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(launch(seller, { imageId: image.imageId }))).toBe(ErrorCode.InvalidAMIIDUnavailable);
    expect(await db.prisma.catalogInstance.count({ where: { imageId: image.imageId } })).toBe(before);
  });

  it("answers a non-owner's launch of an image deregistered under a kept record 404, on every path", async () => {
    const image = await images.register(seller, {
      name: 'deregistered-kept-record',
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      rootDeviceType: 'ebs',
      blockDeviceMappings: [],
      platform: 'linux',
      productCodes: [],
    });
    await images.setState({ imageId: image.imageId, state: 'available', manifestLocation: BundleKeys.manifest(image.imageId), imageSize: 1 });
    // A launch keeps the record (LAUNCH_IMAGE_CACHE_TTL_MS) and the allowance of a public image.
    const launcher: Caller = { accountId: '200000000061', roles: ['buyer'] };
    await launch(launcher, { imageId: image.imageId });
    // Deregistered straight in the database: no process saw it, as with another catalog replica.
    await db.prisma.catalogImage.update({ where: { id: image.imageId }, data: { state: 'deregistered' } });
    const before = await db.prisma.catalogInstance.count({ where: { imageId: image.imageId } });
    expect(await codeOf(launch(launcher, { imageId: image.imageId }))).toBe(ErrorCode.InvalidAMIIDNotFound);
    // Read afresh (the kept record was dropped): still 404 for a non-owner, 409 for the owner.
    expect(await codeOf(launch(other, { imageId: image.imageId }))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(launch(seller, { imageId: image.imageId }))).toBe(ErrorCode.InvalidAMIIDUnavailable);
    expect(await db.prisma.catalogInstance.count({ where: { imageId: image.imageId } })).toBe(before);
  });

  it('writes a state change and its events only over the revision it was computed from', async () => {
    const repo = moduleRef.get(InstancesRepository);
    const [launched] = (await launch(other, { imageId })).instances;
    const row = await db.prisma.catalogInstance.findUniqueOrThrow({ where: { id: launched.instanceId } });
    const now = new Date();
    const stale = outboxRecords([{ type: 'catalog.instance.changed', queue: 'billing-events', payload: { instanceId: row.id } }]);
    const next = { ...row, state: 'terminated', stateChangedAt: now, stoppedAt: now, revision: row.revision + 1, updatedAt: now };

    // Someone else changed it since it was read: nothing is written.
    await expect(repo.change(next, row.revision - 1, stale)).resolves.toBe(false);
    expect(await db.prisma.catalogOutboxEvent.count({ where: { id: stale[0].id } })).toBe(0);
    expect((await db.prisma.catalogInstance.findUniqueOrThrow({ where: { id: row.id } })).revision).toBe(row.revision);

    const fresh = outboxRecords([{ type: 'catalog.instance.changed', queue: 'billing-events', payload: { instanceId: row.id } }]);
    await expect(repo.change(next, row.revision, fresh)).resolves.toBe(true);
    expect(await db.prisma.catalogOutboxEvent.count({ where: { id: fresh[0].id } })).toBe(1);
    expect(await db.prisma.catalogInstance.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({ state: 'terminated', revision: row.revision + 1 });
  });
});

describe('the host checks the manifest verified for the image', () => {
  let launchers = 0;
  const launchAndSettle = async (id: string) => {
    // An account of its own per launch: the running-instance limit is not what is tested here.
    const launcher: Caller = { accountId: String(200000000100 + ++launchers), roles: ['buyer'] };
    const [instance] = (await launch(launcher, { imageId: id })).instances;
    await waitFor(async () => ['running', 'terminated'].includes(await stateOf(instance.instanceId)), { timeoutMs: 20_000, what: 'the host job' });
    return db.prisma.catalogInstance.findUniqueOrThrow({ where: { id: instance.instanceId } });
  };

  it('refuses a manifest replaced in the store after verification, even one signed with the platform key', async () => {
    const id = await bundled('manifest-replaced');
    expect((await launchAndSettle(id)).state).toBe('running');
    const key = BundleKeys.manifest(id);
    const xml = await readFile(path.join(storeDir, key));
    // Same parts, a changed name, signed again with the platform's own key: a valid signature,
    // but not the manifest the bundler verified.
    const manifest = parseManifest(xml);
    const replaced = buildManifest(signManifest({ ...manifest, image: { ...manifest.image, name: 'replaced' } }, keys.signing.privateKey));
    await store.put(key, Buffer.from(replaced));

    const row = await launchAndSettle(id);
    expect(row).toMatchObject({ state: 'terminated', runningAt: null, stateReasonCode: 'Server.ManifestDigestMismatch' });
    expect(row.stateReasonMessage).toContain((await db.prisma.catalogImage.findUniqueOrThrow({ where: { id } })).manifestDigest);
  });

  it('verifies a seller-made bundle with the key the image was verified with, and refuses unknown key ids', async () => {
    const sellerKeys = await generatePlatformKeys();
    const id = await bundled('seller-signed', sellerKeys);
    const sellerKeyId = keyFingerprint(sellerKeys.signing.publicKey);
    // Without the upload that brought the seller's key, the host knows no such key: refused.
    const unknown = await launchAndSettle(id);
    expect(unknown).toMatchObject({ state: 'terminated', stateReasonCode: 'Server.InvalidBundle' });
    expect(unknown.stateReasonMessage).toContain(sellerKeyId);

    // The upload of the seller-made bundle names the key: launched.
    await db.prisma.catalogUpload.create({
      data: {
        id: `upl-${id.slice(4)}`,
        imageId: id,
        ownerId: seller.accountId,
        size: 1n,
        sha256: 'a'.repeat(64),
        compression: 'zstd',
        partSize: 1,
        partCount: 1,
        state: 'complete',
        bundle: { manifestXml: '', signerKeyId: sellerKeyId, signerPublicKeyPem: exportKeyPem(sellerKeys.signing.publicKey), partSize: 1, partFilenames: [], imageSize: 1 },
      },
    });
    expect((await launchAndSettle(id)).state).toBe('running');

    // An image recorded as verified with a key nobody knows, or with no verified manifest at all.
    await db.prisma.catalogImage.update({ where: { id }, data: { signerKeyId: `sha256:${'e'.repeat(64)}` } });
    const forged = await launchAndSettle(id);
    expect(forged).toMatchObject({ state: 'terminated', stateReasonCode: 'Server.InvalidBundle' });
    await db.prisma.catalogImage.update({ where: { id }, data: { signerKeyId: null, manifestDigest: null } });
    const unverified = await launchAndSettle(id);
    expect(unverified).toMatchObject({ state: 'terminated', stateReasonCode: 'Server.InvalidBundle', stateReasonMessage: 'The image has no verified manifest to start from.' });
  });
});

describe('popularity', () => {
  it("counts other accounts' launches only: the owner's own are not tallied", async () => {
    const counts = moduleRef.get(LaunchCounts);
    await counts.fold();
    const before = (await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: imageId } })).launchCount;
    await launch(seller, { imageId, count: 3 });
    expect(await db.prisma.catalogImageLaunchTally.count({ where: { imageId } })).toBe(0);
    await launch({ accountId: '200000000051', roles: ['buyer'] }, { imageId, count: 2 });
    await counts.fold();
    expect((await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: imageId } })).launchCount).toBe(before + 2n);
  });
});

describe('launch counts', () => {
  const tally = (id: string, launches: number) => db.prisma.catalogImageLaunchTally.create({ data: { imageId: id, launches } });
  const countOf = async (id: string) => (await db.prisma.catalogImage.findUniqueOrThrow({ where: { id } })).launchCount;

  it('folds every tally into its image once, even with two folds at the same time', async () => {
    const counts = moduleRef.get(LaunchCounts);
    await counts.fold();
    const before = await countOf(imageId);
    await Promise.all(Array.from({ length: 40 }, (_, i) => tally(imageId, 1 + (i % 3))));
    const expected = Array.from({ length: 40 }, (_, i) => 1 + (i % 3)).reduce((a, b) => a + b, 0);

    // Three folds at once (the module's own timer may fold some of them first): each tally counted once.
    await Promise.all([counts.fold(), counts.fold(), counts.fold()]);
    await counts.fold();
    expect(await countOf(imageId)).toBe(before + BigInt(expected));
    expect(await db.prisma.catalogImageLaunchTally.count({ where: { imageId } })).toBe(0);
  });

  it('leaves the tally of an image someone holds for the next fold, without waiting for it', async () => {
    const counts = moduleRef.get(LaunchCounts);
    await counts.fold();
    const before = await countOf(imageId);
    await tally(imageId, 5);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM catalog.image WHERE id = $1 FOR NO KEY UPDATE`, [imageId]);
      expect(await counts.fold()).toBe(0);
      expect(await countOf(imageId)).toBe(before);
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    // The process's own fold timer may have taken it first.
    expect(await counts.fold()).toBeLessThanOrEqual(1);
    expect(await countOf(imageId)).toBe(before + 5n);
  });

  it('makes a deregister wait for a launch that checked the image, and launches of one image not wait for each other', async () => {
    const image = await images.register(seller, {
      name: 'held-by-a-launch',
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      rootDeviceType: 'ebs',
      blockDeviceMappings: [],
      platform: 'linux',
      productCodes: [],
    });
    await images.setState({ imageId: image.imageId, state: 'available', manifestLocation: BundleKeys.manifest(image.imageId), imageSize: 1 });
    const launcher = new pg.Client({ connectionString: db.url });
    const second = new pg.Client({ connectionString: db.url });
    const deregister = new pg.Client({ connectionString: db.url });
    await Promise.all([launcher.connect(), second.connect(), deregister.connect()]);
    const reserve = (c: pg.Client, account: string, suffix: string) => {
      const now = new Date().toISOString();
      const reservation = {
        id: `r-00000000000000${suffix}`,
        account_id: account,
        client_token: null,
        request_digest: 'a'.repeat(64),
        image_id: image.imageId,
        instance_type: 't3.micro',
        instance_count: 1,
        created_at: now,
        updated_at: now,
      };
      const instance = {
        id: `i-00000000000000${suffix}`,
        reservation_id: reservation.id,
        launch_index: 0,
        account_id: account,
        image_id: image.imageId,
        seller_id: seller.accountId,
        product_code: null,
        instance_type: 't3.micro',
        state: 'pending',
        state_reason_code: 'Launch.Accepted',
        state_reason_message: 'accepted',
        state_changed_at: now,
        running_at: null,
        stopped_at: null,
        manifest_location: null,
        revision: 1,
        created_at: now,
        updated_at: now,
      };
      return c.query<{ outcome: string }>(`SELECT outcome FROM catalog.launch_reserve($1, $2::jsonb, $3::jsonb, '[]'::jsonb, 100)`, [
        account,
        JSON.stringify(reservation),
        JSON.stringify([instance]),
      ]);
    };
    try {
      await launcher.query('BEGIN');
      expect((await reserve(launcher, buyer.accountId, 'a01')).rows[0]?.outcome).toBe('created');
      // Another account's launch of the image goes through while the first is open.
      await second.query('BEGIN');
      await second.query(`SET LOCAL lock_timeout = '2s'`);
      expect((await reserve(second, '222222222299', 'a02')).rows[0]?.outcome).toBe('created');
      await second.query('COMMIT');
      // A deregister cannot commit under the open launch...
      await deregister.query(`SET lock_timeout = '300ms'`);
      await expect(deregister.query(`UPDATE catalog.image SET state = 'deregistered' WHERE id = $1`, [image.imageId])).rejects.toThrow(/lock timeout/);
      // ...and goes through once it has committed.
      await launcher.query('COMMIT');
      await deregister.query(`UPDATE catalog.image SET state = 'deregistered' WHERE id = $1`, [image.imageId]);
      expect(await db.prisma.catalogInstance.count({ where: { imageId: image.imageId } })).toBe(2);
    } finally {
      await Promise.all([launcher.end(), second.end(), deregister.end()]);
    }
  });
});

describe('get, list and terminate', () => {
  it("answers another account's instance as a missing one", async () => {
    const mine = await launch(buyer, { imageId });
    const id = mine.instances[0].instanceId;
    expect(await codeOf(instances.get(other, id))).toBe(ErrorCode.InvalidInstanceIDNotFound);
    expect(await codeOf(instances.terminate(other, id))).toBe(ErrorCode.InvalidInstanceIDNotFound);
    expect(await codeOf(instances.get(buyer, 'i-00000000000000000'))).toBe(ErrorCode.InvalidInstanceIDNotFound);
    expect((await instances.get(buyer, id)).instanceId).toBe(id);
  });

  it('terminates: shutting-down with stoppedAt, then terminated by the host; twice answers the current state', async () => {
    const launched = await launch(buyer, { imageId });
    const id = launched.instances[0].instanceId;
    await waitFor(async () => (await stateOf(id)) === 'running', { timeoutMs: 20_000, what: 'running' });
    const first = await asRequest(() => instances.terminate(buyer, id));
    expect(first).toMatchObject({ state: 'shutting-down', stateReason: { code: 'Client.UserInitiatedShutdown' } });
    expect(first.stoppedAt).toBe(first.stateChangedAt);
    await waitFor(async () => (await stateOf(id)) === 'terminated', { timeoutMs: 20_000, what: 'terminated' });
    const twice = await asRequest(() => instances.terminate(buyer, id));
    expect(twice).toMatchObject({ state: 'terminated', stoppedAt: first.stoppedAt });
    const events = await eventsOf(id);
    expect(events.map((e) => [e.state, e.revision])).toEqual([
      ['pending', 1],
      ['running', 2],
      ['shutting-down', 3],
      ['terminated', 4],
    ]);
    expect(events[2]).toMatchObject({ runningAt: events[1].runningAt, stoppedAt: first.stoppedAt });
    expect(events[3]).toMatchObject({ runningAt: events[1].runningAt, stoppedAt: first.stoppedAt });
  });

  it('lists only my instances, newest first, with filters and a cursor bound to them', async () => {
    const lister: Caller = { accountId: '200000000010', roles: ['buyer'] };
    const a = await launch(lister, { imageId, count: 3 });
    const b = await launch(lister, { imageId, instanceType: 'm5.large' });
    await launch(other, { imageId });
    const all = await instances.list({ caller: lister, filters: {}, limit: 100 });
    expect(all.items.map((i) => i.instanceId)).toEqual([
      b.instances[0].instanceId,
      ...a.instances.map((i) => i.instanceId).sort().reverse(),
    ]);
    const page1 = await instances.list({ caller: lister, filters: { instanceType: ['t3.micro'] }, limit: 2 });
    expect(page1.items).toHaveLength(2);
    const page2 = await instances.list({ caller: lister, filters: { instanceType: ['t3.micro'] }, limit: 2, cursor: page1.nextCursor! });
    expect(page2).toMatchObject({ nextCursor: null });
    expect([...page1.items, ...page2.items].map((i) => i.instanceId).sort()).toEqual(a.instances.map((i) => i.instanceId).sort());
    expect(await codeOf(instances.list({ caller: lister, filters: {}, limit: 2, cursor: page1.nextCursor! }))).toBe(ErrorCode.InvalidPaginationToken);
    expect((await instances.list({ caller: lister, filters: { imageId: [pendingImageId] }, limit: 10 })).items).toEqual([]);
    await waitFor(
      async () => (await instances.list({ caller: lister, filters: { state: ['running'] }, limit: 10 })).items.length === 4,
      { timeoutMs: 20_000, what: 'four running' },
    );
  });
});

describe('launch decisions', () => {
  it("reuses the permission service's allowance of a free image while the image's and the account's generations hold, and never a refusal or a subscription's", async () => {
    const decisions = moduleRef.get(LaunchDecisions);
    const who = '200000000041';
    const img = 'ami-0000000000000d041';
    const calls = () => asked.get(`${who}/${img}`) ?? 0;
    const move = (kind: 'image' | 'account', id: string) => generations.incr(decisionGenerationKey(redis.prefix, kind, id));

    expect(await decisions.decide(who, img)).toEqual({ allowed: true, reason: 'public' });
    expect(await decisions.decide(who, img)).toEqual({ allowed: true, reason: 'public' });
    expect(calls()).toBe(1);
    // A change of the image (a share revoked, say) or of the account: asked again, then kept again.
    await move('image', img);
    await decisions.decide(who, img);
    await move('account', who);
    await decisions.decide(who, img);
    await decisions.decide(who, img);
    expect(calls()).toBe(3);
    // Revoked: the refusal is answered, and asked for every time.
    await answer(who, img, { allowed: false, reason: 'no-launch-permission' });
    expect(await decisions.decide(who, img)).toEqual({ allowed: false, reason: 'no-launch-permission' });
    expect(await decisions.decide(who, img)).toEqual({ allowed: false, reason: 'no-launch-permission' });
    expect(calls()).toBe(5);
    // A subscription's allowance depends on more than the image: asked every time too.
    await answer(who, img, { allowed: true, reason: 'subscription' });
    await decisions.decide(who, img);
    await decisions.decide(who, img);
    expect(calls()).toBe(7);
    // An allowance answered while a change committed is not kept: the counters moved after they were read.
    await answer(who, img, undefined);
    changeWhileAnswering = img;
    await decisions.decide(who, img);
    await decisions.decide(who, img);
    await decisions.decide(who, img);
    expect(calls()).toBe(9);
  });

  it('asks every time with LAUNCH_DECISION_CACHE_TTL_MS=0', async () => {
    const decisions = new LaunchDecisions({ ...config, LAUNCH_DECISION_CACHE_TTL_MS: 0 }, moduleRef.get(LaunchUpstreamClient));
    const who = '200000000042';
    const img = 'ami-0000000000000d042';
    await decisions.decide(who, img);
    await decisions.decide(who, img);
    expect(asked.get(`${who}/${img}`)).toBe(2);
    decisions.onApplicationShutdown();
  });
});

describe('launch rate', () => {
  it('lets an account burst, then answers RequestLimitExceeded until its bucket refills; accounts do not share one', async () => {
    const limiter = new LaunchRateLimiter({ ...config, INSTANCE_LAUNCH_BURST: 3, INSTANCE_LAUNCH_REFILL_PER_SECOND: 0.001 });
    await limiter.onModuleInit();
    try {
      for (let i = 0; i < 3; i++) await limiter.take('200000000020');
      expect(await codeOf(limiter.take('200000000020'))).toBe(ErrorCode.RequestLimitExceeded);
      await limiter.take('200000000021');
    } finally {
      limiter.onApplicationShutdown();
    }
  });
});
