import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@imagemart/config';
import {
  BillingPattern,
  EVENT_ROUTES,
  ErrorCode,
  type Caller,
  type PricingQuoteRequest,
  type PricingQuoteResponse,
  type RegisterImageBody,
} from '@imagemart/contracts';
import { DomainException, RedisStreamsServer } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import {
  createTestDatabase,
  createTestRedisPrefix,
  serviceTestingModule,
  type TestDatabase,
  type TestRedisPrefix,
  TestIdentities,
} from '@imagemart/testing';
import { CatalogModule } from './catalog.module.js';
import { catalogConfigSchema } from './catalog.config.js';
import { ImagesService } from './images/images.service.js';
import { LaunchPermissionProjection } from './launch-permissions/launch-permission.projection.js';
import { ListingsService } from './listings/listings.service.js';
import { SellerProfilesService } from './sellers/seller-profiles.service.js';

let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let images: ImagesService;
let listings: ListingsService;
let projection: LaunchPermissionProjection;

const seller: Caller = { accountId: '100000000001', roles: ['seller'] };
const otherSeller: Caller = { accountId: '100000000002', roles: ['seller'] };
const buyer: Caller = { accountId: '200000000001', roles: ['buyer'] };
const admin: Caller = { accountId: '900000000001', roles: ['admin'] };

let lpRevision = 0;
const makePublic = (imageId: string) => projection.apply({ imageId, public: true, grants: [], revision: ++lpRevision + 1000 });

const body = (name: string, extra: Partial<RegisterImageBody> = {}): RegisterImageBody => ({
  name,
  architecture: 'x86_64',
  virtualizationType: 'hvm',
  rootDeviceType: 'ebs',
  blockDeviceMappings: [],
  platform: 'linux',
  productCodes: [],
  ...extra,
});

async function publicImage(owner: Caller, name: string, extra: Partial<RegisterImageBody> = {}) {
  const image = await images.register(owner, body(name, extra));
  await images.setState({ imageId: image.imageId, state: 'available' });
  await makePublic(image.imageId);
  return image;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    if (err instanceof DomainException) return err.code;
    throw err;
  }
}

beforeAll(async () => {
  db = await createTestDatabase('catalog');
  redis = createTestRedisPrefix('catalog');
  const config = loadConfig(catalogConfigSchema, {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    PRICE_QUOTE_TIMEOUT_MS: '300',
    ...TestIdentities.shared().env('catalog'),
  });
  moduleRef = await serviceTestingModule({ prisma: db.prisma, config, imports: [CatalogModule] }).compile();
  await moduleRef.init();
  images = moduleRef.get(ImagesService);
  listings = moduleRef.get(ListingsService);
  projection = moduleRef.get(LaunchPermissionProjection);
});

afterAll(async () => {
  await moduleRef?.close();
  await db?.drop();
  await redis?.cleanup();
});

