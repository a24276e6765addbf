import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BillingPattern, CatalogPattern, PermissionPattern } from '@imagemart/contracts';
import { waitFor } from '@imagemart/testing';
import { monthLabel, monthStart, PlatformClock } from './support/clock.js';
import { http, Platform, type TestAccount } from './support/platform.js';

/**
 * Who may do what, over HTTP on the five real processes: every route that touches an image, its
 * launch permissions, shares and audit trail, and every route that touches a subscription or a
 * product's prices, for each cell of role × owner or not × visibility × the caller's share state.
 *
 * The expected answer of each cell is written out from the rules (docs/api.md, docs/catalog.md,
 * docs/permissions.md), independently of the code:
 * - an account "sees" an image it does not own when the image is available and public, or shared
 *   with it in a share it has not rejected; an image it may not see answers like a missing one
 *   (404 InvalidAMIID.NotFound) on every route;
 * - reading an image: its owner, admins, and whoever sees it;
 * - default lists show an account its own images, public ones and shares it accepted;
 *   `executable-by=self` its own and those shared with it (pending or accepted);
 * - launch permissions: owner or admin; one who sees the image but does not own it gets
 *   401 AuthFailure (EC2's answer); the audit trail of an image the same, with 403;
 * - changing an image's description: the owner only (403 for an admin or one who sees it);
 *   deregistering: the owner or an admin;
 * - answering a share: the account it names, whatever its current answer (a rejection can be
 *   answered again);
 * - launching (docs/launches.md): the owner, anyone for a public image, the account a launch
 *   permission names whatever the state of its share; to anyone else the image is missing (404
 *   InvalidAMIID.NotFound), admins included; a paid image also needs an active subscription
 *   (403 OptInRequired), except for its owner;
 * - an instance: only the account that launched it reads, lists or terminates it; to anyone else,
 *   admins included, it is missing (404 InvalidInstanceID.NotFound);
 * - usage and invoices: the buyer's own; an admin names any account; anyone else naming another
 *   account is refused (403 UnauthorizedOperation), and another account's invoice is missing (404
 *   InvalidInvoiceID.NotFound); the revenue report: a seller's own, any seller's for an admin.
 *
 * Invoices need a month that has ended: the processes run on a clock of their own
 * (e2e/support/clock.ts), on the last day of the previous month until the invoices are made.
 */
let platform: Platform;
let base: string;
let clock: PlatformClock;
let owner: TestAccount;
const callers: Record<'buyer' | 'seller' | 'admin', TestAccount> = {} as never;

type Role = 'buyer' | 'seller' | 'admin';
type Visibility = 'private' | 'public';
type Share = 'none' | 'pending' | 'accepted' | 'rejected';
interface Cell {
  role: Role;
  owner: boolean;
  visibility: Visibility;
  share: Share;
}

const cells: Cell[] = [];
for (const visibility of ['private', 'public'] as const) {
  cells.push({ role: 'seller', owner: true, visibility, share: 'none' });
  for (const role of ['buyer', 'seller', 'admin'] as const) {
    for (const share of ['none', 'pending', 'accepted', 'rejected'] as const) cells.push({ role, owner: false, visibility, share });
  }
}

const name = (c: Cell) => `${c.role}, ${c.owner ? 'owner' : 'not owner'}, ${c.visibility}, share ${c.share}`;

/** `status` or `status code`, the way a cell's answer is compared. */
const answer = (res: { status: number; body: unknown }) => {
  const code = (res.body as { code?: string } | undefined)?.code;
  return res.status < 300 ? String(res.status) : `${res.status} ${code}`;
};

const NOT_FOUND = '404 InvalidAMIID.NotFound';

function expected(c: Cell) {
  const sees = c.visibility === 'public' || c.share === 'pending' || c.share === 'accepted';
  const manager = c.owner || c.role === 'admin';
  return {
    getImage: c.owner || c.role === 'admin' || sees ? '200' : NOT_FOUND,
    listed: c.owner || c.visibility === 'public' || c.share === 'accepted',
    executableBySelf: c.owner || c.share === 'pending' || c.share === 'accepted',
    getLaunchPermission: manager ? '200' : sees ? '401 AuthFailure' : NOT_FOUND,
    modifyLaunchPermission: manager ? '200' : sees ? '401 AuthFailure' : NOT_FOUND,
    auditTrail: manager ? '200' : sees ? '403 UnauthorizedOperation' : NOT_FOUND,
    describe: c.owner ? '200' : c.role === 'admin' || sees ? '403 UnauthorizedOperation' : NOT_FOUND,
    answerShare: c.share !== 'none' ? '200' : NOT_FOUND,
    deregister: manager ? '200' : sees ? '403 UnauthorizedOperation' : NOT_FOUND,
  };
}

