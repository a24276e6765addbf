import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogPattern, PermissionPattern, type LaunchDecision } from '@imagemart/contracts';
import { waitFor } from '@imagemart/testing';
import { http, Platform, expectProblem } from './support/platform.js';

/**
 * Launch permissions, shares, the audit log and the launch decision over HTTP and the Redis
 * transport, on the five real processes. Images are registered through the catalog's own route,
 * and reach the permission service as they do in production.
 */
let platform: Platform;
let base: string;

interface Account {
  id: string;
  key: string;
}
let seller: Account;
let buyer: Account;
let stranger: Account;

const decide = (accountId: string, imageId: string) =>
  rpc<LaunchDecision>('permission', PermissionPattern.launchDecide, { accountId, imageId });

async function register(owner: Account, available = true): Promise<string> {
  const res = await http(base, 'POST', '/v1/images', {
    key: owner.key,
    body: { name: `perm-${randomUUID().slice(0, 8)}`, architecture: 'x86_64' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const imageId = res.body.imageId as string;
  if (available) await rpc('catalog', CatalogPattern.imageSetState, { imageId, state: 'available', imageSize: 1 << 20 });
  return imageId;
}

const lp = (imageId: string) => `/v1/images/${imageId}/launch-permission`;

const createAccount = (roles: string[]) => platform.createAccount(roles);
const rpc = <T>(service: string, pattern: string, data: unknown) => platform.rpc<T>(service, pattern, data);

beforeAll(async () => {
  platform = await Platform.start('permission');
  base = platform.baseUrl;
  [seller, buyer, stranger] = await Promise.all([createAccount(['seller']), createAccount(['buyer']), createAccount(['buyer'])]);
}, 90_000);

afterAll(async () => {
  await platform?.stop();
});

describe('launch permissions over HTTP', () => {
  it('are read, modified all or nothing, and reset by the owner', async () => {
    const imageId = await register(seller);
    expect((await http(base, 'GET', lp(imageId), { key: seller.key })).body).toEqual({ imageId, launchPermissions: [] });

    const added = await http(base, 'PATCH', lp(imageId), {
      key: seller.key,
      body: { add: [{ userId: buyer.id }, { group: 'all' }] },
    });
    expect(added.status).toBe(200);
    expect(added.body).toEqual({ imageId, launchPermissions: [{ group: 'all' }, { userId: buyer.id }] });

    // One bad item: 400, and nothing in the request happened.
    for (const bad of [[{ userId: 'abcdefghijkl' }], [{ userId: '12345678901' }], [{ userId: '1234567890123' }], [{ group: 'everyone' }]]) {
      const res = await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { add: [{ userId: stranger.id }, ...bad], remove: [{ group: 'all' }] } });
      expect(expectProblem(res, 400, 'InvalidAMIAttributeItemValue').detail).toMatch(/^Invalid attribute item value ".+" for (userId|group) item type\.$/);
    }
    expect((await http(base, 'GET', lp(imageId), { key: seller.key })).body.launchPermissions).toEqual([
      { group: 'all' },
      { userId: buyer.id },
    ]);
    // Adding what is there, removing what is not: 200, no change.
    const noop = await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { add: [{ userId: buyer.id }], remove: [{ userId: stranger.id }] } });
    expect(noop.body.launchPermissions).toEqual([{ group: 'all' }, { userId: buyer.id }]);
    expectProblem(await http(base, 'PATCH', lp(imageId), { key: seller.key, body: {} }), 400, 'InvalidParameterValue');
    expectProblem(await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { add: [{ userId: buyer.id, group: 'all' }] } }), 400, 'InvalidParameterValue');

    const reset = await http(base, 'POST', `${lp(imageId)}/reset`, { key: seller.key });
    expect(reset.status).toBe(200);
    expect(reset.body).toEqual({ imageId, launchPermissions: [] });
    // An admin may act on any image.
    const byAdmin = await http(base, 'PATCH', lp(imageId), { key: platform.adminKey, body: { add: [{ userId: stranger.id }] } });
    expect(byAdmin.body.launchPermissions).toEqual([{ userId: stranger.id }]);
  });

  it('refuse everyone but the owner and admins, in EC2 terms', async () => {
    const imageId = await register(seller);
    // The stranger cannot see the private image: it does not exist.
    for (const [method, path] of [['GET', lp(imageId)], ['PATCH', lp(imageId)], ['POST', `${lp(imageId)}/reset`]] as const) {
      const res = await http(base, method, path, { key: stranger.key, ...(method === 'PATCH' ? { body: { add: [{ group: 'all' }] } } : {}) });
      expect(expectProblem(res, 404, 'InvalidAMIID.NotFound').detail).toBe(`The image id '[${imageId}]' does not exist`);
    }
    await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { add: [{ userId: buyer.id }] } });
    // The buyer sees it (shared), but may not read or change its permissions.
    expect(expectProblem(await http(base, 'GET', lp(imageId), { key: buyer.key }), 401, 'AuthFailure').detail).toBe(
      `Not authorized for image:${imageId}`,
    );
    expectProblem(await http(base, 'PATCH', lp(imageId), { key: buyer.key, body: { add: [{ group: 'all' }] } }), 401, 'AuthFailure');
    expectProblem(await http(base, 'POST', `${lp(imageId)}/reset`, { key: buyer.key }), 401, 'AuthFailure');
    expectProblem(await http(base, 'GET', lp('ami-123'), { key: seller.key }), 400, 'InvalidAMIID.Malformed');
    expectProblem(await http(base, 'GET', lp('ami-0123456789abcdef0'), { key: seller.key }), 404, 'InvalidAMIID.NotFound');
    expectProblem(await http(base, 'GET', lp(imageId)), 401, 'AuthFailure');
  });

  it('reach the catalog: a shared image becomes visible to the account it is shared with', async () => {
    const imageId = await register(seller);
    expectProblem(await http(base, 'GET', `/v1/images/${imageId}`, { key: buyer.key }), 404, 'InvalidAMIID.NotFound');
    await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { add: [{ userId: buyer.id }] } });
    await waitFor(async () => (await http(base, 'GET', `/v1/images/${imageId}`, { key: buyer.key })).status === 200, {
      what: 'the catalog to show the shared image',
    });
    await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { remove: [{ userId: buyer.id }] } });
    await waitFor(async () => (await http(base, 'GET', `/v1/images/${imageId}`, { key: buyer.key })).status === 404, {
      what: 'the catalog to hide it again',
    });
  });
});