describe('full-text search', () => {
  it('ranks a match in the name or listing title above one in a description, and follows listing edits', async () => {
    const listing = await listings.create(seller, {
      title: 'Hardened PostgreSQL appliance',
      summary: 'A database server',
      description: 'Tuned for OLTP workloads.',
      categories: ['databases'],
      pricingType: 'free',
    });
    const inName = await publicImage(seller, 'postgresql-16-server');
    const inDescription = await publicImage(seller, 'generic-linux-1', { description: 'also ships a postgresql client' });
    const inListing = await publicImage(seller, 'appliance-v1', { listingId: listing.listingId });
    await publicImage(seller, 'unrelated-nginx');

    const page = await images.list(null, { filters: {}, q: 'postgresql', limit: 10 });
    const ids = page.items.map((i) => i.imageId);
    expect(ids).toHaveLength(3);
    expect(ids.indexOf(inDescription.imageId)).toBe(2);
    expect(ids.slice(0, 2).sort()).toEqual([inName.imageId, inListing.imageId].sort());

    // websearch syntax: a phrase, and a term excluded.
    const phrase = await images.list(null, { filters: {}, q: '"oltp workloads" -nginx', limit: 10 });
    expect(phrase.items.map((i) => i.imageId)).toEqual([inListing.imageId]);

    // The listing's texts change: its images' search documents follow.
    await listings.update(seller, listing.listingId, { description: 'Now with pgvector for embeddings.' });
    const after = await images.list(null, { filters: {}, q: 'embeddings', limit: 10 });
    expect(after.items.map((i) => i.imageId)).toEqual([inListing.imageId]);
    expect((await images.list(null, { filters: {}, q: 'oltp', limit: 10 })).items).toEqual([]);
  });

  it('pages through relevance order without repeats', async () => {
    for (let n = 0; n < 7; n++) {
      await publicImage(seller, `kafka-broker-${n}`, { description: n % 2 ? 'kafka kafka streaming' : 'streaming' });
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await images.list(null, { filters: {}, q: 'kafka', limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((i) => i.imageId));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toHaveLength(7);
    expect(new Set(seen).size).toBe(7);
  });
});

describe('name filter wildcards', () => {
  it("matches * and ? as wildcards and LIKE's own _ only as itself", async () => {
    const owner: Caller = { accountId: '100000000009', roles: ['seller'] };
    const exact = await images.register(owner, body('web_server-1'));
    const lookalike = await images.register(owner, body('webXserver-1'));
    const other = await images.register(owner, body('web-server-10'));
    const names = async (pattern: string) =>
      (await images.list(owner, { filters: { owner: ['self'], name: [pattern] }, sort: 'name', limit: 50 })).items.map((i) => i.name);

    expect(await names('web_server-1')).toEqual([exact.name]);
    expect(await names('web?server-1')).toEqual([exact.name, lookalike.name].sort());
    expect(await names('web*')).toEqual([other.name, exact.name, lookalike.name].sort());
    expect(await names('web-server-1?')).toEqual([other.name]);
    expect(await names('*server-1')).toEqual([exact.name, lookalike.name].sort());
    expect(await names('%')).toEqual([]);
  });
});

describe('projection of launch permissions', () => {
  it('keeps only newer revisions, whatever order they arrive in', async () => {
    const image = await images.register(seller, body('projected'));
    await images.setState({ imageId: image.imageId, state: 'available' });
    const visibleTo = async (caller: Caller | null) => (await codeOf(images.get(caller, image.imageId))) === 'resolved';

    expect(await projection.apply({ imageId: image.imageId, public: false, grants: [{ accountId: buyer.accountId, shareState: 'accepted' }], revision: 3 })).toBe(
      'applied',
    );
    expect(await visibleTo(buyer)).toBe(true);
    expect(await visibleTo(null)).toBe(false);
    // An older state arriving late changes nothing; the same revision again neither.
    expect(await projection.apply({ imageId: image.imageId, public: true, grants: [], revision: 2 })).toBe('stale');
    expect(await projection.apply({ imageId: image.imageId, public: true, grants: [], revision: 3 })).toBe('stale');
    expect(await visibleTo(null)).toBe(false);
    expect((await images.get(seller, image.imageId)).visibility).toBe('shared');

    expect(await projection.apply({ imageId: image.imageId, public: true, grants: [], revision: 4 })).toBe('applied');
    expect(await visibleTo(null)).toBe(true);
    expect((await images.get(null, image.imageId)).visibility).toBe('public');
    expect(await db.prisma.catalogLaunchGrant.count({ where: { imageId: image.imageId } })).toBe(0);

    expect(await projection.apply({ imageId: 'ami-00000000000000000', public: true, grants: [], revision: 1 })).toBe('unknown-image');
  });

  it('applies concurrent events of one image in revision order', async () => {
    const image = await images.register(seller, body('projected-race'));
    await Promise.all(
      [5, 2, 4, 1, 3].map((revision) =>
        projection.apply({ imageId: image.imageId, public: revision === 5, grants: [{ accountId: buyer.accountId, shareState: 'pending' }], revision }),
      ),
    );
    const row = await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: image.imageId } });
    expect([row.lpRevision, row.isPublic]).toEqual([5, true]);
  });
});

