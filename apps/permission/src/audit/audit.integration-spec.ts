import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type Caller, type ListAuditEventsRequest } from '@imagemart/contracts';
import { requestContext } from '@imagemart/observability';
import { createTestDatabase, createTestRedisPrefix, type TestDatabase, type TestRedisPrefix } from '@imagemart/testing';
import { AccountsService } from '../accounts/accounts.service.js';
import { ApiKeysService } from '../api-keys/api-keys.service.js';
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
import { SharesService } from '../shares/shares.service.js';
import { AuditService } from './audit.service.js';

/** The audit log: every change of a permission, key, account or share, and who may read it. */
let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let stopUpstream: () => Promise<void>;
let audit: AuditService;

const admin: Caller = { accountId: newAccountId(), roles: ['admin'] };
const owner: Caller = { accountId: newAccountId(), roles: ['seller'] };
const buyer: Caller = { accountId: newAccountId(), roles: ['buyer'] };
const stranger: Caller = { accountId: newAccountId(), roles: ['seller', 'buyer'] };
let imageId: string;

beforeAll(async () => {
  db = await createTestDatabase('audit');
  redis = createTestRedisPrefix('audit');
  stopUpstream = await startUpstreamStandIns(redis.url, redis.prefix, new UpstreamState());
  moduleRef = await startPermissionInstance({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
  audit = moduleRef.get(AuditService);
  const img = image({ ownerId: owner.accountId });
  imageId = img.imageId;
  await moduleRef.get(ImageProjectionService).apply(img);
});

afterAll(async () => {
  await moduleRef?.close();
  await stopUpstream?.();
  await db?.drop();
  await redis?.cleanup();
});

const list = (caller: Caller, filters: Partial<ListAuditEventsRequest> = {}) => audit.list({ caller, limit: 50, ...filters });
const inRequest = <T>(requestId: string, fn: () => Promise<T>) => requestContext.run({ requestId }, fn);

describe('the audit log', () => {
  it('records who changed which permission, key, account or share, when, and under which request', async () => {
    const lp = moduleRef.get(LaunchPermissionsService);
    const before = new Date();
    await inRequest('req-modify', () => lp.modify(owner, imageId, [{ userId: buyer.accountId }, { group: 'all' }], []));
    await inRequest('req-accept', () => moduleRef.get(SharesService).respond(buyer, imageId, 'accepted'));
    await inRequest('req-remove', () => lp.modify(admin, imageId, [], [{ group: 'all' }]));
    await inRequest('req-reset', () => lp.reset(owner, imageId));
    // No-ops are not changes.
    await inRequest('req-noop', () => lp.reset(owner, imageId));
    const account = await inRequest('req-account', () =>
      moduleRef.get(AccountsService).create(null, { name: 'A', email: `${newAccountId()}@example.test`, roles: ['buyer'] }),
    );
    const key = await inRequest('req-key', () => moduleRef.get(ApiKeysService).issue(admin, account.id, 'ci', { hash: 'a'.repeat(64), prefix: 'imk_abcdefgh' }));
    await inRequest('req-revoke', () => moduleRef.get(ApiKeysService).revoke(admin, account.id, key.id));

    const page = await list(admin);
    const events = page.items.reverse(); // oldest first, to read along
    expect(events.map((e) => [e.action, e.actorId, e.resourceType, e.resourceId, e.requestId])).toEqual([
      ['launch-permission.modify', owner.accountId, 'image', imageId, 'req-modify'],
      ['share.accept', buyer.accountId, 'image', imageId, 'req-accept'],
      ['launch-permission.modify', admin.accountId, 'image', imageId, 'req-remove'],
      ['launch-permission.reset', owner.accountId, 'image', imageId, 'req-reset'],
      ['account.create', null, 'account', account.id, 'req-account'],
      ['apikey.issue', admin.accountId, 'apikey', key.id, 'req-key'],
      ['apikey.revoke', admin.accountId, 'apikey', key.id, 'req-revoke'],
    ]);
    expect(events[0].details).toEqual({ added: [{ group: 'all' }, { userId: buyer.accountId }], removed: [], revision: 1 });
    expect(events[1].details).toMatchObject({ from: 'pending', to: 'accepted' });
    expect(events[2].details).toEqual({ added: [], removed: [{ group: 'all' }], revision: 3 });
    expect(events[3].details).toEqual({ removed: [{ userId: buyer.accountId }], revision: 4 });
    for (const e of events) expect(new Date(e.createdAt).getTime()).toBeGreaterThanOrEqual(before.getTime() - 1000);
  });

  it('lets admins filter everything, and pages newest first with a cursor', async () => {
    expect((await list(admin, { imageId })).items).toHaveLength(4);
    expect((await list(admin, { resourceType: 'image', resourceId: imageId, action: 'launch-permission.modify' })).items).toHaveLength(2);
    expect((await list(admin, { actorId: buyer.accountId })).items.map((e) => e.action)).toEqual(['share.accept']);
    expect((await list(admin, { resourceType: 'apikey' })).items).toHaveLength(2);

    const all = (await list(admin)).items.map((e) => e.id);
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await audit.list({ caller: admin, limit: 3, cursor });
      paged.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(paged).toEqual(all);
    expect(await codeOf(audit.list({ caller: admin, limit: 3, cursor: 'garbage' }))).toBe(ErrorCode.InvalidPaginationToken);
    expect(await codeOf(list(admin, { imageId, resourceType: 'apikey' }))).toBe(ErrorCode.InvalidParameterValue);
  });

  it("lets an image's owner read that image's events, and no one else", async () => {
    const own = await list(owner, { imageId });
    expect(own.items.map((e) => e.action)).toEqual([
      'launch-permission.reset',
      'launch-permission.modify',
      'share.accept',
      'launch-permission.modify',
    ]);
    expect((await list(owner, { imageId, action: 'share.accept' })).items).toHaveLength(1);
    // Without an image, or beyond it: the whole log is for admins.
    expect(await codeOf(list(owner))).toBe(ErrorCode.UnauthorizedOperation);
    expect(await codeOf(list(owner, { resourceType: 'apikey' }))).toBe(ErrorCode.UnauthorizedOperation);
    // The buyer can see the image (it was shared with it) but does not own it.
    await moduleRef.get(LaunchPermissionsService).modify(owner, imageId, [{ userId: buyer.accountId }], []);
    expect(await codeOf(list(buyer, { imageId }))).toBe(ErrorCode.UnauthorizedOperation);
    // A stranger cannot see it at all.
    expect(await codeOf(list(stranger, { imageId }))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(list(stranger, { imageId: image({ ownerId: owner.accountId }).imageId }))).toBe(ErrorCode.InvalidAMIIDNotFound);
  });

  it("keeps the client's own X-Request-Id beside the platform's request id, and null where there was none", async () => {
    const accounts = moduleRef.get(AccountsService);
    const traced = await requestContext.run({ requestId: 'req-platform-1', clientRequestId: 'client-chosen.1' }, () =>
      accounts.create(null, { name: 'Traced', email: `${newAccountId()}@example.test`, roles: ['buyer'] }),
    );
    const plain = await inRequest('req-platform-2', () =>
      accounts.create(null, { name: 'Plain', email: `${newAccountId()}@example.test`, roles: ['buyer'] }),
    );
    const events = (await list(admin, { resourceType: 'account' })).items;
    expect(events.find((e) => e.resourceId === traced.id)).toMatchObject({ requestId: 'req-platform-1', clientRequestId: 'client-chosen.1' });
    expect(events.find((e) => e.resourceId === plain.id)).toMatchObject({ requestId: 'req-platform-2', clientRequestId: null });
  });
});
