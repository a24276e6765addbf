import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogPattern, EventQueue, type ImageView, type LaunchPermissionChanged } from '@imagemart/contracts';
import { TestIdentities, waitFor } from '@imagemart/testing';
import { http, Platform, expectProblem } from './support/platform.js';

/**
 * The catalog over HTTP on the five real processes: every filter, every sort order, pages while
 * images are being added, and the visibility rules. Launch permissions reach the catalog as they
 * do in production, as `permission.launch-permission.changed` events on its queue; the publishing
 * flow's state changes as calls of the internal pattern.
 */
let platform: Platform;
let base: string;
let db: pg.Client;
let events: Queue;

interface Account {
  id: string;
  key: string;
}
let sellerA: Account;
let sellerB: Account;
let buyer: Account;
const img: Record<string, ImageView> = {};
let paidCode: string;
let freeListingId: string;

let revision = 100;
/** The permission service's word on an image's launch permissions; waits until the catalog holds it. */
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

async function register(owner: Account, body: Record<string, unknown>): Promise<ImageView> {
  const res = await http(base, 'POST', '/v1/images', { key: owner.key, body: { architecture: 'x86_64', ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as ImageView;
}

async function available(owner: Account, body: Record<string, unknown>, grants?: Omit<LaunchPermissionChanged, 'imageId' | 'revision'>) {
  const image = await register(owner, body);
  await rpc(CatalogPattern.imageSetState, { imageId: image.imageId, state: 'available', imageSize: 1 << 20 });
  if (grants) await launchPermission(image.imageId, grants);
  return image;
}

const PUBLIC = { public: true, grants: [] };

async function list(query: string, key?: string): Promise<string[]> {
  const res = await http(base, 'GET', `/v1/images?limit=100${query ? `&${query}` : ''}`, key ? { key } : {});
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return (res.body.items as ImageView[]).map((i) => i.name);
}

const sorted = (names: string[]) => [...names].sort();

const createAccount = (roles: string[]) => platform.createAccount(roles);
/** One call of a catalog pattern on its Redis stream, as another service makes it. */
const rpc = <T>(pattern: string, data: unknown) => platform.rpc<T>('catalog', pattern, data);

beforeAll(async () => {
  platform = await Platform.start('catalog');
  base = platform.baseUrl;
  db = new pg.Client({ connectionString: platform.env['DATABASE_URL'] });
  await db.connect();
  events = new Queue(EventQueue.catalog, {
    connection: new Redis(platform.env['REDIS_URL'], { maxRetriesPerRequest: null }),
    prefix: platform.env['REDIS_PREFIX'],
  });
  [sellerA, sellerB, buyer] = await Promise.all([createAccount(['seller']), createAccount(['seller']), createAccount(['buyer'])]);

  const free = await http(base, 'POST', '/v1/listings', {
    key: sellerA.key,
    body: { title: 'Alpha web server', summary: 'nginx, tuned', description: 'A reverse proxy appliance.', categories: ['web-servers'], pricingType: 'free' },
  });
  expect(free.status, JSON.stringify(free.body)).toBe(201);
  freeListingId = free.body.listingId;
  const paid = await http(base, 'POST', '/v1/listings', {
    key: sellerA.key,
    body: { title: 'Alpha database', summary: 'PostgreSQL', categories: ['databases'], pricingType: 'paid' },
  });
  paidCode = paid.body.productCode;
  expect(paidCode).toMatch(/^prod-[0-9a-z]{20}$/);

  const c = { public: false };
  img['a1'] = await available(sellerA, { name: 'alpha-web_server', description: 'nginx reverse proxy', listingId: freeListingId }, PUBLIC);
  img['a2'] = await available(sellerA, { name: 'alpha-db', architecture: 'arm64', listingId: paid.body.listingId }, PUBLIC);
  img['a3'] = await available(sellerA, { name: 'alpha-private' });
  img['a4'] = await register(sellerA, { name: 'alpha-pending' });
  img['a5'] = await register(sellerA, { name: 'alpha-failed' });
  await rpc(CatalogPattern.imageSetState, { imageId: img['a5'].imageId, state: 'failed', stateReason: { code: 'Client.InvalidBundle', message: 'digest' } });
  img['a6'] = await available(sellerA, { name: 'alpha-shared-pending' }, { ...c, grants: [{ accountId: buyer.id, shareState: 'pending' }] });
  img['a7'] = await available(sellerA, { name: 'alpha-shared-accepted' }, { ...c, grants: [{ accountId: buyer.id, shareState: 'accepted' }] });
  img['a8'] = await available(sellerA, { name: 'alpha-shared-rejected' }, { ...c, grants: [{ accountId: buyer.id, shareState: 'rejected' }] });
  img['a9'] = await available(sellerA, { name: 'alpha-deregistered' }, PUBLIC);
  expect((await http(base, 'DELETE', `/v1/images/${img['a9'].imageId}`, { key: sellerA.key })).status).toBe(200);
  img['a10'] = await available(sellerA, { name: 'alpha-webXserver', architecture: 'i386' }, PUBLIC);
  img['b1'] = await available(sellerB, { name: 'beta-tool', description: 'a small nginx helper' }, PUBLIC);
  img['b2'] = await available(sellerB, { name: 'beta-private' });
}, 120_000);

afterAll(async () => {
  await events?.close();
  await db?.end();
  await platform?.stop();
});

const PUBLIC_NAMES = ['alpha-web_server', 'alpha-db', 'alpha-webXserver', 'beta-tool'];
const A_OWN = [
  'alpha-web_server',
  'alpha-db',
  'alpha-private',
  'alpha-pending',
  'alpha-failed',
  'alpha-shared-pending',
  'alpha-shared-accepted',
  'alpha-shared-rejected',
  'alpha-webXserver',
];

describe('visibility', () => {
  it('shows anonymous callers the public available images only', async () => {
    expect(sorted(await list(''))).toEqual(sorted(PUBLIC_NAMES));
  });

  it('shows a signed-in account public images and the shares it accepted', async () => {
    expect(sorted(await list('', buyer.key))).toEqual(sorted([...PUBLIC_NAMES, 'alpha-shared-accepted']));
  });

  it('shows an owner all his images but the deregistered one, in every state', async () => {
    expect(sorted(await list('', sellerA.key))).toEqual(sorted([...A_OWN, 'beta-tool']));
  });

  it('executable-by=self: own images and those a launch permission names the caller in, pending or accepted', async () => {
    expect(sorted(await list('executable-by=self', buyer.key))).toEqual(['alpha-shared-accepted', 'alpha-shared-pending']);
    expect(sorted(await list('executable-by=self', sellerB.key))).toEqual(['beta-private', 'beta-tool']);
    expect(sorted(await list('executable-by=all', buyer.key))).toEqual(sorted(PUBLIC_NAMES));
    const anonymous = await http(base, 'GET', '/v1/images?executable-by=self');
    expectProblem(anonymous, 401, 'AuthFailure');
  });

  it("answers another account's private image exactly like a missing one", async () => {
    const missing = await http(base, 'GET', '/v1/images/ami-0000000000000000a', { key: buyer.key });
    expectProblem(missing, 404, 'InvalidAMIID.NotFound');
    for (const name of ['a3', 'a4', 'a5', 'a8', 'a9', 'b2']) {
      const id = img[name].imageId;
      const res = await http(base, 'GET', `/v1/images/${id}`, { key: buyer.key });
      expectProblem(res, 404, 'InvalidAMIID.NotFound');
      expect(res.body.detail).toBe(missing.body.detail.replace('ami-0000000000000000a', id));
      expect(Object.keys(res.body).sort()).toEqual(Object.keys(missing.body).sort());
    }
    // A pending share can be looked at before it is accepted; an accepted one too.
    expect((await http(base, 'GET', `/v1/images/${img['a6'].imageId}`, { key: buyer.key })).status).toBe(200);
    expect((await http(base, 'GET', `/v1/images/${img['a7'].imageId}`, { key: buyer.key })).body.visibility).toBe('shared');
    expect((await http(base, 'GET', `/v1/images/${img['a1'].imageId}`)).body.visibility).toBe('public');
  });

  it('keeps a deregistered image readable by its owner only, and in no list', async () => {
    const id = img['a9'].imageId;
    const own = await http(base, 'GET', `/v1/images/${id}`, { key: sellerA.key });
    expect(own.body).toMatchObject({ state: 'deregistered', visibility: 'public' });
    expectProblem(await http(base, 'GET', `/v1/images/${id}`), 404, 'InvalidAMIID.NotFound');
    expect(await list('state=pending,available,failed', sellerA.key)).not.toContain('alpha-deregistered');
    expect(await rpc(CatalogPattern.imageInternalGet, { imageId: id })).toMatchObject({ imageId: id, state: 'deregistered' });
  });

  it('shows a listing only with the versions the caller may see', async () => {
    const anonymous = await http(base, 'GET', `/v1/listings/${freeListingId}`);
    expect(anonymous.status).toBe(200);
    expect(anonymous.body.versions.map((v: ImageView) => v.name)).toEqual(['alpha-web_server']);
    expect(anonymous.body.seller.displayName).toBe(`Seller ${sellerA.id}`);
    expect(anonymous.body).toHaveProperty('price');
    const listings = await http(base, 'GET', '/v1/listings?category=web-servers');
    expect(listings.body.items.map((l: { listingId: string }) => l.listingId)).toEqual([freeListingId]);
  });
});

describe('filters', () => {
  it.each([
    ['architecture=arm64', ['alpha-db']],
    ['architecture=x86_64&architecture=i386', ['alpha-web_server', 'alpha-webXserver', 'beta-tool']],
    ['architecture=i386,arm64', ['alpha-db', 'alpha-webXserver']],
    ['is-public=true', PUBLIC_NAMES],
    ['pricing-type=paid', ['alpha-db']],
    ['pricing-type=free', ['alpha-web_server', 'alpha-webXserver', 'beta-tool']],
    ['category=web-servers', ['alpha-web_server']],
    ['category=databases,web-servers', ['alpha-db', 'alpha-web_server']],
    ['name=alpha-web_server', ['alpha-web_server']],
    ['name=alpha-web%3Fserver', ['alpha-web_server', 'alpha-webXserver']],
    ['name=*server', ['alpha-web_server', 'alpha-webXserver']],
    ['name=beta*&name=*db', ['alpha-db', 'beta-tool']],
    ['state=available', PUBLIC_NAMES],
    ['state=pending', []],
    ['q=nginx', ['alpha-web_server', 'beta-tool']],
  ])('anonymous %s', async (query, expected) => {
    expect(sorted(await list(query))).toEqual(sorted(expected));
  });

  it('owner: an account id or self', async () => {
    expect(await list(`owner=${sellerB.id}`)).toEqual(['beta-tool']);
    expect(sorted(await list(`owner=${sellerB.id}`, sellerB.key))).toEqual(['beta-private', 'beta-tool']);
    expect(sorted(await list('owner=self', sellerA.key))).toEqual(sorted(A_OWN));
    expectProblem(await http(base, 'GET', '/v1/images?owner=self'), 401, 'AuthFailure');
  });

  it('product-code', async () => {
    expect(await list(`product-code=${paidCode}`)).toEqual(['alpha-db']);
    expect(await list('product-code=prod-00000000000000000000')).toEqual([]);
  });

  it('state: an owner sees his pending and failed images, others only available ones', async () => {
    expect(await list('state=pending', sellerA.key)).toEqual(['alpha-pending']);
    expect(await list('state=failed', sellerA.key)).toEqual(['alpha-failed']);
    expect(await list('state=failed', buyer.key)).toEqual([]);
    expect(sorted(await list('is-public=false', sellerA.key))).toEqual(
      sorted(A_OWN.filter((n) => !PUBLIC_NAMES.includes(n))),
    );
  });

  it('refuses unknown filters, bad wildcards, bad values and bad page tokens, naming what is wrong', async () => {
    const unknown = expectProblem(await http(base, 'GET', '/v1/images?platform=linux'), 400, 'InvalidFilter');
    expect(unknown.errors).toEqual([{ path: 'platform', message: 'unknown filter' }]);
    const wildcard = expectProblem(await http(base, 'GET', '/v1/images?name=web%25'), 400, 'InvalidFilter');
    expect(wildcard.errors?.[0]?.path).toBe('name');
    expect(expectProblem(await http(base, 'GET', '/v1/images?architecture=sparc'), 400, 'InvalidParameterValue').errors?.[0]?.path).toBe(
      'architecture',
    );
    expectProblem(await http(base, 'GET', '/v1/images?is-public=yes'), 400, 'InvalidParameterValue');
    expectProblem(await http(base, 'GET', '/v1/images?limit=1000'), 400, 'InvalidParameterValue');
    expectProblem(await http(base, 'GET', '/v1/images?sort=relevance'), 400, 'InvalidParameterValue');
    expectProblem(await http(base, 'GET', '/v1/images?cursor=not-a-token'), 400, 'InvalidPaginationToken');
    // A token belongs to its query.
    const first = await http(base, 'GET', '/v1/images?limit=1&sort=name');
    expectProblem(await http(base, 'GET', `/v1/images?limit=1&sort=newest&cursor=${first.body.nextCursor}`), 400, 'InvalidPaginationToken');
    expectProblem(await http(base, 'GET', `/v1/images?limit=1&sort=name&architecture=arm64&cursor=${first.body.nextCursor}`), 400, 'InvalidPaginationToken');
  });
});

describe('sort orders', () => {
  it('name: byte order of the names', async () => {
    const names = await list('sort=name', sellerA.key);
    expect(names).toEqual([...names].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1)));
    expect(names).toHaveLength(A_OWN.length + 1);
  });

  it('newest: most recent registration first', async () => {
    const res = await http(base, 'GET', '/v1/images?sort=newest&limit=100', { key: sellerA.key });
    const dates = (res.body.items as ImageView[]).map((i) => i.creationDate);
    expect(dates).toEqual([...dates].sort().reverse());
    expect(res.body.items[0].name).toBe('beta-tool');
  });

  it('popularity: most launches first', async () => {
    await rpc(CatalogPattern.imageRecordLaunches, { imageId: img['b1'].imageId, count: 3 });
    await rpc(CatalogPattern.imageRecordLaunches, { imageId: img['a10'].imageId, count: 7 });
    await rpc(CatalogPattern.imageRecordLaunches, { imageId: img['a1'].imageId, count: 1 });
    expect(await list('sort=popularity')).toEqual(['alpha-webXserver', 'beta-tool', 'alpha-web_server', 'alpha-db']);
  });

  it('relevance: the better match first (the default with q)', async () => {
    expect(await list('q=nginx')).toEqual(['alpha-web_server', 'beta-tool']);
    expect(await list('q=nginx&sort=relevance')).toEqual(['alpha-web_server', 'beta-tool']);
  });
});

describe('pages', () => {
  it.each(['newest', 'name'])('sort=%s: no image twice and none skipped while images are being registered', async (sort) => {
    const seller = await createAccount(['seller']);
    const before: string[] = [];
    for (let n = 0; n < 30; n++) before.push((await register(seller, { name: `paged-${sort}-${String(n).padStart(2, '0')}` })).imageId);

    let inserting = true;
    let inserted = 0;
    const writer = (async () => {
      for (let n = 0; inserting && n < 60; n++) {
        await register(seller, { name: `late-${sort}-${n}` });
        inserted++;
      }
    })();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await http(base, 'GET', `/v1/images?owner=self&sort=${sort}&limit=7${cursor ? `&cursor=${cursor}` : ''}`, { key: seller.key });
      expect(res.status).toBe(200);
      seen.push(...(res.body.items as ImageView[]).map((i) => i.imageId));
      cursor = res.body.nextCursor;
    } while (cursor);
    const insertedWhilePaging = inserted;
    inserting = false;
    await writer;

    expect(insertedWhilePaging).toBeGreaterThan(0);

    expect(new Set(seen).size).toBe(seen.length);
    for (const id of before) expect(seen).toContain(id);
  });
});