async function imageFor(c: Cell, caller: TestAccount): Promise<{ imageId: string; imageName: string }> {
  const imageName = `matrix-${randomUUID().slice(0, 12)}`;
  const registered = await http(base, 'POST', '/v1/images', { key: owner.key, body: { name: imageName, architecture: 'x86_64' } });
  expect(registered.status, JSON.stringify(registered.body)).toBe(201);
  const imageId = registered.body.imageId as string;
  await platform.rpc('catalog', CatalogPattern.imageSetState, { imageId, state: 'available', imageSize: 1 << 20 });
  const add = [...(c.visibility === 'public' ? [{ group: 'all' }] : []), ...(c.share !== 'none' ? [{ userId: caller.id }] : [])];
  if (add.length) {
    const res = await http(base, 'PATCH', `/v1/images/${imageId}/launch-permission`, { key: owner.key, body: { add } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }
  // The catalog learns launch permissions from the permission service's events: wait until its
  // view has each change, seen from the side that changes (a share, while pending, is listed by
  // executable-by=self; a rejection then takes it out).
  const listedForCaller = async (query: string) =>
    (await http(base, 'GET', `/v1/images?name=${imageName}${query}`, { key: caller.key })).body.items.length === 1;
  if (add.length) {
    await waitFor(
      async () => (await http(base, 'GET', `/v1/images/${imageId}`, { key: owner.key })).body?.visibility === (c.visibility === 'public' ? 'public' : 'shared'),
      { what: `the catalog to learn the launch permissions of ${imageId}` },
    );
  }
  if (c.share !== 'none') await waitFor(() => listedForCaller('&executable-by=self'), { what: `the share of ${imageId}` });
  if (c.share === 'accepted' || c.share === 'rejected') {
    const res = await http(base, 'PUT', `/v1/shared-images/${imageId}`, { key: caller.key, body: { state: c.share } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    if (c.share === 'accepted' && c.visibility === 'private') {
      await waitFor(() => listedForCaller(''), { what: `the acceptance of ${imageId}` });
    }
    if (c.share === 'rejected') {
      await waitFor(async () => !(await listedForCaller('&executable-by=self')), { what: `the rejection of ${imageId}` });
    }
  }
  return { imageId, imageName };
}

/** The end of the month the processes' clock starts in. */
const boundary = monthStart(new Date());

beforeAll(async () => {
  clock = new PlatformClock(new Date(boundary.getTime() - 24 * 3600_000));
  platform = await Platform.start('matrix', clock.env());
  base = platform.baseUrl;
  [owner, callers.buyer, callers.seller, callers.admin] = await Promise.all([
    platform.createAccount(['seller'], 'Matrix owner'),
    platform.createAccount(['buyer']),
    platform.createAccount(['seller']),
    platform.createAccount(['admin']),
  ]);
}, 90_000);

afterAll(async () => {
  await platform?.stop();
  clock?.remove();
});

describe('authorization matrix: images, launch permissions, shares, audit trail', () => {
  it.each(cells.map((c) => [name(c), c] as const))('%s', async (_, c) => {
    const caller = c.owner ? owner : callers[c.role];
    const { imageId, imageName } = await imageFor(c, caller);
    const as = (method: string, path: string, body?: unknown) => http(base, method, path, { key: caller.key, body });

    const actual = {
      getImage: answer(await as('GET', `/v1/images/${imageId}`)),
      listed: (await as('GET', `/v1/images?name=${imageName}`)).body.items.length === 1,
      executableBySelf: (await as('GET', `/v1/images?name=${imageName}&executable-by=self`)).body.items.length === 1,
      getLaunchPermission: answer(await as('GET', `/v1/images/${imageId}/launch-permission`)),
      modifyLaunchPermission: answer(await as('PATCH', `/v1/images/${imageId}/launch-permission`, { add: [{ userId: '000000000042' }] })),
      auditTrail: answer(await as('GET', `/v1/audit-events?imageId=${imageId}`)),
      describe: answer(await as('PATCH', `/v1/images/${imageId}`, { description: 'changed by the matrix' })),
      // The same answer again for a rejected share, so what the caller sees stays as it was.
      answerShare: answer(await as('PUT', `/v1/shared-images/${imageId}`, { state: c.share === 'rejected' ? 'rejected' : 'accepted' })),
      deregister: answer(await as('DELETE', `/v1/images/${imageId}`)),
    };
    expect(actual).toEqual(expected(c));

    // What was refused changed nothing: read back as the owner.
    const after = await http(base, 'GET', `/v1/images/${imageId}`, { key: owner.key });
    const permissions = await http(base, 'GET', `/v1/images/${imageId}/launch-permission`, { key: owner.key });
    const manager = c.owner || c.role === 'admin';
    expect(after.body.description ?? null).toBe(c.owner ? 'changed by the matrix' : null);
    expect(after.body.state).toBe(manager ? 'deregistered' : 'available');
    if (!manager) {
      expect(permissions.body.launchPermissions).not.toContainEqual({ userId: '000000000042' });
    } else {
      // Deregistered images answer as missing on the permission routes, for everyone, once the
      // permission service has the catalog's event.
      await waitFor(
        async () => answer(await http(base, 'GET', `/v1/images/${imageId}/launch-permission`, { key: owner.key })) === NOT_FOUND,
        { what: `the permission service to learn that ${imageId} is deregistered` },
      );
    }
  });
});

describe('authorization matrix: subscriptions and product prices', () => {
  let productCode: string;
  let subscriber: TestAccount;
  let subscriptionId: string;

  beforeAll(async () => {
    const listing = await http(base, 'POST', '/v1/listings', {
      key: owner.key,
      body: { title: 'Matrix appliance', summary: 'A paid product', categories: ['security'], pricingType: 'paid' },
    });
    expect(listing.status, JSON.stringify(listing.body)).toBe(201);
    productCode = listing.body.productCode as string;
    const priced = await http(base, 'PUT', `/v1/products/${productCode}/pricing`, {
      key: owner.key,
      body: { currency: 'USD', instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.01' } }], monthlyFee: '5', signUpFee: '0' },
    });
    expect(priced.status, JSON.stringify(priced.body)).toBe(200);
    subscriber = await platform.createAccount(['buyer']);
    const sub = await http(base, 'POST', '/v1/subscriptions', { key: subscriber.key, body: { productCode } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    subscriptionId = sub.body.id as string;
  });

  const roles = [
    ['the subscriber', () => subscriber, 'own'],
    ['another buyer', () => callers.buyer, 'other'],
    ['a seller', () => callers.seller, 'other'],
    ['an admin', () => callers.admin, 'other'],
  ] as const;

  it.each(roles)("%s and the subscriber's subscription", async (_, who, relation) => {
    const key = who().key;
    const get = await http(base, 'GET', `/v1/subscriptions/${subscriptionId}`, { key });
    const listed = await http(base, 'GET', '/v1/subscriptions', { key });
    expect(answer(get)).toBe(relation === 'own' ? '200' : '404 InvalidSubscriptionID.NotFound');
    expect((listed.body.items as { id: string }[]).some((s) => s.id === subscriptionId)).toBe(relation === 'own');
    if (relation === 'other') {
      const cancel = await http(base, 'POST', `/v1/subscriptions/${subscriptionId}/cancel`, { key });
      expect(answer(cancel)).toBe('404 InvalidSubscriptionID.NotFound');
      const mine = await http(base, 'GET', `/v1/subscriptions/${subscriptionId}`, { key: subscriber.key });
      expect(mine.body).toMatchObject({ status: 'active', cancelAtPeriodEnd: false });
    }
  });

  it.each([
    ['the product owner', () => owner, '200'],
    ['another seller', () => callers.seller, '403 UnauthorizedOperation'],
    ['a buyer', () => callers.buyer, '403 UnauthorizedOperation'],
    ['an admin', () => callers.admin, '403 UnauthorizedOperation'],
  ] as const)("%s setting the product's prices", async (_, who, want) => {
    const body = { currency: 'USD', instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.02' } }], monthlyFee: '5', signUpFee: '0' };
    const before = await http(base, 'GET', `/v1/products/${productCode}/pricing`);
    const res = await http(base, 'PUT', `/v1/products/${productCode}/pricing`, { key: who().key, body });
    expect(answer(res)).toBe(want);
    const after = await http(base, 'GET', `/v1/products/${productCode}/pricing`);
    if (want !== '200') expect(after.body).toEqual(before.body);
    else expect(after.body.instanceTypes[0].markup).toEqual({ amount: '0.02' });
  });
});

const INSTANCE_NOT_FOUND = '404 InvalidInstanceID.NotFound';
const launchBody = (imageId: string) => ({ imageId, instanceType: 't3.micro' });

/**
 * What others may do with an instance `caller` launched: nothing, each answered as for a missing
 * instance (admins included); then its owner reads and terminates it.
 */
async function onlyItsOwnerReaches(caller: TestAccount, instanceId: string, others: TestAccount[]): Promise<void> {
  for (const other of others) {
    const as = (method: string, path: string) => http(base, method, path, { key: other.key });
    expect({
      get: answer(await as('GET', `/v1/instances/${instanceId}`)),
      terminate: answer(await as('POST', `/v1/instances/${instanceId}/terminate`)),
      listed: ((await as('GET', '/v1/instances?limit=100')).body.items as { instanceId: string }[]).some((i) => i.instanceId === instanceId),
    }).toEqual({ get: INSTANCE_NOT_FOUND, terminate: INSTANCE_NOT_FOUND, listed: false });
  }
  const mine = await http(base, 'GET', `/v1/instances/${instanceId}`, { key: caller.key });
  expect(answer(mine)).toBe('200');
  expect(mine.body).toMatchObject({ instanceId, ownerId: caller.id });
  // Nobody else's terminate reached it.
  expect(mine.body.stateReason.code).not.toBe('Client.UserInitiatedShutdown');
  expect(((await http(base, 'GET', '/v1/instances?limit=100', { key: caller.key })).body.items as { instanceId: string }[]).map((i) => i.instanceId)).toContain(instanceId);
  const terminated = await http(base, 'POST', `/v1/instances/${instanceId}/terminate`, { key: caller.key });
  expect(answer(terminated)).toBe('200');
  expect(['shutting-down', 'terminated']).toContain(terminated.body.state);
}

describe('authorization matrix: launching instances and reaching them', () => {
  it.each(cells.map((c) => [name(c), c] as const))('%s', async (_, c) => {
    const caller = c.owner ? owner : callers[c.role];
    const { imageId } = await imageFor(c, caller);
    // The launch permission holds whatever the state of the share: pending, accepted or rejected.
    const launches = c.owner || c.visibility === 'public' || c.share !== 'none';
    const launch = await http(base, 'POST', '/v1/instances', { key: caller.key, body: launchBody(imageId) });
    expect(answer(launch), JSON.stringify(launch.body)).toBe(launches ? '201' : NOT_FOUND);
    const launched = (await http(base, 'GET', `/v1/instances?image-id=${imageId}`, { key: caller.key })).body.items as { instanceId: string }[];
    if (!launches) {
      expect(launched).toEqual([]);
      return;
    }
    const instanceId = launch.body.instances[0].instanceId as string;
    expect(launch.body.ownerId).toBe(caller.id);
    expect(launched.map((i) => i.instanceId)).toEqual([instanceId]);
    const others = [c.owner ? callers.buyer : owner, caller === callers.admin ? callers.seller : callers.admin];
    await onlyItsOwnerReaches(caller, instanceId, others);
  });
});

describe('authorization matrix: launching a paid image', () => {
  let publicImage: string;
  let sharedImage: string;
  let privateImage: string;
  let subscribed: TestAccount;

  /** An available image of the paid listing, with these launch permissions. */
  async function paidImage(listingId: string, add: unknown[]): Promise<string> {
    const registered = await http(base, 'POST', '/v1/images', {
      key: owner.key,
      body: { name: `matrix-paid-${randomUUID().slice(0, 12)}`, architecture: 'x86_64', listingId },
    });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    const imageId = registered.body.imageId as string;
    await platform.rpc('catalog', CatalogPattern.imageSetState, { imageId, state: 'available', imageSize: 1 << 20 });
    if (add.length) {
      const res = await http(base, 'PATCH', `/v1/images/${imageId}/launch-permission`, { key: owner.key, body: { add } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
    return imageId;
  }

  beforeAll(async () => {
    const listing = await http(base, 'POST', '/v1/listings', {
      key: owner.key,
      body: { title: 'Matrix paid appliance', summary: 'A paid product to launch', categories: ['security'], pricingType: 'paid' },
    });
    expect(listing.status, JSON.stringify(listing.body)).toBe(201);
    const code = listing.body.productCode as string;
    const priced = await http(base, 'PUT', `/v1/products/${code}/pricing`, {
      key: owner.key,
      body: { currency: 'USD', instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.01' } }], monthlyFee: '5', signUpFee: '0' },
    });
    expect(priced.status, JSON.stringify(priced.body)).toBe(200);
    subscribed = await platform.createAccount(['buyer']);
    [publicImage, sharedImage, privateImage] = await Promise.all([
      paidImage(listing.body.listingId as string, [{ group: 'all' }]),
      paidImage(listing.body.listingId as string, [{ userId: callers.buyer.id }, { userId: subscribed.id }]),
      paidImage(listing.body.listingId as string, []),
    ]);
    const sub = await http(base, 'POST', '/v1/subscriptions', { key: subscribed.key, body: { productCode: code } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    // The decision learns of the subscription from billing's event.
    await waitFor(
      async () => (await platform.rpc<{ allowed: boolean }>('permission', PermissionPattern.launchDecide, { accountId: subscribed.id, imageId: publicImage })).allowed,
      { what: 'the launch decision to see the subscription' },
    );
  });

  const launchers = [
    ['its owner, not subscribed', () => owner, { public: '201', shared: '201', private: '201' }],
    ['a buyer not subscribed, named by the share', () => callers.buyer, { public: '403 OptInRequired', shared: '403 OptInRequired', private: NOT_FOUND }],
    ['another seller, not subscribed', () => callers.seller, { public: '403 OptInRequired', shared: NOT_FOUND, private: NOT_FOUND }],
    ['an admin, not subscribed', () => callers.admin, { public: '403 OptInRequired', shared: NOT_FOUND, private: NOT_FOUND }],
    ['a subscribed buyer, named by the share', () => subscribed, { public: '201', shared: '201', private: NOT_FOUND }],
  ] as const;

  it.each(launchers)('%s', async (_, who, want) => {
    const caller = who();
    const images = { public: publicImage, shared: sharedImage, private: privateImage };
    const actual: Record<string, string> = {};
    const instances: string[] = [];
    for (const [kind, imageId] of Object.entries(images)) {
      const res = await http(base, 'POST', '/v1/instances', { key: caller.key, body: launchBody(imageId) });
      actual[kind] = answer(res);
      if (res.status === 201) instances.push(res.body.instances[0].instanceId as string);
    }
    expect(actual).toEqual(want);
    // Refused launches left nothing behind.
    const listed = (await http(base, 'GET', '/v1/instances?limit=100', { key: caller.key })).body.items as { instanceId: string; imageId: string }[];
    expect(listed.filter((i) => Object.values(images).includes(i.imageId)).map((i) => i.instanceId).sort()).toEqual([...instances].sort());
    for (const instanceId of instances) {
      await onlyItsOwnerReaches(caller, instanceId, [caller === owner ? subscribed : owner, callers.admin]);
    }
  });
});

describe('authorization matrix: usage, invoices and the revenue report', () => {
  let billed: TestAccount;
  let invoiceId: string;
  const month = monthLabel(new Date(boundary.getTime() - 1));

  beforeAll(async () => {
    const listing = await http(base, 'POST', '/v1/listings', {
      key: owner.key,
      body: { title: 'Matrix billed appliance', summary: 'A paid product to bill', categories: ['security'], pricingType: 'paid' },
    });
    expect(listing.status, JSON.stringify(listing.body)).toBe(201);
    const code = listing.body.productCode as string;
    const priced = await http(base, 'PUT', `/v1/products/${code}/pricing`, {
      key: owner.key,
      body: { currency: 'USD', instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.01' } }], monthlyFee: '7', signUpFee: '2' },
    });
    expect(priced.status, JSON.stringify(priced.body)).toBe(200);
    billed = await platform.createAccount(['buyer']);
    const sub = await http(base, 'POST', '/v1/subscriptions', { key: billed.key, body: { productCode: code } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    // The month ends; closing it makes the invoices (this buyer's among them).
    await clock.jumpTo(new Date(boundary.getTime() + 1000));
    await platform.rpc('billing', BillingPattern.invoicesCloseMonth, { month }, 30);
    const invoices = await http(base, 'GET', '/v1/invoices', { key: billed.key });
    expect(invoices.status, JSON.stringify(invoices.body)).toBe(200);
    expect(invoices.body.items).toHaveLength(1);
    invoiceId = invoices.body.items[0].invoiceId as string;
  }, 60_000);

  const readers = [
    ['the billed buyer', () => billed, 'self'],
    ['another buyer', () => callers.buyer, 'other'],
    ["the seller of the buyer's product", () => owner, 'other'],
    ['another seller', () => callers.seller, 'other'],
    ['an admin', () => callers.admin, 'admin'],
  ] as const;

  it.each(readers)("%s and the buyer's usage and invoices", async (_, who, relation) => {
    const caller = who();
    const as = (path: string) => http(base, 'GET', path, { key: caller.key });
    const may = relation !== 'other';
    const has = (res: { body: { items?: { invoiceId: string }[] } }) => (res.body.items ?? []).some((i) => i.invoiceId === invoiceId);

    const usage = await as(`/v1/usage?accountId=${billed.id}`);
    const ownUsage = await as('/v1/usage');
    const listNamed = await as(`/v1/invoices?accountId=${billed.id}`);
    const listOwn = await as('/v1/invoices');
    const get = await as(`/v1/invoices/${invoiceId}`);
    expect({
      usage: answer(usage),
      ownUsage: answer(ownUsage),
      listNamed: answer(listNamed),
      namedHasIt: has(listNamed),
      ownHasIt: has(listOwn),
      get: answer(get),
    }).toEqual({
      usage: may ? '200' : '403 UnauthorizedOperation',
      ownUsage: '200',
      listNamed: may ? '200' : '403 UnauthorizedOperation',
      namedHasIt: may,
      ownHasIt: relation === 'self',
      get: may ? '200' : '404 InvalidInvoiceID.NotFound',
    });
    if (may) {
      expect(usage.body.accountId).toBe(billed.id);
      expect(get.body).toMatchObject({ invoiceId, accountId: billed.id, period: month });
    }
    expect(ownUsage.body.accountId).toBe(caller.id);
  });

  it.each([
    ['the seller', () => owner, '200', '200'],
    ['another seller', () => callers.seller, '200', '403 UnauthorizedOperation'],
    ['a buyer of the product', () => billed, '403 UnauthorizedOperation', '403 UnauthorizedOperation'],
    ['an admin', () => callers.admin, '200', '200'],
  ] as const)('%s and the revenue report', async (_, who, ownWant, sellerWant) => {
    const caller = who();
    const own = await http(base, 'GET', `/v1/revenue?month=${month}`, { key: caller.key });
    const named = await http(base, 'GET', `/v1/revenue?month=${month}&sellerId=${owner.id}`, { key: caller.key });
    expect({ own: answer(own), named: answer(named) }).toEqual({ own: ownWant, named: sellerWant });
    if (ownWant === '200') expect(own.body.sellerId).toBe(caller.id);
    if (caller !== owner && ownWant === '200') expect(own.body).toMatchObject({ gross: '0.00', products: [] });
    if (sellerWant === '200') {
      const report = await http(base, 'GET', `/v1/revenue?month=${month}`, { key: owner.key });
      expect(named.body).toEqual(report.body);
      expect(report.body.sellerId).toBe(owner.id);
      expect(report.body.buyers).toBeGreaterThanOrEqual(1);
      expect(report.body.gross).not.toBe('0.00');
    }
  });
});
