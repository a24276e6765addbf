import { describe, expect, it } from 'vitest';
import { CacheSection, DecisionCache } from './decision-cache.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('CacheSection', () => {
  it('keeps a loaded value until its TTL passes', async () => {
    let now = 1_000;
    const section = new CacheSection<string>({ ttlMs: 100, maxEntries: 10, now: () => now });
    let loads = 0;
    const loader = () => Promise.resolve(`v${++loads}`);
    expect(await section.load('k', loader)).toBe('v1');
    now += 99;
    expect(await section.load('k', loader)).toBe('v1');
    now += 1;
    expect(await section.load('k', loader)).toBe('v2');
  });

  it('does not keep undefined (nothing to remember)', async () => {
    const section = new CacheSection<string>({ ttlMs: 1000, maxEntries: 10 });
    let loads = 0;
    await section.load('k', () => Promise.resolve(void loads++));
    await section.load('k', () => Promise.resolve(void loads++));
    expect(loads).toBe(2);
  });

  it('never stores a load that was in flight when its key was invalidated', async () => {
    const section = new CacheSection<string>({ ttlMs: 60_000, maxEntries: 10 });
    const before = deferred<string>();
    const stale = section.load('k', () => before.promise);
    section.invalidate('k'); // the change commits while the old state is being read
    before.resolve('old');
    expect(await stale).toBe('old'); // that request was concurrent with the change: either answer is fair
    expect(section.peek('k')).toBeUndefined();
    expect(await section.load('k', () => Promise.resolve('new'))).toBe('new');
    expect(section.peek('k')).toBe('new');
  });

  it('shares one load between concurrent callers, but not with a caller that came after an invalidation', async () => {
    const section = new CacheSection<string>({ ttlMs: 60_000, maxEntries: 10 });
    const first = deferred<string>();
    let loads = 0;
    const a = section.load('k', () => (loads++, first.promise));
    const b = section.load('k', () => (loads++, Promise.resolve('unused')));
    expect(loads).toBe(1);
    section.invalidate('k');
    const c = section.load('k', () => (loads++, Promise.resolve('after')));
    first.resolve('before');
    expect([await a, await b, await c]).toEqual(['before', 'before', 'after']);
    expect(loads).toBe(2);
    expect(section.peek('k')).toBe('after');
  });

  it('reports tracked work as tainted when its key is invalidated meanwhile', async () => {
    const section = new CacheSection<string>({ ttlMs: 60_000, maxEntries: 10 });
    const gate = deferred<boolean>();
    const tracked = section.track('k', () => gate.promise);
    section.invalidate('k');
    gate.resolve(true);
    expect(await tracked).toEqual({ value: true, tainted: true });
    expect(await section.track('k', () => Promise.resolve(false))).toEqual({ value: false, tainted: false });
  });

  it('drops the oldest entries beyond its size', async () => {
    const section = new CacheSection<number>({ ttlMs: 60_000, maxEntries: 2 });
    for (const [k, v] of [['a', 1], ['b', 2], ['c', 3]] as const) await section.load(k, () => Promise.resolve(v));
    expect([section.peek('a'), section.peek('b'), section.peek('c')]).toEqual([undefined, 2, 3]);
    expect(section.size).toBe(2);
  });
});

describe('DecisionCache', () => {
  it('neither answers from nor stores into the cache while it is off, and starts empty when back on', async () => {
    const cache = new DecisionCache({ ttlMs: 60_000, maxEntries: 10 });
    const facts = { imageId: 'i', ownerId: 'o', state: 'available', productCodes: [], isPublic: true, grantees: new Set<string>() };
    await cache.images.load('i', () => Promise.resolve(facts));
    expect(cache.images.peek('i')).toBe(facts);
    cache.setEnabled(false);
    expect(cache.images.peek('i')).toBeUndefined();
    let loads = 0;
    await cache.images.load('i', () => Promise.resolve((loads++, facts)));
    await cache.images.load('i', () => Promise.resolve((loads++, facts)));
    expect(loads).toBe(2);
    cache.setEnabled(true);
    expect(cache.images.peek('i')).toBeUndefined();
  });

  it('invalidates images and accounts separately', async () => {
    const cache = new DecisionCache({ ttlMs: 60_000, maxEntries: 10 });
    await cache.images.load('x', () => Promise.resolve({ imageId: 'x', ownerId: 'o', state: 'available', productCodes: [], isPublic: false, grantees: new Set<string>() }));
    await cache.accounts.load('x', () => Promise.resolve({ entitledProductCodes: new Set<string>(), billingAnswers: new Map() }));
    cache.invalidateAccount('x');
    expect(cache.images.peek('x')).toBeDefined();
    expect(cache.accounts.peek('x')).toBeUndefined();
  });
});
