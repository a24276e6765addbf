import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type Caller, type Role, type ShareState } from '@imagemart/contracts';
import { createTestDatabase, createTestRedisPrefix, type TestDatabase, type TestRedisPrefix } from '@imagemart/testing';
import { AuditService } from './audit/audit.service.js';
import { LaunchDecisionService } from './decision/launch-decision.service.js';
import { ImageProjectionService } from './images/image-projection.service.js';
import { LaunchPermissionsService } from './launch-permissions/launch-permissions.service.js';
import {
  UpstreamState,
  codeOf,
  image,
  newAccountId,
  startPermissionInstance,
  startUpstreamStandIns,
} from './permission.fixture.js';
import { SharesService } from './shares/shares.service.js';

/**
 * Every route of the permission service that touches an image, for every kind of caller: role ×
 * owner or not × the image's visibility × the state of the caller's share. The expected outcome
 * of each cell is written out from the rules, independently of the code:
 *
 * - launch permission get/modify/reset: owner or admin → ok; a caller who can see the image
 *   (an available image that is public, or shared with it and not rejected: the catalog's rule
 *   for reading an image) → AuthFailure; anyone else → InvalidAMIID.NotFound, as for a missing image.
 * - audit events of the image: the same, with UnauthorizedOperation for one who can see it.
 * - answering a share, and finding the image in GET /v1/shared-images: only its recipient.
 * - the launch decision: owner; else public or shared (any state); a paid image also needs a subscription.
 */
let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let stopUpstream: () => Promise<void>;

beforeAll(async () => {
  db = await createTestDatabase('authz-matrix');
  redis = createTestRedisPrefix('authz-matrix');
  stopUpstream = await startUpstreamStandIns(redis.url, redis.prefix, new UpstreamState());
  moduleRef = await startPermissionInstance({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
});

afterAll(async () => {
  await moduleRef?.close();
  await stopUpstream?.();
  await db?.drop();
  await redis?.cleanup();
});

type Share = ShareState | 'none';
interface Cell {
  role: Role;
  owner: boolean;
  visibility: 'private' | 'public';
  share: Share;
}

const cells: Cell[] = [];
for (const role of ['buyer', 'seller', 'admin'] as const) {
  for (const owner of [true, false]) {
    for (const visibility of ['private', 'public'] as const) {
      // An owner is never named in its own image's launch permission.
      for (const share of owner ? (['none'] as const) : (['none', 'pending', 'accepted', 'rejected'] as const)) {
        cells.push({ role, owner, visibility, share });
      }
    }
  }
}

const OK = 'resolved';

function expected(cell: Cell) {
  const canSee = cell.visibility === 'public' || cell.share === 'pending' || cell.share === 'accepted';
  const manage = cell.owner || cell.role === 'admin' ? OK : canSee ? ErrorCode.AuthFailure : ErrorCode.InvalidAMIIDNotFound;
  const auditRead = cell.owner || cell.role === 'admin' ? OK : canSee ? ErrorCode.UnauthorizedOperation : ErrorCode.InvalidAMIIDNotFound;
  const recipient = cell.share !== 'none';
  const free = cell.owner
    ? { allowed: true, reason: 'owner' }
    : cell.visibility === 'public'
      ? { allowed: true, reason: 'public' }
      : recipient
        ? { allowed: true, reason: 'launch-permission' }
        : { allowed: false, reason: 'no-launch-permission' };
  // A rejected share hides the image from its recipient's lists, but the permission holds.
  const permitted = cell.visibility === 'public' || recipient;
  const paid = cell.owner
    ? { allowed: true, reason: 'owner' }
    : permitted
      ? { allowed: false, reason: 'no-subscription' }
      : { allowed: false, reason: 'no-launch-permission' };
  return {
    get: manage,
    modify: manage,
    reset: manage,
    audit: auditRead,
    respond: recipient ? OK : ErrorCode.InvalidAMIIDNotFound,
    listed: recipient,
    decideFree: free,
    decidePaid: paid,
  };
}

const name = (c: Cell) => `${c.role}, ${c.owner ? 'owner' : 'not owner'}, ${c.visibility}, share ${c.share}`;

describe('authorization matrix', () => {
  it.each(cells.map((c) => [name(c), c] as const))('%s', async (_, cell) => {
    const caller: Caller = { accountId: newAccountId(), roles: [cell.role] };
    const ownerId = cell.owner ? caller.accountId : newAccountId();
    const ownerCaller: Caller = { accountId: ownerId, roles: ['seller'] };
    const lp = moduleRef.get(LaunchPermissionsService);

    const setUp = async (productCodes: string[]) => {
      const img = image({ ownerId, productCodes });
      await moduleRef.get(ImageProjectionService).apply(img);
      const add = [
        ...(cell.visibility === 'public' ? [{ group: 'all' }] : []),
        ...(cell.share !== 'none' ? [{ userId: caller.accountId }] : []),
      ];
      if (add.length) await lp.modify(ownerCaller, img.imageId, add, []);
      if (cell.share === 'accepted' || cell.share === 'rejected') {
        await moduleRef.get(SharesService).respond(caller, img.imageId, cell.share);
      }
      return img.imageId;
    };
    const freeImage = await setUp([]);
    const paidImage = await setUp(['prod-matrix00000000000001']);
    const want = expected(cell);

    const decisions = moduleRef.get(LaunchDecisionService);
    const actual = {
      decideFree: await decisions.decide(caller.accountId, freeImage),
      decidePaid: await decisions.decide(caller.accountId, paidImage),
      listed: (await moduleRef.get(SharesService).list(caller, undefined, 100)).items.some((i) => i.imageId === freeImage),
      audit: await codeOf(moduleRef.get(AuditService).list({ caller, imageId: freeImage, limit: 10 })),
      get: await codeOf(lp.get(caller, freeImage)),
      modify: await codeOf(lp.modify(caller, freeImage, [{ userId: newAccountId() }], [])),
      reset: await codeOf(lp.reset(caller, freeImage)),
      // On the other image: modify and reset above have changed this one's grants.
      respond: await codeOf(moduleRef.get(SharesService).respond(caller, paidImage, 'accepted')),
    };
    expect(actual).toEqual(want);
  });

  it('covers every combination', () => {
    expect(cells).toHaveLength(30);
  });
});