describe('shared images over HTTP', () => {
  it('are pending until accepted or rejected, filtered by state, and gone with the permission', async () => {
    const imageId = await register(seller);
    await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { add: [{ userId: buyer.id }] } });
    const mine = (query = '') => http(base, 'GET', `/v1/shared-images${query}`, { key: buyer.key });

    expect((await mine()).body.items).toContainEqual(expect.objectContaining({ imageId, ownerId: seller.id, state: 'pending' }));
    const accepted = await http(base, 'PUT', `/v1/shared-images/${imageId}`, { key: buyer.key, body: { state: 'accepted' } });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ imageId, state: 'accepted' });
    expect((await mine('?state=accepted')).body.items.map((i: { imageId: string }) => i.imageId)).toContain(imageId);
    expect((await mine('?state=pending')).body.items.map((i: { imageId: string }) => i.imageId)).not.toContain(imageId);

    expectProblem(await http(base, 'PUT', `/v1/shared-images/${imageId}`, { key: stranger.key, body: { state: 'accepted' } }), 404, 'InvalidAMIID.NotFound');
    expectProblem(await http(base, 'PUT', `/v1/shared-images/${imageId}`, { key: buyer.key, body: { state: 'pending' } }), 400, 'InvalidParameterValue');
    expect(expectProblem(await mine('?status=accepted'), 400, 'InvalidParameterValue').detail).toMatch(/status/);

    await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { remove: [{ userId: buyer.id }] } });
    expect((await mine()).body.items.map((i: { imageId: string }) => i.imageId)).not.toContain(imageId);
    await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { add: [{ userId: buyer.id }] } });
    expect((await mine()).body.items).toContainEqual(expect.objectContaining({ imageId, state: 'pending' }));
  });
});

