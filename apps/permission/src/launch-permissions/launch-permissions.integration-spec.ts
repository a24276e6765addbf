import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type Caller, type ImageChanged, type LaunchPermissionChanged } from '@imagemart/contracts';
import { createTestDatabase, createTestRedisPrefix, type TestDatabase, type TestRedisPrefix } from '@imagemart/testing';
import { ImageProjectionService } from '../images/image-projection.service.js';
import {
  UpstreamState,
  codeOf,
  image,
  newAccountId,
  startPermissionInstance,
  startUpstreamStandIns,
} from '../permission.fixture.js';
import { LaunchPermissionsService } from './launch-permissions.service.js';

/** Modify, reset and read an image's launch permissions against PostgreSQL, with the outbox and audit rows they write. */
let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let stopUpstream: () => Promise<void>;
const upstream = new UpstreamState();
let service: LaunchPermissionsService;
let images: ImageProjectionService;

const owner: Caller = { accountId: newAccountId(), roles: ['seller'] };
const admin: Caller = { accountId: newAccountId(), roles: ['admin'] };

beforeAll(async () => {
  db = await createTestDatabase('launch-permissions');
  redis = createTestRedisPrefix('launch-permissions');
  stopUpstream = await startUpstreamStandIns(redis.url, redis.prefix, upstream);
  moduleRef = await startPermissionInstance({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
  service = moduleRef.get(LaunchPermissionsService);
  images = moduleRef.get(ImageProjectionService);
});

afterAll(async () => {
  await moduleRef?.close();
  await stopUpstream?.();
  await db?.drop();
  await redis?.cleanup();
});

async function registered(overrides: Partial<ImageChanged> = {}): Promise<string> {
  const img = image({ ownerId: owner.accountId, ...overrides });
  await images.apply(img);
  return img.imageId;
}

/** The state of an image as the database holds it: setting, grants, events and audit rows. */
async function snapshot(imageId: string) {
  const [setting, grants, events, audit] = await Promise.all([
    db.prisma.permissionLaunchSetting.findUnique({ where: { id: imageId } }),
    db.prisma.permissionLaunchGrant.findMany({ where: { imageId }, orderBy: { accountId: 'asc' } }),
    events$(imageId),
    db.prisma.auditEvent.findMany({ where: { resourceType: 'image', resourceId: imageId }, orderBy: { createdAt: 'asc' } }),
  ]);
  return {
    isPublic: setting?.isPublic ?? false,
    revision: setting?.revision ?? 0,
    grants: grants.map((g) => [g.accountId, g.shareState]),
    events: events.length,
    audit: audit.length,
  };
}

async function events$(imageId: string): Promise<LaunchPermissionChanged[]> {
  const rows = await db.prisma.permissionOutboxEvent.findMany({
    where: { type: 'permission.launch-permission.changed' },
    orderBy: { createdAt: 'asc' },
  });
  return rows.map((r) => r.payload as unknown as LaunchPermissionChanged).filter((p) => p.imageId === imageId);
}

describe('modify', () => {
  it('adds and removes accounts and the group all, publishing the full state with the next revision in the outbox', async () => {
    const imageId = await registered();
    const [a, b, c] = [newAccountId(), newAccountId(), newAccountId()].sort();
    const view = await service.modify(owner, imageId, [{ userId: b }, { userId: a }, { group: 'all' }], []);
    expect(view).toEqual({ imageId, launchPermissions: [{ group: 'all' }, { userId: a }, { userId: b }] });

    const after = await service.modify(owner, imageId, [{ userId: c }], [{ userId: a }, { group: 'all' }]);
    expect(after.launchPermissions).toEqual([{ userId: b }, { userId: c }]);
    expect(await service.get(owner, imageId)).toEqual(after);

    const published = await events$(imageId);
    expect(published).toEqual([
      {
        imageId,
        public: true,
        grants: [
          { accountId: a, shareState: 'pending' },
          { accountId: b, shareState: 'pending' },
        ],
        revision: 1,
      },
      {
        imageId,
        public: false,
        grants: [
          { accountId: b, shareState: 'pending' },
          { accountId: c, shareState: 'pending' },
        ],
        revision: 2,
      },
    ]);
    // The outbox routes it to the catalog's queue.
    const queues = await db.prisma.permissionOutboxEvent.findMany({ where: { type: 'permission.launch-permission.changed' } });
    expect(new Set(queues.map((q) => q.queue))).toEqual(new Set(['catalog-events']));
  });

  it('changes all or nothing: one malformed account id or unknown group refuses the whole request', async () => {
    const imageId = await registered();
    const kept = newAccountId();
    await service.modify(owner, imageId, [{ userId: kept }], []);
    const before = await snapshot(imageId);

    const good = newAccountId();
    for (const [add, remove] of [
      [[{ userId: good }, { userId: 'abcdefghijkl' }], []],
      [[{ userId: good }, { userId: '12345678901' }], []],
      [[{ userId: good }, { userId: '1234567890123' }], []],
      [[{ userId: good }, { group: 'everyone' }], []],
      [[{ group: 'all' }], [{ userId: kept }, { userId: '12345678901x' }]],
      [[], [{ userId: kept }, { group: 'All' }]],
    ] as const) {
      const attempt = service.modify(owner, imageId, [...add], [...remove]);
      expect(await codeOf(attempt)).toBe(ErrorCode.InvalidAMIAttributeItemValue);
    }
    await expect(service.modify(owner, imageId, [{ userId: 'abc' }], [])).rejects.toMatchObject({
      detail: 'Invalid attribute item value "abc" for userId item type.',
    });
    await expect(service.modify(owner, imageId, [{ group: 'friends' }], [])).rejects.toMatchObject({
      detail: 'Invalid attribute item value "friends" for group item type.',
    });
    expect(await snapshot(imageId)).toEqual(before);
  });

  it('refuses to add and remove the same item in one request, changing nothing', async () => {
    const imageId = await registered();
    const a = newAccountId();
    expect(await codeOf(service.modify(owner, imageId, [{ userId: a }], [{ userId: a }]))).toBe(ErrorCode.InvalidParameterValue);
    expect(await codeOf(service.modify(owner, imageId, [{ group: 'all' }], [{ group: 'all' }]))).toBe(
      ErrorCode.InvalidParameterValue,
    );
    expect(await snapshot(imageId)).toMatchObject({ revision: 0, grants: [], events: 0, audit: 0 });
  });

  it('treats adding what is there and removing what is not as no-ops: no revision, no event, no audit row', async () => {
    const imageId = await registered();
    const a = newAccountId();
    await service.modify(owner, imageId, [{ userId: a }, { group: 'all' }], []);
    const before = await snapshot(imageId);
    expect(before).toMatchObject({ revision: 1, events: 1, audit: 1 });

    const view = await service.modify(owner, imageId, [{ userId: a }, { group: 'all' }, { userId: a }], [{ userId: newAccountId() }]);
    expect(view.launchPermissions).toEqual([{ group: 'all' }, { userId: a }]);
    // Naming the owner adds nothing: the owner may always launch.
    await service.modify(owner, imageId, [{ userId: owner.accountId }], []);
    expect(await snapshot(imageId)).toEqual(before);

    // A well-formed id is accepted whether or not an account has it.
    const nobody = '000000000001';
    expect(await db.prisma.account.count({ where: { id: nobody } })).toBe(0);
    expect((await service.modify(owner, imageId, [{ userId: nobody }], [])).launchPermissions).toContainEqual({ userId: nobody });
  });

  it('gives simultaneous changes one revision each, in order', async () => {
    const imageId = await registered();
    const accounts = Array.from({ length: 6 }, newAccountId);
    await Promise.all(accounts.map((a) => service.modify(owner, imageId, [{ userId: a }], [])));
    const published = await events$(imageId);
    expect(published.map((e) => e.revision)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(published.at(-1)?.grants).toHaveLength(6);
    expect(published.map((e) => e.grants.length)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('runs twice harmlessly (a reclaimed request)', async () => {
    const imageId = await registered();
    const a = newAccountId();
    const first = await service.modify(owner, imageId, [{ userId: a }], []);
    const second = await service.modify(owner, imageId, [{ userId: a }], []);
    expect(second).toEqual(first);
    expect(await snapshot(imageId)).toMatchObject({ revision: 1, events: 1, audit: 1 });
  });
});

describe('reset', () => {
  it('makes the image private again, once', async () => {
    const imageId = await registered();
    await service.modify(owner, imageId, [{ group: 'all' }, { userId: newAccountId() }], []);
    expect(await service.reset(owner, imageId)).toEqual({ imageId, launchPermissions: [] });
    expect(await snapshot(imageId)).toMatchObject({ isPublic: false, revision: 2, grants: [], events: 2, audit: 2 });
    expect((await events$(imageId)).at(-1)).toEqual({ imageId, public: false, grants: [], revision: 2 });
    await service.reset(owner, imageId);
    expect(await snapshot(imageId)).toMatchObject({ revision: 2, events: 2, audit: 2 });
  });
});

describe('who may read and change', () => {
  it('is the owner or an admin; a non-owner who can see the image gets AuthFailure, one who cannot gets NotFound', async () => {
    const imageId = await registered();
    const other: Caller = { accountId: newAccountId(), roles: ['buyer'] };
    const sharedWith: Caller = { accountId: newAccountId(), roles: ['buyer'] };
    for (const call of [
      () => service.get(other, imageId),
      () => service.modify(other, imageId, [{ userId: other.accountId }], []),
      () => service.reset(other, imageId),
    ]) {
      expect(await codeOf(call())).toBe(ErrorCode.InvalidAMIIDNotFound);
    }
    expect((await service.modify(admin, imageId, [{ userId: sharedWith.accountId }], [])).launchPermissions).toEqual([
      { userId: sharedWith.accountId },
    ]);
    expect(await codeOf(service.get(sharedWith, imageId))).toBe(ErrorCode.AuthFailure);
    await expect(service.get(sharedWith, imageId)).rejects.toMatchObject({ detail: `Not authorized for image:${imageId}` });
    await service.modify(owner, imageId, [{ group: 'all' }], []);
    expect(await codeOf(service.modify(other, imageId, [{ userId: other.accountId }], []))).toBe(ErrorCode.AuthFailure);
    expect(await codeOf(service.reset(other, imageId))).toBe(ErrorCode.AuthFailure);
    expect((await service.get(admin, imageId)).launchPermissions).toHaveLength(2);
    // The admin's change is recorded as the admin's.
    const audit = await db.prisma.auditEvent.findFirstOrThrow({ where: { resourceId: imageId }, orderBy: { createdAt: 'asc' } });
    expect(audit.actorId).toBe(admin.accountId);
  });

  it('answers InvalidAMIID.NotFound in EC2 words for an unknown or deregistered image', async () => {
    const unknown = image({ ownerId: owner.accountId }).imageId;
    await expect(service.get(owner, unknown)).rejects.toMatchObject({
      code: ErrorCode.InvalidAMIIDNotFound,
      detail: `The image id '[${unknown}]' does not exist`,
    });
    const gone = await registered({ state: 'deregistered' });
    expect(await codeOf(service.get(owner, gone))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(service.modify(admin, gone, [{ group: 'all' }], []))).toBe(ErrorCode.InvalidAMIIDNotFound);
  });

  it('asks the catalog for an image the projection lacks, and keeps it', async () => {
    const fresh = image({ ownerId: owner.accountId, revision: 4 });
    upstream.images.set(fresh.imageId, fresh);
    expect(await service.get(owner, fresh.imageId)).toEqual({ imageId: fresh.imageId, launchPermissions: [] });
    const row = await db.prisma.permissionImage.findUniqueOrThrow({ where: { id: fresh.imageId } });
    expect(row).toMatchObject({ ownerId: owner.accountId, state: 'available', revision: 4 });
    const asked = upstream.calls.filter((c) => (c.data as { imageId?: string }).imageId === fresh.imageId).length;
    await service.get(owner, fresh.imageId);
    expect(upstream.calls.filter((c) => (c.data as { imageId?: string }).imageId === fresh.imageId)).toHaveLength(asked);
    // The event with the same revision arrives later: nothing changes.
    expect(await images.apply(fresh)).toBe(false);
  });
});

describe('the image projection', () => {
  it('keeps a row only for a higher revision', async () => {
    const img = image({ ownerId: owner.accountId, revision: 2 });
    expect(await images.apply(img)).toBe(true);
    expect(await images.apply({ ...img, state: 'deregistered', revision: 1 })).toBe(false);
    expect(await images.apply({ ...img, state: 'failed', revision: 2 })).toBe(false);
    expect((await db.prisma.permissionImage.findUniqueOrThrow({ where: { id: img.imageId } })).state).toBe('available');
    expect(await images.apply({ ...img, state: 'deregistered', productCodes: ['prod-abcdefghij0123456789'], revision: 3 })).toBe(true);
    expect(await db.prisma.permissionImage.findUniqueOrThrow({ where: { id: img.imageId } })).toMatchObject({
      state: 'deregistered',
      productCodes: ['prod-abcdefghij0123456789'],
      revision: 3,
    });
  });
});
