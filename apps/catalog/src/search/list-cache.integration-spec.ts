import type { TestingModule } from '@nestjs/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '@imagemart/config';
import type { Caller, RegisterImageBody } from '@imagemart/contracts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  serviceTestingModule,
  waitFor,
  type TestDatabase,
  type TestRedisPrefix,
  TestIdentities,
} from '@imagemart/testing';
import { CatalogModule } from '../catalog.module.js';
import { catalogConfigSchema, type CatalogConfig } from '../catalog.config.js';
import { ImagesService } from '../images/images.service.js';
import { LaunchPermissionProjection } from '../launch-permissions/launch-permission.projection.js';
import { ListingsService } from '../listings/listings.service.js';
import { ImageSearchRepository } from './image-search.repository.js';
import { ListCache, accountGenerationKey, listGenerationKey } from './list-cache.js';

/**
 * The list cache against the real PostgreSQL and Redis, with two replicas of the catalog on one
 * database and one Redis prefix. Rows changed behind the service's back (plain SQL) show whether
 * a page came from the cache; changes through the service show that it never serves a page from
 * before them.
 */

let db: TestDatabase;
let redis: TestRedisPrefix;
let config: CatalogConfig;

interface Replica {
  moduleRef: TestingModule;
  images: ImagesService;
  listings: ListingsService;
  projection: LaunchPermissionProjection;
  cache: ListCache;
}
let a: Replica;
let b: Replica;

const seller: Caller = { accountId: '100000000001', roles: ['seller'] };
const buyer: Caller = { accountId: '200000000001', roles: ['buyer'] };
const otherBuyer: Caller = { accountId: '200000000002', roles: ['buyer'] };
const admin: Caller = { accountId: '900000000001', roles: ['admin'] };

let lpRevision = 0;
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

async function startReplica(): Promise<Replica> {
  const moduleRef = await serviceTestingModule({ prisma: db.prisma, config, imports: [CatalogModule] }).compile();
  await moduleRef.init();
  return {
    moduleRef,
    images: moduleRef.get(ImagesService),
    listings: moduleRef.get(ListingsService),
    projection: moduleRef.get(LaunchPermissionProjection),
    cache: moduleRef.get(ListCache),
  };
}

/** An available image with the given launch permissions. */
async function availableImage(name: string, grants: { accountId: string; shareState: 'pending' | 'accepted' | 'rejected' }[], isPublic = false) {
  const image = await a.images.register(seller, body(name, { description: 'cachetest' }));
  await a.images.setState({ imageId: image.imageId, state: 'available', manifestLocation: `bundles/${name}/manifest.xml` });
  await a.projection.apply({ imageId: image.imageId, public: isPublic, grants, revision: ++lpRevision });
  return image;
}

const renameBehindTheCache = (imageId: string, description: string) =>
  db.prisma.$executeRaw`UPDATE "catalog"."image" SET description = ${description} WHERE id = ${imageId}`;

const query = { filters: {}, q: 'cachetest', sort: 'newest' as const, limit: 10 };
const ids = (page: { items: { imageId: string }[] }) => page.items.map((i) => i.imageId);

beforeAll(async () => {
  db = await createTestDatabase('catalog_list_cache');
  redis = createTestRedisPrefix('catalog-list-cache');
  config = loadConfig(catalogConfigSchema, {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    ...TestIdentities.shared().env('catalog'),
    PRICE_QUOTE_TIMEOUT_MS: '300',
    CATALOG_LIST_CACHE_TTL_MS: '60000',
  });
  a = await startReplica();
  b = await startReplica();
});

afterAll(async () => {
  await a?.moduleRef.close();
  await b?.moduleRef.close();
  await db?.drop();
  await redis?.cleanup();
});