describe('the outbox', () => {
  const eventsOf = (imageId: string) =>
    db.prisma.catalogOutboxEvent
      .findMany({ orderBy: { createdAt: 'asc' } })
      .then((rows) => rows.filter((r) => (r.payload as { imageId?: string }).imageId === imageId));

  it('holds catalog.image.changed for every change, in the transaction of the change, with the revision', async () => {
    const image = await requestContext.run({ requestId: 'req-outbox-1' }, () => images.register(seller, body('outboxed')));
    expect(image.revision).toBe(1);
    await images.setState({ imageId: image.imageId, state: 'available', manifestLocation: 'bundles/x/manifest.xml', imageSize: 1024 });
    // The same state again is no change: no revision, no event.
    await images.setState({ imageId: image.imageId, state: 'available', manifestLocation: 'bundles/x/manifest.xml', imageSize: 1024 });
    await images.updateDescription(seller, image.imageId, 'Described');
    await images.deregister(seller, image.imageId);
    await images.deregister(seller, image.imageId);

    // One row per change for every queue the event goes to.
    const all = await eventsOf(image.imageId);
    const queues = EVENT_ROUTES['catalog.image.changed'];
    expect(all).toHaveLength(4 * queues.length);
    expect(new Set(all.map((e) => e.queue))).toEqual(new Set(queues));
    const events = all.filter((e) => e.queue === 'permission-events');
    expect(events.map((e) => e.type)).toEqual(Array(4).fill('catalog.image.changed'));
    expect(events.map((e) => e.payload)).toEqual([
      { imageId: image.imageId, ownerId: seller.accountId, state: 'pending', productCodes: [], revision: 1 },
      { imageId: image.imageId, ownerId: seller.accountId, state: 'available', productCodes: [], revision: 2 },
      { imageId: image.imageId, ownerId: seller.accountId, state: 'available', productCodes: [], revision: 3 },
      { imageId: image.imageId, ownerId: seller.accountId, state: 'deregistered', productCodes: [], revision: 4 },
    ]);
    expect(events[0]?.requestId).toBe('req-outbox-1');
    expect(await images.internalGet(image.imageId)).toEqual(events[3]?.payload);
  });

  it('writes no event when the change fails', async () => {
    await images.register(seller, body('taken-name'));
    const before = await db.prisma.catalogOutboxEvent.count();
    expect(await codeOf(images.register(seller, body('taken-name')))).toBe(ErrorCode.InvalidAMINameDuplicate);
    expect(await db.prisma.catalogOutboxEvent.count()).toBe(before);
  });
});

