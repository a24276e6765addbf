import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Caller, SerializedImagePage } from '@imagemart/contracts';
import { createTestRedisPrefix, waitFor, type TestRedisPrefix } from '@imagemart/testing';
import { ImageListCache } from './image-list.cache.js';

/**
 * The gateway's page cache against the real Redis: it reuses a page only while the generations
 * the catalog handed with it still hold. The catalog's side (which generations a change moves)
 * is tested with the catalog's list cache; the whole path in e2e/catalog-list-cache.e2e-spec.ts.
 */

let redisPrefix: TestRedisPrefix;
let redis: Redis;
let cache: ImageListCache;

const buyer: Caller = { accountId: '200000000001', roles: ['buyer'] };
const otherBuyer: Caller = { accountId: '200000000002', roles: ['buyer'] };
const admin: Caller = { accountId: '200000000001', roles: ['admin'] };

let key: (name: string) => string;
const read = async (keys: string[]) => (await redis.mget(...keys)).map((v) => v ?? '0');

/** A catalog stand-in answering pages under the current values of `keys`, counting its calls. */
function catalog(keys: string[], maxAgeMs = 60_000) {
  const calls = { n: 0 };
  const load = async (): Promise<SerializedImagePage> => {
    const n = ++calls.n;
    const values = await read(keys);
    return { json: JSON.stringify({ items: [], nextCursor: `call-${n}` }), validators: { keys, values }, maxAgeMs };
  };
  return { calls, load };
}
const cursor = (body: Buffer) => (JSON.parse(body.toString('utf8')) as { nextCursor: string }).nextCursor;

beforeAll(() => {
  redisPrefix = createTestRedisPrefix('gateway-list-cache');
  redis = new Redis(redisPrefix.url);
  key = (name) => `${redisPrefix.prefix}:${name}`;
  cache = new ImageListCache(redis);
});

afterAll(async () => {
  await redisPrefix?.cleanup();
  redis?.disconnect();
});

describe('gateway image list cache', () => {
  it('reuses a page while its validators hold, and asks again once one has moved', async () => {
    const { calls, load } = catalog([key('g'), key('account')]);
    const q = { filters: {}, q: 'nginx', limit: 25 };
    expect(cursor(await cache.page(buyer, q, load))).toBe('call-1');
    expect(cursor(await cache.page(buyer, q, load))).toBe('call-1');
    expect(calls.n).toBe(1);
    await redis.incr(key('account'));
    expect(cursor(await cache.page(buyer, q, load))).toBe('call-2');
    expect(cursor(await cache.page(buyer, q, load))).toBe('call-2');
    // A validator key that disappears reads as '0', not as the value the page was kept under.
    await redis.del(key('account'));
    expect(cursor(await cache.page(buyer, q, load))).toBe('call-3');
  });

  it('never answers one caller with a page made for another', async () => {
    const { calls, load } = catalog([key('g2')]);
    const q = { filters: { architecture: ['x86_64' as const] }, limit: 25 };
    await cache.page(buyer, q, load);
    await cache.page(otherBuyer, q, load);
    await cache.page(null, q, load);
    await cache.page(admin, q, load);
    expect(calls.n).toBe(4);
    // The same query with its filters in another order is the same page; another limit is not.
    await cache.page(buyer, { limit: 25, filters: { architecture: ['x86_64' as const] } }, load);
    expect(calls.n).toBe(4);
    await cache.page(buyer, { ...q, limit: 24 }, load);
    expect(calls.n).toBe(5);
  });

  it('keeps nothing the catalog does not let it keep', async () => {
    let calls = 0;
    const load = () => Promise.resolve({ json: `{"items":[],"nextCursor":"${++calls}"}`, validators: null, maxAgeMs: 0 });
    const q = { filters: {}, limit: 3 };
    await cache.page(null, q, load);
    await cache.page(null, q, load);
    expect(calls).toBe(2);
  });

  it('shares one call among concurrent misses, but not with a request that came after the validators moved', async () => {
    const keys = [key('g3')];
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // The first call reads the generation before the change, as the catalog does before its query.
    const load = async (): Promise<SerializedImagePage> => {
      const n = ++calls;
      const values = await read(keys);
      if (n === 1) await gate;
      return { json: JSON.stringify({ items: [], nextCursor: `call-${n}` }), validators: { keys, values }, maxAgeMs: 60_000 };
    };
    const q = { filters: {}, limit: 4 };
    const early = Array.from({ length: 5 }, () => cache.page(null, q, load));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // A change answered now: a request arriving after it must not get the page of the call in flight.
    await redis.incr(keys[0]);
    const late = cache.page(null, q, load);
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    // The request that made the call gets its answer (it was under way when the change came);
    // the others find that the validators moved, and share one new call.
    expect((await Promise.all(early)).map(cursor)).toEqual(['call-1', 'call-2', 'call-2', 'call-2', 'call-2']);
    expect(cursor(await late)).toBe('call-2');
    expect(calls).toBe(2);
  });

  it('answers a page past its age while one request asks again, and not past twice its age', async () => {
    // Only the wall clock the cache reads is moved by hand; timers and Redis stay real, so no
    // pause of a busy machine can carry the test past a window it means to stay in.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      const AGE = 1000;
      const { calls, load } = catalog([key('g4')], AGE);
      const q = { filters: {}, limit: 5 };
      expect(cursor(await cache.page(null, q, load))).toBe('call-1');
      vi.setSystemTime(Date.now() + AGE + 1);
      const [x, y] = await Promise.all([cache.page(null, q, load), cache.page(null, q, load)]);
      expect([cursor(x), cursor(y)]).toEqual(['call-1', 'call-1']);
      await waitFor(async () => (cursor(await cache.page(null, q, load)) === 'call-2' ? true : undefined), {
        what: 'the refreshed page',
        intervalMs: 20,
      });
      expect(calls.n).toBe(2);
      // The refreshed page is fresh again: answered without a call.
      expect(cursor(await cache.page(null, q, load))).toBe('call-2');
      expect(calls.n).toBe(2);
      // Past twice its age: asked again before answering.
      vi.setSystemTime(Date.now() + 2 * AGE + 1);
      expect(cursor(await cache.page(null, q, load))).toBe('call-3');
      // Stale but moved: asked again before answering.
      vi.setSystemTime(Date.now() + AGE + 1);
      await redis.incr(key('g4'));
      expect(cursor(await cache.page(null, q, load))).toBe('call-4');
      expect(calls.n).toBe(4);
    } finally {
      vi.useRealTimers();
    }
  });
});
