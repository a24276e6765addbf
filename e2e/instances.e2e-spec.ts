import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogPattern, PermissionPattern, type InstanceChanged } from '@imagemart/contracts';
import { waitFor } from '@imagemart/testing';
import { http, Platform, expectProblem, type TestAccount } from './support/platform.js';

/**
 * Launches over HTTP with the five real processes: the launch decision (owner, public, shared,
 * paid with and without a subscription), idempotency, quotas, another account's instance,
 * terminating twice, an instance brought to running by the simulated host from a real bundle,
 * and the usage events in the catalog's outbox with the exact times the API shows.
 */
let platform: Platform;
let base: string;
let db: pg.Client;
let seller: TestAccount;
let bundledImageId: string;

const RUNNING_LIMIT = 5;
const BURST = 8;

beforeAll(async () => {
  platform = await Platform.start('instances', {
    INSTANCE_RUNNING_LIMIT: String(RUNNING_LIMIT),
    INSTANCE_LAUNCH_BURST: String(BURST),
    // Slow enough that no token comes back while a test runs.
    INSTANCE_LAUNCH_REFILL_PER_SECOND: '0.01',
  });
  base = platform.baseUrl;
  db = new pg.Client({ connectionString: platform.env['DATABASE_URL'] });
  await db.connect();
  seller = await platform.createAccount(['seller']);
  bundledImageId = await uploadedImage(seller);
}, 120_000);

afterAll(async () => {
  await db?.end();
  await platform?.stop();
});

const createAccount = (roles: string[]) => platform.createAccount(roles);
let n = 0;