describe('the launch decision', () => {
  it('allows, and denies the very next request after a revoke', async () => {
    const imageId = await register(seller);
    expect(await decide(seller.id, imageId)).toEqual({ allowed: true, reason: 'owner' });
    expect(await decide(buyer.id, imageId)).toEqual({ allowed: false, reason: 'no-launch-permission' });
    for (let round = 0; round < 5; round++) {
      await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { add: [{ userId: buyer.id }] } });
      expect(await decide(buyer.id, imageId)).toEqual({ allowed: true, reason: 'launch-permission' });
      expect(await decide(buyer.id, imageId)).toEqual({ allowed: true, reason: 'launch-permission' }); // cached
      const revoked = await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { remove: [{ userId: buyer.id }] } });
      expect(revoked.status).toBe(200);
      expect(await decide(buyer.id, imageId)).toEqual({ allowed: false, reason: 'no-launch-permission' });
    }
    const pending = await register(seller, false);
    expect(await decide(seller.id, pending)).toEqual({ allowed: false, reason: 'image-not-available' });
    expect(await decide(seller.id, 'ami-00000000000000000')).toEqual({ allowed: false, reason: 'image-not-found' });
  });
});

describe('the audit log over HTTP', () => {
  it('shows admins every change with its request id, owners their image, and no one else anything', async () => {
    const imageId = await register(seller);
    const change = await http(base, 'PATCH', lp(imageId), { key: seller.key, body: { add: [{ userId: buyer.id }] } });
    const requestId = change.headers.get('x-request-id');
    await http(base, 'PUT', `/v1/shared-images/${imageId}`, { key: buyer.key, body: { state: 'rejected' } });

    const asAdmin = await http(base, 'GET', `/v1/audit-events?imageId=${imageId}`, { key: platform.adminKey });
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body.items.map((e: { action: string; actorId: string }) => [e.action, e.actorId])).toEqual([
      ['share.reject', buyer.id],
      ['launch-permission.modify', seller.id],
    ]);
    expect(asAdmin.body.items[1].requestId).toBe(requestId);
    expect(asAdmin.body.items[1].resourceId).toBe(imageId);

    const asOwner = await http(base, 'GET', `/v1/audit-events?imageId=${imageId}&limit=1`, { key: seller.key });
    expect(asOwner.body.items).toHaveLength(1);
    const next = await http(base, 'GET', `/v1/audit-events?imageId=${imageId}&limit=1&cursor=${asOwner.body.nextCursor}`, { key: seller.key });
    expect(next.body.items[0].action).toBe('launch-permission.modify');

    // The buyer rejected the share: to him the image is now like a missing one.
    expectProblem(await http(base, 'GET', `/v1/audit-events?imageId=${imageId}`, { key: buyer.key }), 404, 'InvalidAMIID.NotFound');
    expectProblem(await http(base, 'GET', `/v1/audit-events?imageId=${imageId}`, { key: stranger.key }), 404, 'InvalidAMIID.NotFound');
    expectProblem(await http(base, 'GET', '/v1/audit-events', { key: seller.key }), 403, 'UnauthorizedOperation');
    expectProblem(await http(base, 'GET', '/v1/audit-events?who=me', { key: platform.adminKey }), 400, 'InvalidParameterValue');

    // Keys and accounts are audited too.
    const keys = await http(base, 'GET', `/v1/audit-events?resourceType=apikey&limit=100`, { key: platform.adminKey });
    expect(keys.body.items.length).toBeGreaterThanOrEqual(3);
    expect(keys.body.items.every((e: { action: string }) => e.action === 'apikey.issue' || e.action === 'apikey.revoke')).toBe(true);
  });
});
