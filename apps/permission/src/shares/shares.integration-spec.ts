import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ErrorCode, type Caller, type LaunchPermissionChanged } from '@imagemart/contracts';
import { createTestDatabase, createTestRedisPrefix, type TestDatabase, type TestRedisPrefix } from '@imagemart/testing';
import { ImageProjectionService } from '../images/image-projection.service.js';
import { LaunchPermissionsService } from '../launch-permissions/launch-permissions.service.js';
import {
  UpstreamState,
  codeOf,
  image,
  newAccountId,
  startPermissionInstance,
  startUpstreamStandIns,
} from '../permission.fixture.js';
import { SharesService } from './shares.service.js';

/** Shares as the recipient sees them: pending until accepted or rejected, gone with the permission. */
let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let stopUpstream: () => Promise<void>;
let shares: SharesService;
let launchPermissions: LaunchPermissionsService;
let images: ImageProjectionService;
const upstream = new UpstreamState();

const owner: Caller = { accountId: newAccountId(), roles: ['seller'] };

beforeAll(async () => {
  db = await createTestDatabase('shares');
  redis = createTestRedisPrefix('shares');
  stopUpstream = await startUpstreamStandIns(redis.url, redis.prefix, upstream);
  moduleRef = await startPermissionInstance({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
  shares = moduleRef.get(SharesService);
  launchPermissions = moduleRef.get(LaunchPermissionsService);
  images = moduleRef.get(ImageProjectionService);
});

afterAll(async () => {
  await moduleRef?.close();
  await stopUpstream?.();
  await db?.drop();
  await redis?.cleanup();
});

async function registered(overrides: Parameters<typeof image>[0] = { ownerId: owner.accountId }) {
  const img = image(overrides);
  await images.apply(img);
  return img.imageId;
}

const lastEvent = async (imageId: string): Promise<LaunchPermissionChanged | undefined> => {
  const rows = await db.prisma.permissionOutboxEvent.findMany({ where: { type: 'permission.launch-permission.changed' }, orderBy: { createdAt: 'asc' } });
  return rows.map((r) => r.payload as unknown as LaunchPermissionChanged).filter((p) => p.imageId === imageId).at(-1);
};

describe('shares', () => {
  it('start pending, move to accepted or rejected by the recipient, and are published with every state', async () => {
    const buyer: Caller = { accountId: newAccountId(), roles: ['buyer'] };
    const imageId = await registered();
    await launchPermissions.modify(owner, imageId, [{ userId: buyer.accountId }], []);

    const listed = await shares.list(buyer, undefined, 10);
    expect(listed.items).toEqual([
      expect.objectContaining({ imageId, ownerId: owner.accountId, imageState: 'available', state: 'pending', productCodes: [] }),
    ]);
    expect((await shares.list(buyer, 'accepted', 10)).items).toEqual([]);

    expect(await shares.respond(buyer, imageId, 'accepted')).toMatchObject({ imageId, state: 'accepted' });
    expect((await shares.list(buyer, 'accepted', 10)).items.map((i) => i.imageId)).toEqual([imageId]);
    expect((await shares.list(buyer, 'pending', 10)).items).toEqual([]);
    expect(await lastEvent(imageId)).toEqual({
      imageId,
      public: false,
      grants: [{ accountId: buyer.accountId, shareState: 'accepted' }],
      revision: 2,
    });

    // The same answer again changes nothing.
    await shares.respond(buyer, imageId, 'accepted');
    expect((await lastEvent(imageId))?.revision).toBe(2);

    expect(await shares.respond(buyer, imageId, 'rejected')).toMatchObject({ state: 'rejected' });
    expect((await shares.list(buyer, 'rejected', 10)).items.map((i) => i.imageId)).toEqual([imageId]);
    expect((await lastEvent(imageId))?.grants).toEqual([{ accountId: buyer.accountId, shareState: 'rejected' }]);
    // The launch permission holds in every state.
    expect((await launchPermissions.get(owner, imageId)).launchPermissions).toEqual([{ userId: buyer.accountId }]);

    const audit = await db.prisma.auditEvent.findMany({ where: { resourceId: imageId }, orderBy: { createdAt: 'asc' } });
    expect(audit.map((e) => [e.action, e.actorId])).toEqual([
      ['launch-permission.modify', owner.accountId],
      ['share.accept', buyer.accountId],
      ['share.reject', buyer.accountId],
    ]);
  });

  it('go away with the launch permission, and start over at pending when it is granted again', async () => {
    const buyer: Caller = { accountId: newAccountId(), roles: ['buyer'] };
    const imageId = await registered();
    await launchPermissions.modify(owner, imageId, [{ userId: buyer.accountId }], []);
    await shares.respond(buyer, imageId, 'accepted');
    await launchPermissions.modify(owner, imageId, [], [{ userId: buyer.accountId }]);
    expect((await shares.list(buyer, undefined, 10)).items).toEqual([]);
    expect(await codeOf(shares.respond(buyer, imageId, 'accepted'))).toBe(ErrorCode.InvalidAMIIDNotFound);
    await launchPermissions.modify(owner, imageId, [{ userId: buyer.accountId }], []);
    expect((await shares.list(buyer, undefined, 10)).items.map((i) => i.state)).toEqual(['pending']);

    // A reset removes it too.
    await launchPermissions.reset(owner, imageId);
    expect((await shares.list(buyer, undefined, 10)).items).toEqual([]);
  });

  it('are answered only by their recipient; to anyone else the image does not exist', async () => {
    const buyer: Caller = { accountId: newAccountId(), roles: ['buyer'] };
    const imageId = await registered();
    await launchPermissions.modify(owner, imageId, [{ userId: buyer.accountId }, { group: 'all' }], []);
    const stranger: Caller = { accountId: newAccountId(), roles: ['buyer'] };
    // Public, but not shared with the stranger by name: nothing to accept.
    expect(await codeOf(shares.respond(stranger, imageId, 'accepted'))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(shares.respond(owner, imageId, 'accepted'))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(shares.respond({ ...stranger, roles: ['admin'] }, imageId, 'accepted'))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(shares.respond(buyer, image({ ownerId: owner.accountId }).imageId, 'accepted'))).toBe(
      ErrorCode.InvalidAMIIDNotFound,
    );
    expect((await shares.list(stranger, undefined, 10)).items).toEqual([]);
  });

  it('leave deregistered images out of the list', async () => {
    const buyer: Caller = { accountId: newAccountId(), roles: ['buyer'] };
    const img = image({ ownerId: owner.accountId });
    await images.apply(img);
    await launchPermissions.modify(owner, img.imageId, [{ userId: buyer.accountId }], []);
    expect((await shares.list(buyer, undefined, 10)).items).toHaveLength(1);
    await images.apply({ ...img, state: 'deregistered', revision: 2 });
    expect((await shares.list(buyer, undefined, 10)).items).toEqual([]);
    expect(await codeOf(shares.respond(buyer, img.imageId, 'accepted'))).toBe(ErrorCode.InvalidAMIIDNotFound);
  });

  it('show and take answers only for available images, as the catalog shows them; others are the catalog\'s 404', async () => {
    const buyer: Caller = { accountId: newAccountId(), roles: ['buyer'] };
    const pending = image({ ownerId: owner.accountId, state: 'pending' });
    const failed = image({ ownerId: owner.accountId, state: 'failed' });
    for (const img of [pending, failed]) {
      await images.apply(img);
      upstream.images.set(img.imageId, img);
      await launchPermissions.modify(owner, img.imageId, [{ userId: buyer.accountId }], []);
    }
    const eventsBefore = await db.prisma.permissionOutboxEvent.count();
    const auditBefore = await db.prisma.auditEvent.count({ where: { actorId: buyer.accountId } });

    expect((await shares.list(buyer, undefined, 10)).items).toEqual([]);
    expect((await shares.list(buyer, 'pending', 10)).items).toEqual([]);
    for (const img of [pending, failed]) {
      for (const answer of ['accepted', 'rejected'] as const) {
        const refused = shares.respond(buyer, img.imageId, answer);
        expect(await codeOf(refused)).toBe(ErrorCode.InvalidAMIIDNotFound);
      }
    }
    // Nothing changed: the shares are still pending, no event, no audit entry.
    const grants = await db.prisma.permissionLaunchGrant.findMany({ where: { accountId: buyer.accountId } });
    expect(grants.map((g) => g.shareState)).toEqual(['pending', 'pending']);
    expect(await db.prisma.permissionOutboxEvent.count()).toBe(eventsBefore);
    expect(await db.prisma.auditEvent.count({ where: { actorId: buyer.accountId } })).toBe(auditBefore);

    // Available in the catalog while the projection still holds it pending (the event is on its
    // way): the answer asks the catalog, and then the share is shown and answered.
    const arriving = image({ ownerId: owner.accountId, state: 'pending' });
    await images.apply(arriving);
    await launchPermissions.modify(owner, arriving.imageId, [{ userId: buyer.accountId }], []);
    upstream.images.set(arriving.imageId, { ...arriving, state: 'available', revision: 2 });
    // Past the few seconds in which a pending image is not checked again (sharing it checked it).
    const later = Date.now() + 6_000;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => later);
    const answered = await shares.respond(buyer, arriving.imageId, 'accepted').finally(() => clock.mockRestore());
    expect(answered).toMatchObject({
      imageId: arriving.imageId,
      imageState: 'available',
      state: 'accepted',
    });
    expect((await shares.list(buyer, undefined, 10)).items.map((i) => [i.imageId, i.state])).toEqual([[arriving.imageId, 'accepted']]);

    // An image that fails later leaves the list again.
    await images.apply({ ...arriving, state: 'failed', revision: 3 });
    expect((await shares.list(buyer, undefined, 10)).items).toEqual([]);
    expect(await codeOf(shares.respond(buyer, arriving.imageId, 'rejected'))).toBe(ErrorCode.InvalidAMIIDNotFound);
  });

  it('are listed oldest first, page by page', async () => {
    const buyer: Caller = { accountId: newAccountId(), roles: ['buyer'] };
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const imageId = await registered();
      await launchPermissions.modify(owner, imageId, [{ userId: buyer.accountId }], []);
      ids.push(imageId);
    }
    await shares.respond(buyer, ids[1], 'accepted');
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await shares.list(buyer, undefined, 2, cursor);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((i) => i.imageId));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(ids);
    expect(await codeOf(shares.list(buyer, undefined, 2, 'bm90LWEtY3Vyc29y'))).toBe(ErrorCode.InvalidPaginationToken);
  });
});