/** An image record made available by the publishing flow's internal call: it has no bundle. */
async function availableImage(owner: TestAccount, body: Record<string, unknown> = {}): Promise<string> {
  const res = await http(base, 'POST', '/v1/images', {
    key: owner.key,
    body: { name: `launch test ${++n} ${randomBytes(3).toString('hex')}`, architecture: 'x86_64', ...body },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  await platform.rpc('catalog', CatalogPattern.imageSetState, {
    imageId: res.body.imageId,
    state: 'available',
    imageSize: 1 << 20,
  });
  return res.body.imageId as string;
}

/** An image uploaded, bundled and verified by the bundler-worker: a bundle the host can fetch. */
async function uploadedImage(owner: TestAccount): Promise<string> {
  const data = randomBytes(256 * 1024);
  const created = await http(base, 'POST', '/v1/uploads', {
    key: owner.key,
    body: {
      name: `bootable ${randomBytes(3).toString('hex')}`,
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      rootDeviceName: '/dev/xvda',
      blockDeviceMappings: [],
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const { uploadId, imageId } = created.body as { uploadId: string; imageId: string };
  const part = await fetch(`${base}/v1/uploads/${uploadId}/parts/1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${owner.key}`, 'content-type': 'application/octet-stream' },
    body: data,
  });
  expect(part.status, await part.clone().text()).toBe(200);
  expect((await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: owner.key })).status).toBe(200);
  await waitFor(
    async () => {
      const res = await http(base, 'GET', `/v1/images/${imageId}`, { key: owner.key });
      if (res.body.state === 'failed') throw new Error(JSON.stringify(res.body));
      return res.body.state === 'available';
    },
    { timeoutMs: 60_000, intervalMs: 100, what: 'the uploaded image to become available' },
  );
  return imageId;
}

const share = async (owner: TestAccount, imageId: string, add: unknown[]) => {
  const res = await http(base, 'PATCH', `/v1/images/${imageId}/launch-permission`, { key: owner.key, body: { add } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
};

const launch = (account: TestAccount, body: Record<string, unknown>) =>
  http(base, 'POST', '/v1/instances', { key: account.key, body: { instanceType: 't3.micro', ...body } });

async function launched(account: TestAccount, body: Record<string, unknown>) {
  const res = await launch(account, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { reservationId: string; ownerId: string; instances: { instanceId: string; state: string; productCode: string | null }[] };
}

const instance = async (account: TestAccount, id: string) => (await http(base, 'GET', `/v1/instances/${id}`, { key: account.key })).body;

async function usageEvents(instanceId: string): Promise<(InstanceChanged & { queue: string })[]> {
  const { rows } = await db.query<{ payload: InstanceChanged; queue: string }>(
    `SELECT payload, queue FROM catalog.outbox_event WHERE type = 'catalog.instance.changed' AND payload->>'instanceId' = $1 ORDER BY created_at`,
    [instanceId],
  );
  return rows.map((r) => ({ ...r.payload, queue: r.queue }));
}

describe('the launch decision', () => {
  it('lets the owner launch a private image and nobody else (an unseen image is missing)', async () => {
    const imageId = await availableImage(seller);
    const mine = await launched(seller, { imageId });
    expect(mine.instances).toEqual([expect.objectContaining({ state: 'pending', productCode: null })]);
    const stranger = await createAccount(['buyer']);
    expectProblem(await launch(stranger, { imageId }), 404, 'InvalidAMIID.NotFound');
  });

  it('lets anyone launch a public image, and the named account a shared one', async () => {
    const [buyer, named, stranger] = await Promise.all([createAccount(['buyer']), createAccount(['buyer']), createAccount(['buyer'])]);
    const publicImage = await availableImage(seller);
    await share(seller, publicImage, [{ group: 'all' }]);
    expect((await launched(buyer, { imageId: publicImage })).ownerId).toBe(buyer.id);

    const shared = await availableImage(seller);
    await share(seller, shared, [{ userId: named.id }]);
    expect((await launched(named, { imageId: shared })).instances).toHaveLength(1);
    expectProblem(await launch(stranger, { imageId: shared }), 404, 'InvalidAMIID.NotFound');
  });

  it('needs an active subscription for a paid image', async () => {
    const listing = await http(base, 'POST', '/v1/listings', {
      key: seller.key,
      body: { title: `Paid appliance ${randomBytes(3).toString('hex')}`, summary: 'paid', categories: ['security'], pricingType: 'paid' },
    });
    expect(listing.status, JSON.stringify(listing.body)).toBe(201);
    const code = listing.body.productCode as string;
    const pricing = { currency: 'USD', instanceTypes: [{ instanceType: 't3.micro', markup: { percent: '20' } }], monthlyFee: '4.99', signUpFee: '0' };
    expect((await http(base, 'PUT', `/v1/products/${code}/pricing`, { key: seller.key, body: pricing })).status).toBe(200);
    const imageId = await availableImage(seller, { listingId: listing.body.listingId });
    await share(seller, imageId, [{ group: 'all' }]);

    const buyer = await createAccount(['buyer']);
    expectProblem(await launch(buyer, { imageId }), 403, 'OptInRequired');
    const sub = await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: code } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    // The decision learns of the subscription from billing's event (a denial it cached a moment
    // ago lasts until then). Then: an instance type with a base rate the product is not offered on.
    await waitFor(async () => (await platform.rpc<{ allowed: boolean }>('permission', PermissionPattern.launchDecide, { accountId: buyer.id, imageId })).allowed, {
      what: 'the decision to see the subscription',
    });
    expectProblem(await launch(buyer, { imageId, instanceType: 'm5.large' }), 400, 'InvalidInstanceType');
    const ok = await launched(buyer, { imageId });
    expect(ok.instances[0]).toMatchObject({ productCode: code });
    const events = await waitFor(async () => {
      const e = await usageEvents(ok.instances[0].instanceId);
      return e.length > 0 ? e : undefined;
    });
    expect(events[0]).toMatchObject({ accountId: buyer.id, sellerId: seller.id, productCode: code, state: 'pending', queue: 'billing-events' });
  });

  it("answers a non-owner's launch 404 at once after the image's deregister has answered, the owner's 409", async () => {
    const buyer = await createAccount(['buyer']);
    const imageId = await availableImage(seller);
    await share(seller, imageId, [{ group: 'all' }]);
    // Launched once: the catalog keeps the image's record and the buyer's allowance.
    await launched(buyer, { imageId });
    const before = await db.query(`SELECT count(*)::int AS n FROM catalog.instance WHERE image_id = $1`, [imageId]);
    const gone = await http(base, 'DELETE', `/v1/images/${imageId}`, { key: seller.key });
    expect(gone.status, JSON.stringify(gone.body)).toBe(200);
    // At once: the permission service has not necessarily projected the deregister yet.
    expectProblem(await launch(buyer, { imageId }), 404, 'InvalidAMIID.NotFound');
    expectProblem(await launch(seller, { imageId }), 409, 'InvalidAMIID.Unavailable');
    const after = await db.query(`SELECT count(*)::int AS n FROM catalog.instance WHERE image_id = $1`, [imageId]);
    expect(after.rows[0]).toEqual(before.rows[0]);
  });

  it('refuses bad launches with the EC2 code and launches nothing', async () => {
    const buyer = await createAccount(['buyer']);
    const pendingRes = await http(base, 'POST', '/v1/images', { key: seller.key, body: { name: `pending ${randomBytes(3).toString('hex')}`, architecture: 'x86_64' } });
    const pending = pendingRes.body.imageId as string;
    await share(seller, pending, [{ group: 'all' }]);
    expectProblem(await launch(seller, { imageId: pending }), 409, 'InvalidAMIID.Unavailable');
    expectProblem(await launch(buyer, { imageId: pending }), 404, 'InvalidAMIID.NotFound');
    const gone = await availableImage(seller);
    expect((await http(base, 'DELETE', `/v1/images/${gone}`, { key: seller.key })).status).toBe(200);
    expectProblem(await launch(seller, { imageId: gone }), 409, 'InvalidAMIID.Unavailable');
    expectProblem(await launch(buyer, { imageId: 'ami-00000000000000000' }), 404, 'InvalidAMIID.NotFound');
    expectProblem(await launch(buyer, { imageId: 'ami-1' }), 400, 'InvalidParameterValue');
    const publicImage = await availableImage(seller);
    await share(seller, publicImage, [{ group: 'all' }]);
    expectProblem(await launch(buyer, { imageId: publicImage, instanceType: 'zz9.nothing' }), 400, 'InvalidInstanceType');
    const zero = expectProblem(await launch(buyer, { imageId: publicImage, count: 0 }), 400, 'InvalidParameterValue');
    expect(zero.errors).toContainEqual({ path: 'count', message: 'must be at least 1' });
    expectProblem(await launch(buyer, { imageId: publicImage, count: 101 }), 400, 'InvalidParameterValue');
    expectProblem(await http(base, 'POST', '/v1/instances', { body: { imageId: publicImage, instanceType: 't3.micro' } }), 401, 'AuthFailure');
    expect((await http(base, 'GET', '/v1/instances', { key: buyer.key })).body).toEqual({ items: [], nextCursor: null });
  });
});

describe('idempotency and quotas', () => {
  it('answers the same instances for the same client token; another request with it is 409', async () => {
    const buyer = await createAccount(['buyer', 'seller']);
    const imageId = await availableImage(buyer);
    const first = await launched(buyer, { imageId, count: 2, clientToken: 'my-token-1' });
    const again = await launched(buyer, { imageId, count: 2, clientToken: 'my-token-1' });
    expect(again.instances.map((i) => i.instanceId)).toEqual(first.instances.map((i) => i.instanceId));
    expectProblem(await launch(buyer, { imageId, count: 1, clientToken: 'my-token-1' }), 409, 'IdempotentParameterMismatch');
    expect((await http(base, 'GET', '/v1/instances', { key: buyer.key })).body.items).toHaveLength(2);
  });

  it('caps pending and running instances per account, all or nothing', async () => {
    const buyer = await createAccount(['buyer', 'seller']);
    const imageId = await availableImage(buyer);
    await launched(buyer, { imageId, count: RUNNING_LIMIT - 1 });
    expectProblem(await launch(buyer, { imageId, count: 2 }), 400, 'InstanceLimitExceeded');
    expect((await http(base, 'GET', '/v1/instances', { key: buyer.key })).body.items).toHaveLength(RUNNING_LIMIT - 1);
  });

  it('caps the launch rate per account: RequestLimitExceeded once the burst is spent', async () => {
    const [buyer, other] = await Promise.all([createAccount(['buyer']), createAccount(['buyer'])]);
    for (let i = 0; i < BURST; i++) expectProblem(await launch(buyer, { imageId: 'ami-00000000000000000' }), 404, 'InvalidAMIID.NotFound');
    expectProblem(await launch(buyer, { imageId: 'ami-00000000000000000' }), 429, 'RequestLimitExceeded');
    expectProblem(await launch(other, { imageId: 'ami-00000000000000000' }), 404, 'InvalidAMIID.NotFound');
  });
});

describe('instances', () => {
  it("answers another account's instance as missing, and a malformed id as malformed", async () => {
    const [owner, other] = await Promise.all([createAccount(['buyer', 'seller']), createAccount(['buyer'])]);
    const imageId = await availableImage(owner);
    const id = (await launched(owner, { imageId })).instances[0].instanceId;
    expectProblem(await http(base, 'GET', `/v1/instances/${id}`, { key: other.key }), 404, 'InvalidInstanceID.NotFound');
    expectProblem(await http(base, 'POST', `/v1/instances/${id}/terminate`, { key: other.key }), 404, 'InvalidInstanceID.NotFound');
    expectProblem(await http(base, 'GET', '/v1/instances/i-00000000000000000', { key: other.key }), 404, 'InvalidInstanceID.NotFound');
    expectProblem(await http(base, 'GET', '/v1/instances/i-123', { key: owner.key }), 400, 'InvalidInstanceID.Malformed');
    expect((await http(base, 'GET', '/v1/instances', { key: other.key })).body.items).toEqual([]);
    const filtered = await http(base, 'GET', `/v1/instances?image-id=${imageId}&state=pending,terminated`, { key: owner.key });
    expect(filtered.status, JSON.stringify(filtered.body)).toBe(200);
    expect(filtered.body.items.map((i: { instanceId: string }) => i.instanceId)).toEqual([id]);
    expectProblem(await http(base, 'GET', '/v1/instances?state=stopped', { key: owner.key }), 400, 'InvalidParameterValue');
  });

  it('terminates an instance the host could not start (no bundle), metering nothing', async () => {
    const buyer = await createAccount(['buyer', 'seller']);
    const imageId = await availableImage(buyer);
    const id = (await launched(buyer, { imageId })).instances[0].instanceId;
    const view = await waitFor(async () => {
      const v = await instance(buyer, id);
      return v.state === 'terminated' ? v : undefined;
    });
    expect(view).toMatchObject({ runningAt: null, stateReason: { code: 'Server.InvalidBundle' } });
    expect((await usageEvents(id)).map((e) => [e.state, e.runningAt, e.stoppedAt, e.revision])).toEqual([
      ['pending', null, null, 1],
      ['terminated', null, view.stoppedAt, 2],
    ]);
  });

  it('runs through the simulated host from a real bundle, terminates, and terminating twice answers the same state', async () => {
    const buyer = await createAccount(['buyer']);
    await share(seller, bundledImageId, [{ userId: buyer.id }]);
    const id = (await launched(buyer, { imageId: bundledImageId })).instances[0].instanceId;
    const running = await waitFor(
      async () => {
        const v = await instance(buyer, id);
        return v.state === 'running' ? v : undefined;
      },
      { timeoutMs: 30_000, what: 'the instance to run' },
    );
    expect(running).toMatchObject({ stateReason: { code: 'Host.Started' }, stoppedAt: null });
    expect(running.runningAt).toEqual(expect.any(String));

    const first = await http(base, 'POST', `/v1/instances/${id}/terminate`, { key: buyer.key });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ state: 'shutting-down', runningAt: running.runningAt, stateReason: { code: 'Client.UserInitiatedShutdown' } });
    const terminated = await waitFor(async () => {
      const v = await instance(buyer, id);
      return v.state === 'terminated' ? v : undefined;
    });
    const twice = await http(base, 'POST', `/v1/instances/${id}/terminate`, { key: buyer.key });
    expect(twice.status).toBe(200);
    expect(twice.body).toEqual(terminated);
    expect(terminated.stoppedAt).toBe(first.body.stoppedAt);

    // The usage events billing meters from: one per change, with the exact times the API shows.
    const events = await usageEvents(id);
    const base_ = { instanceId: id, accountId: buyer.id, imageId: bundledImageId, sellerId: seller.id, productCode: null, instanceType: 't3.micro', queue: 'billing-events' };
    expect(events).toEqual([
      { ...base_, state: 'pending', runningAt: null, stoppedAt: null, revision: 1 },
      { ...base_, state: 'running', runningAt: running.runningAt, stoppedAt: null, revision: 2 },
      { ...base_, state: 'shutting-down', runningAt: running.runningAt, stoppedAt: first.body.stoppedAt, revision: 3 },
      { ...base_, state: 'terminated', runningAt: running.runningAt, stoppedAt: first.body.stoppedAt, revision: 4 },
    ]);
    // Popularity: the launch counted (folded into the image's counter within LAUNCH_COUNT_FOLD_INTERVAL_MS).
    await waitFor(async () => ((await http(base, 'GET', `/v1/images/${bundledImageId}`, { key: seller.key })).body.launchCount as number) >= 1, {
      timeoutMs: 10_000,
      what: 'the launch to count for popularity',
    });
  });
});