describe('image lifecycle', () => {
  it('registers once per request id, even when the request runs twice', async () => {
    const run = () => requestContext.run({ requestId: 'req-twice' }, () => images.register(seller, body('twice')));
    const [a, b] = await Promise.all([run(), run()]);
    expect(a.imageId).toBe(b.imageId);
    expect(await run()).toMatchObject({ imageId: a.imageId });
    expect(await db.prisma.catalogImage.count({ where: { ownerId: seller.accountId, name: 'twice' } })).toBe(1);
  });

  it('lets only sellers register, and frees a name when its image is deregistered', async () => {
    expect(await codeOf(images.register(buyer, body('buyers-image')))).toBe(ErrorCode.UnauthorizedOperation);
    const first = await images.register(seller, body('reusable'));
    // Another owner may use the same name.
    await images.register(otherSeller, body('reusable'));
    await images.deregister(seller, first.imageId);
    const second = await images.register(seller, body('reusable'));
    expect(second.imageId).not.toBe(first.imageId);
  });

  it('moves through states idempotently; a deregistered image never comes back', async () => {
    const image = await images.register(seller, body('stateful'));
    const failed = await images.setState({ imageId: image.imageId, state: 'failed', stateReason: { code: 'Client.InvalidBundle', message: 'bad digest' } });
    expect(failed).toMatchObject({ state: 'failed', stateReason: { code: 'Client.InvalidBundle', message: 'bad digest' }, revision: 2 });
    const available = await images.setState({ imageId: image.imageId, state: 'available', imageSize: 10 });
    expect(available).toMatchObject({ state: 'available', stateReason: null, imageSize: 10, revision: 3 });
    await images.setState({ imageId: image.imageId, state: 'deregistered' });
    expect(await codeOf(images.setState({ imageId: image.imageId, state: 'available' }))).toBe(ErrorCode.IncorrectState);
    expect((await images.setState({ imageId: image.imageId, state: 'deregistered' })).revision).toBe(4);
    expect(await codeOf(images.setState({ imageId: 'ami-0000000000000000f', state: 'available' }))).toBe(ErrorCode.InvalidAMIIDNotFound);
  });

  it("keeps the source's product codes, adds the paid listing's, and refuses another seller's", async () => {
    const paid = await listings.create(seller, {
      title: 'Paid appliance',
      summary: 's',
      description: '',
      categories: ['security'],
      pricingType: 'paid',
    });
    expect(paid.productCode).toMatch(/^prod-[0-9a-z]{20}$/);
    const source = await publicImage(seller, 'paid-source', { listingId: paid.listingId });
    expect(source).toMatchObject({ productCodes: [paid.productCode], pricingType: 'paid' });

    // Another seller copies the public paid image: the code stays on the copy.
    const copy = await images.register(otherSeller, body('copy-of-paid', { sourceImageId: source.imageId }));
    expect(copy.productCodes).toEqual([paid.productCode]);
    // He cannot put a code of someone else's listing on an image of his own.
    expect(await codeOf(images.register(otherSeller, body('stolen-code', { productCodes: [paid.productCode!] })))).toBe(
      ErrorCode.InvalidParameterValue,
    );
    // Nor use a listing or a source he may not see.
    expect(await codeOf(images.register(otherSeller, body('foreign-listing', { listingId: paid.listingId })))).toBe(
      ErrorCode.InvalidListingIDNotFound,
    );
    const privateImage = await images.register(seller, body('private-source'));
    expect(await codeOf(images.register(otherSeller, body('from-private', { sourceImageId: privateImage.imageId })))).toBe(
      ErrorCode.InvalidAMIIDNotFound,
    );

    expect(await listings.product(paid.productCode!)).toEqual({
      productCode: paid.productCode,
      ownerId: seller.accountId,
      listingId: paid.listingId,
      title: 'Paid appliance',
    });
    expect(await codeOf(listings.product('prod-00000000000000000000'))).toBe(ErrorCode.InvalidProductCodeNotFound);
  });

  it('lets only the owner change a description, and the owner or an admin deregister', async () => {
    const image = await publicImage(seller, 'guarded');
    expect(await codeOf(images.updateDescription(otherSeller, image.imageId, 'mine now'))).toBe(ErrorCode.UnauthorizedOperation);
    expect(await codeOf(images.updateDescription(admin, image.imageId, 'admin text'))).toBe(ErrorCode.UnauthorizedOperation);
    expect(await codeOf(images.deregister(otherSeller, image.imageId))).toBe(ErrorCode.UnauthorizedOperation);
    const gone = await images.deregister(admin, image.imageId);
    expect(gone.state).toBe('deregistered');
    // Readable by its owner (and admins), by nobody else.
    expect((await images.get(seller, image.imageId)).state).toBe('deregistered');
    expect(await codeOf(images.get(null, image.imageId))).toBe(ErrorCode.InvalidAMIIDNotFound);
    expect(await codeOf(images.get(buyer, image.imageId))).toBe(ErrorCode.InvalidAMIIDNotFound);
  });

  it('counts launches for the popularity order', async () => {
    const a = await publicImage(seller, 'popular-a');
    const b = await publicImage(seller, 'popular-b');
    await images.recordLaunches(b.imageId, 5);
    await images.recordLaunches(a.imageId, 2);
    await images.recordLaunches(b.imageId, 1);
    const page = await images.list(null, { filters: { name: ['popular-?'] }, sort: 'popularity', limit: 10 });
    expect(page.items.map((i) => [i.name, i.launchCount])).toEqual([
      ['popular-b', 6],
      ['popular-a', 2],
    ]);
    expect(await codeOf(images.recordLaunches('ami-0000000000000000e', 1))).toBe(ErrorCode.InvalidAMIIDNotFound);
  });
});