describe('seller operations and bad input', () => {
  it('registers with the rules of EC2 names, once per name, only for sellers', async () => {
    const trimmed = await register(sellerB, { name: '  beta (trimmed) [v1]  ', description: '  spaced  ' });
    expect(trimmed).toMatchObject({ name: 'beta (trimmed) [v1]', description: 'spaced', state: 'pending', visibility: 'private' });
    expect(trimmed.imageId).toMatch(/^ami-[0-9a-f]{17}$/);
    const duplicate = await http(base, 'POST', '/v1/images', { key: sellerB.key, body: { name: 'beta-tool', architecture: 'x86_64' } });
    expectProblem(duplicate, 409, 'InvalidAMIName.Duplicate');
    expectProblem(await http(base, 'POST', '/v1/images', { key: buyer.key, body: { name: 'buyer-image', architecture: 'x86_64' } }), 403, 'UnauthorizedOperation');
    for (const body of [
      { name: 'ab', architecture: 'x86_64' },
      { name: 'bad%name', architecture: 'x86_64' },
      { name: 'long-description', architecture: 'x86_64', description: 'x'.repeat(256) },
      { name: 'hvm-with-kernel', architecture: 'x86_64', kernelId: 'aki-0123abcd' },
      { name: 'bad-mapping', architecture: 'x86_64', blockDeviceMappings: [{ deviceName: '/dev/sdb', virtualName: 'ephemeral0', ebs: { volumeSize: 8 } }] },
      { name: 'unknown-field', architecture: 'x86_64', owner: sellerA.id },
    ]) {
      expectProblem(await http(base, 'POST', '/v1/images', { key: sellerB.key, body }), 400, 'InvalidParameterValue');
    }
  });

  it('lets only the owner change a description; malformed and unknown ids answer 400 and 404', async () => {
    const id = img['b1'].imageId;
    const changed = await http(base, 'PATCH', `/v1/images/${id}`, { key: sellerB.key, body: { description: 'a small nginx helper, v2' } });
    expect(changed.status).toBe(200);
    expect(changed.body.revision).toBeGreaterThan(img['b1'].revision);
    expectProblem(await http(base, 'PATCH', `/v1/images/${id}`, { key: sellerA.key, body: { description: 'mine' } }), 403, 'UnauthorizedOperation');
    expectProblem(await http(base, 'PATCH', `/v1/images/${img['b2'].imageId}`, { key: sellerA.key, body: { description: 'mine' } }), 404, 'InvalidAMIID.NotFound');
    expectProblem(await http(base, 'DELETE', `/v1/images/${img['b2'].imageId}`, { key: sellerA.key }), 404, 'InvalidAMIID.NotFound');
    expectProblem(await http(base, 'GET', '/v1/images/ami-123'), 400, 'InvalidAMIID.Malformed');
    expectProblem(await http(base, 'GET', '/v1/images/ami-0123456789ABCDEF0'), 400, 'InvalidAMIID.Malformed');
    expectProblem(await http(base, 'GET', '/v1/listings/lst-1'), 400, 'InvalidListingID.Malformed');
    expectProblem(await http(base, 'GET', '/v1/listings/lst-0000000000000000a'), 404, 'InvalidListingID.NotFound');
  });

  it('lets an admin deregister any image; it leaves every list at once', async () => {
    const image = await available(sellerB, { name: 'admin-removes-this' }, PUBLIC);
    expect(await list('name=admin-removes-this')).toEqual(['admin-removes-this']);
    const res = await http(base, 'DELETE', `/v1/images/${image.imageId}`, { key: platform.adminKey });
    expect(res.body.state).toBe('deregistered');
    expect(await list('name=admin-removes-this')).toEqual([]);
    expect(await list('name=admin-removes-this', sellerB.key)).toEqual([]);
  });

  it('sets a seller profile for the seller himself only', async () => {
    const put = await http(base, 'PUT', `/v1/sellers/${sellerA.id}`, {
      key: sellerA.key,
      body: { displayName: 'Alpha Images', about: 'Since 2026', website: 'https://alpha.example.com' },
    });
    expect(put.status).toBe(200);
    expect((await http(base, 'GET', `/v1/sellers/${sellerA.id}`)).body.displayName).toBe('Alpha Images');
    expectProblem(
      await http(base, 'PUT', `/v1/sellers/${sellerA.id}`, { key: sellerB.key, body: { displayName: 'Impostor' } }),
      403,
      'UnauthorizedOperation',
    );
  });
});