describe('image list cache', () => {
  it('serves a page it has computed until a change, and a change through either replica invalidates it at once on both', async () => {
    const image = await availableImage('cached-page', [], true);
    const first = await a.images.list(null, query);
    expect(ids(first)).toEqual([image.imageId]);
    await b.images.list(null, query);

    // Changed behind the service: both replicas still answer the page they keep.
    await renameBehindTheCache(image.imageId, 'cachetest changed behind the cache');
    const hitsBefore = a.cache.stats().hits;
    expect((await a.images.list(null, query)).items[0]?.description).toBe('cachetest');
    expect((await b.images.list(null, query)).items[0]?.description).toBe('cachetest');
    expect(a.cache.stats().hits).toBe(hitsBefore + 1);

    // A change through replica a: neither replica serves the old page any more.
    await a.images.updateDescription(seller, image.imageId, 'cachetest new words');
    expect((await a.images.list(null, query)).items[0]?.description).toBe('cachetest new words');
    expect((await b.images.list(null, query)).items[0]?.description).toBe('cachetest new words');

    // A new image registered through b appears in a's list of the owner at once.
    await a.images.list(seller, { ...query, filters: { owner: ['self'] } });
    const added = await b.images.register(seller, body('cached-page-2', { description: 'cachetest' }));
    expect(ids(await a.images.list(seller, { ...query, filters: { owner: ['self'] } }))).toContain(added.imageId);

    // Deregistered: gone from every list at once.
    await a.images.list(null, query);
    await b.images.deregister(seller, image.imageId);
    expect(ids(await a.images.list(null, query))).not.toContain(image.imageId);
  });

  it('never gives one account a page computed for another, nor for an anonymous caller', async () => {
    const q = { ...query, q: 'cachetest', filters: { architecture: ['x86_64' as const] } };
    const shared = await availableImage('shared-with-buyer', [{ accountId: buyer.accountId, shareState: 'accepted' }]);
    const buyerPage = await a.images.list(buyer, q);
    expect(ids(buyerPage)).toContain(shared.imageId);
    // The same query, right after, by someone else: computed for him, without the share.
    expect(ids(await a.images.list(otherBuyer, q))).not.toContain(shared.imageId);
    expect(ids(await a.images.list(null, q))).not.toContain(shared.imageId);
    expect(ids(await b.images.list(otherBuyer, q))).not.toContain(shared.imageId);

    // The owner's page shows the manifest location; a buyer's page of the same query never does.
    const ownerPage = await a.images.list(seller, q);
    expect(ownerPage.items.find((i) => i.imageId === shared.imageId)?.manifestLocation).toBe('bundles/shared-with-buyer/manifest.xml');
    expect((await a.images.list(buyer, q)).items.find((i) => i.imageId === shared.imageId)?.manifestLocation).toBeNull();
    // An admin's lists follow the same visibility: not shared with him, not in his page.
    expect(ids(await a.images.list(admin, q))).not.toContain(shared.imageId);
  });

  it('drops a revoked share from the lists at once, on every replica', async () => {
    const shared = await availableImage('revoked-share', [{ accountId: buyer.accountId, shareState: 'accepted' }]);
    const q = { ...query, filters: {} };
    expect(ids(await a.images.list(buyer, q))).toContain(shared.imageId);
    expect(ids(await b.images.list(buyer, q))).toContain(shared.imageId);

    // The permission service's next state of the image: no grants (the event reaches one replica).
    expect(await b.projection.apply({ imageId: shared.imageId, public: false, grants: [], revision: ++lpRevision })).toBe('applied');
    expect(ids(await a.images.list(buyer, q))).not.toContain(shared.imageId);
    expect(ids(await b.images.list(buyer, q))).not.toContain(shared.imageId);
  });

  it('follows a listing edit in the search documents at once', async () => {
    const listing = await a.listings.create(seller, {
      title: 'Cached appliance',
      summary: 'for the cache test',
      description: 'plain words',
      categories: ['databases'],
      pricingType: 'free',
    });
    const image = await a.images.register(seller, body('listing-cache', { listingId: listing.listingId }));
    await a.images.setState({ imageId: image.imageId, state: 'available' });
    await a.projection.apply({ imageId: image.imageId, public: true, grants: [], revision: ++lpRevision });
    const search = { filters: {}, q: 'zeppelin', limit: 10 };
    expect(ids(await b.images.list(null, search))).toEqual([]);
    await a.listings.update(seller, listing.listingId, { description: 'now with zeppelin' });
    expect(ids(await b.images.list(null, search))).toEqual([image.imageId]);
  });

  it('keeps at most its number of entries, least recently used out first', async () => {
    const small = new ListCache({ ...config, CATALOG_LIST_CACHE_MAX_ENTRIES: 3 }, a.moduleRef.get(ImageSearchRepository));
    await small.onModuleInit();
    try {
      let loads = 0;
      const load = (n: number) => () => {
        loads++;
        return Promise.resolve({ items: [], nextCursor: `page-${n}` });
      };
      const ask = (n: number) => small.page(null, { filters: {}, limit: n }, load(n));
      for (const n of [1, 2, 3]) await ask(n);
      await ask(1); // 1 is now the most recently used
      await ask(4); // 2 goes
      expect(small.stats().entries).toBe(3);
      loads = 0;
      await ask(1);
      await ask(3);
      await ask(4);
      expect(loads).toBe(0);
      await ask(2);
      expect(loads).toBe(1);
    } finally {
      await small.onApplicationShutdown();
    }
  });
  describe('invalidation scoped to what a change can alter', () => {
    /** A public, available image with a description of its own words. */
    const publicImage = async (name: string, description: string) => {
      const image = await a.images.register(seller, body(name, { description }));
      await a.images.setState({ imageId: image.imageId, state: 'available' });
      await a.projection.apply({ imageId: image.imageId, public: true, grants: [], revision: ++lpRevision });
      return image;
    };
    const search = (q: string) => ({ filters: {}, q, sort: 'newest' as const, limit: 10 });
    const descriptionIn = (page: { items: { imageId: string; description: string | null }[] }, imageId: string) =>
      page.items.find((i) => i.imageId === imageId)?.description;

    it("a public image's new description moves the searches for its words and the browse pages, and keeps other searches", async () => {
      const changed = await publicImage('scoped-walrus', 'walrus tusk');
      const other = await publicImage('scoped-narwhal', 'narwhal horn');
      const browse = { filters: { owner: [seller.accountId] }, sort: 'name' as const, limit: 100 };
      // Pages on both replicas, for a buyer and anonymous: the changed image's words, another word, a new word, browsing.
      for (const r of [a, b]) {
        for (const who of [null, buyer]) {
          expect(ids(await r.images.list(who, search('walrus')))).toEqual([changed.imageId]);
          expect(ids(await r.images.list(who, search('narwhal')))).toEqual([other.imageId]);
          expect(ids(await r.images.list(who, search('platypus')))).toEqual([]);
          expect(ids(await r.images.list(who, browse))).toContain(changed.imageId);
        }
      }
      await renameBehindTheCache(other.imageId, 'narwhal horn, changed behind the cache');

      await a.images.updateDescription(seller, changed.imageId, 'walrus tusk and platypus bill');
      for (const r of [a, b]) {
        for (const who of [null, buyer]) {
          // The searches its words were or are in, and browsing, show it at once.
          expect(descriptionIn(await r.images.list(who, search('walrus')), changed.imageId)).toBe('walrus tusk and platypus bill');
          expect(ids(await r.images.list(who, search('platypus')))).toEqual([changed.imageId]);
          expect(descriptionIn(await r.images.list(who, browse), changed.imageId)).toBe('walrus tusk and platypus bill');
          // A search none of whose words the image held or holds keeps its page.
          expect(descriptionIn(await r.images.list(who, search('narwhal')), other.imageId)).toBe('narwhal horn');
        }
      }

      // A word it no longer holds: the search for it loses the image at once.
      expect(ids(await a.images.list(null, search('tusk')))).toEqual([changed.imageId]);
      await b.images.updateDescription(seller, changed.imageId, 'platypus only');
      expect(ids(await a.images.list(null, search('tusk')))).toEqual([]);
      // A search with an excluded word can match without its words: any text change moves it.
      await a.images.list(null, search('scoped -narwhal'));
      await b.images.updateDescription(seller, changed.imageId, 'platypus and narwhal');
      expect(ids(await a.images.list(null, search('scoped -narwhal')))).not.toContain(changed.imageId);
    });

    it("a pending image's changes move only its owner's lists", async () => {
      const visible = await publicImage('scoped-pending-neighbour', 'okapi stripes');
      const pending = await a.images.register(seller, body('scoped-pending', { description: 'okapi pending build' }));
      expect(ids(await a.images.list(seller, search('okapi')))).toEqual([pending.imageId, visible.imageId]);
      expect(ids(await a.images.list(buyer, search('okapi')))).toEqual([visible.imageId]);
      expect(ids(await a.images.list(null, search('okapi')))).toEqual([visible.imageId]);
      await renameBehindTheCache(visible.imageId, 'okapi stripes, changed behind the cache');

      await b.images.updateDescription(seller, pending.imageId, 'okapi pending build 2');
      // The owner's page is computed again; the buyer's and the anonymous one are kept.
      const ownerPage = await a.images.list(seller, search('okapi'));
      expect(descriptionIn(ownerPage, pending.imageId)).toBe('okapi pending build 2');
      expect(descriptionIn(ownerPage, visible.imageId)).toBe('okapi stripes, changed behind the cache');
      expect(descriptionIn(await a.images.list(buyer, search('okapi')), visible.imageId)).toBe('okapi stripes');
      expect(descriptionIn(await a.images.list(null, search('okapi')), visible.imageId)).toBe('okapi stripes');

      // Available and public: everyone's lists move, on every replica.
      await b.images.setState({ imageId: pending.imageId, state: 'available' });
      await b.projection.apply({ imageId: pending.imageId, public: true, grants: [], revision: ++lpRevision });
      expect(ids(await a.images.list(null, search('okapi')))).toEqual([pending.imageId, visible.imageId]);
      expect(ids(await a.images.list(buyer, search('okapi')))).toEqual([pending.imageId, visible.imageId]);
    });

    it('a shared image becoming available, changing and being deregistered shows at once to the account it is shared with, and to nobody else', async () => {
      const image = await a.images.register(seller, body('scoped-shared', { description: 'quokka smile' }));
      await a.projection.apply({ imageId: image.imageId, public: false, grants: [{ accountId: buyer.accountId, shareState: 'accepted' }], revision: ++lpRevision });
      for (const r of [a, b]) {
        expect(ids(await r.images.list(buyer, search('quokka')))).toEqual([]);
        expect(ids(await r.images.list(otherBuyer, search('quokka')))).toEqual([]);
      }
      await a.images.setState({ imageId: image.imageId, state: 'available' });
      for (const r of [a, b]) {
        expect(ids(await r.images.list(buyer, search('quokka')))).toEqual([image.imageId]);
        expect(ids(await r.images.list(otherBuyer, search('quokka')))).toEqual([]);
        expect(ids(await r.images.list(null, search('quokka')))).toEqual([]);
      }
      await b.images.updateDescription(seller, image.imageId, 'quokka grin');
      expect(descriptionIn(await a.images.list(buyer, search('quokka')), image.imageId)).toBe('quokka grin');
      await b.images.deregister(seller, image.imageId);
      expect(ids(await a.images.list(buyer, search('quokka')))).toEqual([]);
      expect(ids(await a.images.list(seller, search('quokka')))).toEqual([]);
    });

    it('hands a keeper of pages the generations a page depends on, which stop holding when it may have changed', async () => {
      const q = search('axolotl');
      const page = await a.images.listSerialized(buyer, q);
      expect(JSON.parse(page.json)).toEqual(await a.images.list(buyer, q));
      expect(page.validators?.keys).toEqual(expect.arrayContaining([listGenerationKey(redis.prefix), accountGenerationKey(redis.prefix, buyer.accountId)]));
      expect(page.maxAgeMs).toBeGreaterThan(0);
      const holds = async () => {
        const now = await a.cache['redis'].mget(...page.validators!.keys);
        return now.every((v, i) => (v ?? '0') === page.validators!.values[i]);
      };
      expect(await holds()).toBe(true);
      await a.images.register(seller, body('scoped-axolotl-other-owner'));
      expect(await holds()).toBe(true); // the seller's lists moved, not the buyer's
      await a.images.register({ accountId: buyer.accountId, roles: ['seller'] }, body('scoped-axolotl-own', { description: 'axolotl' }));
      expect(await holds()).toBe(false);
    });
  });

  describe('misses', () => {
    let small: ListCache;
    const q = { filters: {}, limit: 7 };
    const TTL = 1000;
    // The tests past the TTL move by hand only the wall clock the cache reads; timers and the
    // database stay real, so no pause of a busy machine can carry a test past a window it means
    // to stay in.
    const pastTtl = (times = 1) => vi.setSystemTime(Date.now() + times * TTL + 1);
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    });
    afterEach(() => {
      vi.useRealTimers();
    });
    beforeAll(async () => {
      small = new ListCache({ ...config, CATALOG_LIST_CACHE_TTL_MS: TTL }, a.moduleRef.get(ImageSearchRepository));
      await small.onModuleInit();
    });
    afterAll(() => small.onApplicationShutdown());

    it('computes a page once for every concurrent asker, and again for an asker that came after a change', async () => {
      let loads = 0;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const load = async () => {
        const n = ++loads;
        await gate;
        return { items: [], nextCursor: `load-${n}` };
      };
      const first = Array.from({ length: 10 }, () => small.page(buyer, q, load));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await small.invalidate({ kind: 'accounts', accounts: [buyer.accountId] });
      const after = small.page(buyer, q, load);
      release();
      expect(new Set((await Promise.all(first)).map((p) => p.nextCursor))).toEqual(new Set(['load-1']));
      expect((await after).nextCursor).toBe('load-2');
      expect(loads).toBe(2);
    });

    it('answers a page past its TTL while one request computes it again, and not past twice the TTL', async () => {
      let n = 0;
      const load = () => Promise.resolve({ items: [], nextCursor: `v${++n}` });
      const other = { ...q, limit: 8 };
      expect((await small.page(null, other, load)).nextCursor).toBe('v1');
      pastTtl(); // past the TTL, within twice it
      const staleBefore = small.stats().staleHits;
      const [x, y] = await Promise.all([small.page(null, other, load), small.page(null, other, load)]);
      expect([x.nextCursor, y.nextCursor]).toEqual(['v1', 'v1']);
      expect(small.stats().staleHits).toBe(staleBefore + 2);
      await waitFor(async () => ((await small.page(null, other, load)).nextCursor === 'v2' ? true : undefined), {
        what: 'the refreshed page',
        intervalMs: 20,
      });
      expect(n).toBe(2); // one refresh for both stale answers
      pastTtl(2); // past twice the TTL: computed before answering
      expect((await small.page(null, other, load)).nextCursor).toBe('v3');
    });

    it('renews a page past its TTL with the cheaper refresh when one is given, and computes it anew when the refresh cannot', async () => {
      let loads = 0;
      const refreshed: (string | null)[] = [];
      const load = () => Promise.resolve({ items: [], nextCursor: `l${++loads}` });
      const refresh = (page: { nextCursor: string | null }) => {
        refreshed.push(page.nextCursor);
        return Promise.resolve(page.nextCursor === 'l1' ? { items: [], nextCursor: 'r1' } : null);
      };
      const other = { ...q, limit: 10 };
      expect((await small.page(null, other, load, refresh)).nextCursor).toBe('l1');
      pastTtl();
      expect((await small.page(null, other, load, refresh)).nextCursor).toBe('l1'); // stale, renewed behind it
      await waitFor(async () => ((await small.page(null, other, load, refresh)).nextCursor === 'r1' ? true : undefined), {
        what: 'the renewed page',
        intervalMs: 20,
      });
      expect(loads).toBe(1);
      pastTtl();
      await small.page(null, other, load, refresh); // the refresh declines: computed anew
      await waitFor(async () => ((await small.page(null, other, load, refresh)).nextCursor === 'l2' ? true : undefined), {
        what: 'the page computed anew',
        intervalMs: 20,
      });
      expect(refreshed).toEqual(['l1', 'r1']);
      expect(loads).toBe(2);
    });

    it('never answers stale across a change', async () => {
      let n = 0;
      const load = () => Promise.resolve({ items: [], nextCursor: `w${++n}` });
      const other = { ...q, limit: 9 };
      await small.page(null, other, load);
      pastTtl();
      await small.invalidate();
      expect((await small.page(null, other, load)).nextCursor).toBe('w2');
    });
  });
});