describe('listing prices from billing', () => {
  const quoteCalls: PricingQuoteRequest[] = [];

  @Controller()
  class FakeBillingHandler {
    @MessagePattern(BillingPattern.pricingQuote)
    quote(@Payload() req: PricingQuoteRequest): PricingQuoteResponse {
      quoteCalls.push(req);
      return {
        currency: 'USD',
        instanceTypes: [{ instanceType: 't3.micro', baseHourly: '0.0104' }],
        products: Object.fromEntries(
          req.productCodes.map((c) => [c, { instanceTypes: [{ instanceType: 't3.micro', hourly: '0.0604' }], monthlyFee: '9.99', signUpFee: '0' }]),
        ),
      };
    }
  }
  @Module({ controllers: [FakeBillingHandler] })
  class FakeBillingModule {}

  it('answers with price null, quickly, while billing does not answer', async () => {
    const started = Date.now();
    const page = await listings.list(null, { limit: 10 });
    expect(page.items.length).toBeGreaterThan(0);
    expect(page.items.every((l) => l.price === null)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('asks billing once per page, for the paid listings on it', async () => {
    let billing: INestMicroservice | undefined;
    try {
      billing = await NestFactory.createMicroservice(FakeBillingModule, {
        strategy: new RedisStreamsServer({
          connection: redis.url,
          prefix: redis.prefix,
          service: 'billing',
          trustedKeys: TestIdentities.shared().trustedKeys('billing'),
        }),
        logger: false,
      });
      await billing.listen();
      const page = await listings.list(null, { limit: 10 });
      expect(quoteCalls).toHaveLength(1);
      const paid = page.items.filter((l) => l.pricingType === 'paid');
      const free = page.items.filter((l) => l.pricingType === 'free');
      expect(paid.length).toBeGreaterThan(0);
      expect(free.length).toBeGreaterThan(0);
      expect(quoteCalls[0]?.productCodes.sort()).toEqual(paid.map((l) => l.productCode).sort());
      expect(paid[0]?.price).toEqual({
        currency: 'USD',
        monthlyFee: '9.99',
        signUpFee: '0',
        instanceTypes: [{ instanceType: 't3.micro', hourly: '0.0604' }],
      });
      expect(free[0]?.price).toEqual({
        currency: 'USD',
        monthlyFee: '0',
        signUpFee: '0',
        instanceTypes: [{ instanceType: 't3.micro', hourly: '0.0104' }],
      });
      expect(page.items[0]?.seller.displayName).toBe(`Seller ${page.items[0]?.sellerId}`);
    } finally {
      await billing?.close();
    }
  });

  it("shows a seller's own profile once he sets it", async () => {
    const profiles = moduleRef.get(SellerProfilesService);
    expect(await codeOf(profiles.put(otherSeller, seller.accountId, { displayName: 'Impostor', about: '', website: null }))).toBe(
      ErrorCode.UnauthorizedOperation,
    );
    await profiles.put(seller, seller.accountId, { displayName: 'Ada Images', about: 'Since 2026', website: 'https://ada.example.com' });
    const page = await listings.list(null, { sellerId: seller.accountId, limit: 1 });
    expect(page.items[0]?.seller).toEqual({
      accountId: seller.accountId,
      displayName: 'Ada Images',
      about: 'Since 2026',
      website: 'https://ada.example.com',
    });
  });
});
