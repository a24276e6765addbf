import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogPattern, EventQueue, type ImageView, type LaunchPermissionChanged } from '@imagemart/contracts';
import { TestIdentities, waitFor } from '@imagemart/testing';
import { http, Platform, type TestAccount } from './support/platform.js';

/**
 * Image lists through both caches (the gateway's pages and the catalog's), on the real processes:
 * each list is asked for twice first, so that the next answer would come from a cache if one
 * wrongly kept it; then a change, answered, must show in the very next list.
 */
let platform: Platform;
let base: string;
let db: pg.Client;
let events: Queue;
let seller: TestAccount;
let buyer: TestAccount;
let otherBuyer: TestAccount;

let revision = 100;
async function launchPermission(imageId: string, state: Omit<LaunchPermissionChanged, 'imageId' | 'revision'>): Promise<void> {
  const payload: LaunchPermissionChanged = { imageId, ...state, revision: ++revision };
  const eventId = randomUUID();
  await events.add(
    'permission.launch-permission.changed',
    TestIdentities.shared().signedEvent(
      'permission',
      { id: eventId, type: 'permission.launch-permission.changed', payload, occurredAt: new Date().toISOString() },
      EventQueue.catalog,
    ),
    { jobId: eventId },
  );
  await waitFor(
    async () => {
      const { rows } = await db.query<{ lp_revision: number }>('SELECT lp_revision FROM catalog.image WHERE id = $1', [imageId]);
      return (rows[0]?.lp_revision ?? 0) >= payload.revision;
    },
    { what: `launch permissions of ${imageId}` },
  );
}

async function available(name: string, description: string, grants: Omit<LaunchPermissionChanged, 'imageId' | 'revision'>): Promise<ImageView> {
  const res = await http(base, 'POST', '/v1/images', { key: seller.key, body: { name, description, architecture: 'x86_64' } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const image = res.body as ImageView;
  await platform.rpc('catalog', CatalogPattern.imageSetState, { imageId: image.imageId, state: 'available', imageSize: 1 << 20 });
  await launchPermission(image.imageId, grants);
  return image;
}

/** The list twice (so that a cache holds it), then once more: the answer of the third. */
async function items(query: string, key?: string): Promise<ImageView[]> {
  let last: ImageView[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await http(base, 'GET', `/v1/images?${query}`, key ? { key } : {});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    last = res.body.items as ImageView[];
  }
  return last;
}
const ids = (list: ImageView[]) => list.map((i) => i.imageId);

beforeAll(async () => {
  platform = await Platform.start('catalog-list-cache');
  base = platform.baseUrl;
  db = new pg.Client({ connectionString: platform.env['DATABASE_URL'] });
  await db.connect();
  events = new Queue(EventQueue.catalog, {
    connection: new Redis(platform.env['REDIS_URL'], { maxRetriesPerRequest: null }),
    prefix: platform.env['REDIS_PREFIX'],
  });
  [seller, buyer, otherBuyer] = await Promise.all([
    platform.createAccount(['seller']),
    platform.createAccount(['buyer']),
    platform.createAccount(['buyer']),
  ]);
}, 120_000);

afterAll(async () => {
  await events?.close();
  await db?.end();
  await platform?.stop();
});

describe('cached image lists', () => {
  it('answers JSON as before', async () => {
    const res = await http(base, 'GET', '/v1/images?limit=5');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.body).toEqual({ items: expect.any(Array), nextCursor: null });
  });

  it('shows a description change, answered, in the next list of everyone', async () => {
    const image = await available('cache-e2e-lynx', 'lynx ears', { public: true, grants: [] });
    for (const key of [undefined, buyer.key]) {
      expect(ids(await items('q=lynx', key))).toEqual([image.imageId]);
      expect(ids(await items('sort=name&limit=100', key))).toContain(image.imageId);
    }
    const res = await http(base, 'PATCH', `/v1/images/${image.imageId}`, { key: seller.key, body: { description: 'lynx ears and tufts' } });
    expect(res.status).toBe(200);
    for (const key of [undefined, buyer.key]) {
      const afterChange = await http(base, 'GET', '/v1/images?q=lynx', key ? { key } : {});
      expect(afterChange.body.items[0].description).toBe('lynx ears and tufts');
      const browse = await http(base, 'GET', '/v1/images?sort=name&limit=100', key ? { key } : {});
      expect((browse.body.items as ImageView[]).find((i) => i.imageId === image.imageId)?.description).toBe('lynx ears and tufts');
      expect(ids((await http(base, 'GET', '/v1/images?q=tufts', key ? { key } : {})).body.items as ImageView[])).toEqual([image.imageId]);
    }
  });

  it('drops a deregistered image from the next list of everyone', async () => {
    const image = await available('cache-e2e-ibex', 'ibex horns', { public: true, grants: [] });
    for (const key of [undefined, buyer.key, seller.key]) expect(ids(await items('q=ibex', key))).toEqual([image.imageId]);
    expect((await http(base, 'DELETE', `/v1/images/${image.imageId}`, { key: seller.key })).status).toBe(200);
    for (const key of [undefined, buyer.key, seller.key]) {
      expect((await http(base, 'GET', '/v1/images?q=ibex', key ? { key } : {})).body.items).toEqual([]);
    }
  });

  it("shows a shared image to the account it is shared with only, and drops it once the share is revoked", async () => {
    const image = await available('cache-e2e-tapir', 'tapir snout', { public: false, grants: [{ accountId: buyer.id, shareState: 'accepted' }] });
    expect(ids(await items('q=tapir', buyer.key))).toEqual([image.imageId]);
    // The same query right after, by another account and anonymously: never the buyer's page.
    expect(await items('q=tapir', otherBuyer.key)).toEqual([]);
    expect(await items('q=tapir')).toEqual([]);
    await launchPermission(image.imageId, { public: false, grants: [] });
    expect((await http(base, 'GET', '/v1/images?q=tapir', { key: buyer.key })).body.items).toEqual([]);
  });
});
