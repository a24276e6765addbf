/**
 * The launch decision's in-process cache. It holds what a decision is computed from, in two
 * sections: per image (owner, state, product codes, public flag, the accounts with a launch
 * permission) and per account (the product codes it is entitled to, and billing's answers). A
 * decision is then a few lookups in memory.
 *
 * Correctness rests on one rule: an entry is never stored from a read that may have started
 * before a change it does not reflect. Every load registers itself as in flight; invalidating a
 * key deletes its entry AND marks the loads of that key in flight as tainted, so they answer
 * their own request but are not stored. Invalidations are issued after the change commits, so a
 * load that starts after an invalidation reads the new state.
 *
 * While the cache is disabled (the invalidation channel is down, so invalidations from other
 * replicas could be missed) nothing is read from it or stored in it.
 */

interface Entry<V> {
  value: V;
  expiresAt: number;
}

interface Flight<V> {
  promise: Promise<V>;
  tainted: boolean;
}

export interface CacheSectionOptions {
  ttlMs: number;
  maxEntries: number;
  now?: () => number;
}

/** What `track` tells: the value, and whether the key was invalidated while it was computed. */
export interface Tracked<V> {
  value: V;
  tainted: boolean;
}

export class CacheSection<V> {
  private readonly entries = new Map<string, Entry<V>>();
  /** Loads in progress, by key; one load per key at a time is shared by all who ask meanwhile. */
  private readonly loads = new Map<string, Flight<V | undefined>>();
  /** Other work in progress per key whose result depends on the key's state (billing's answers). */
  private readonly tracked = new Map<string, Set<{ tainted: boolean }>>();
  private readonly now: () => number;
  enabled = true;

  constructor(private readonly options: CacheSectionOptions) {
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  peek(key: string): V | undefined {
    if (!this.enabled) return undefined;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /**
   * The cached value, or the loader's. A loader that answers undefined (nothing to remember,
   * such as an unknown image) is not cached. Concurrent callers for one key share one load.
   */
  async load(key: string, loader: () => Promise<V | undefined>): Promise<V | undefined> {
    const cached = this.peek(key);
    if (cached !== undefined) return cached;
    const running = this.loads.get(key);
    if (running && this.enabled) return running.promise;

    const flight: Flight<V | undefined> = { promise: loader(), tainted: false };
    if (this.enabled) this.loads.set(key, flight);
    try {
      const value = await flight.promise;
      if (value !== undefined && !flight.tainted && this.enabled && this.loads.get(key) === flight) this.set(key, value);
      return value;
    } finally {
      if (this.loads.get(key) === flight) this.loads.delete(key);
    }
  }

  /** Runs `work`, reporting whether `key` was invalidated meanwhile (then its result must not be kept). */
  async track<T>(key: string, work: () => Promise<T>): Promise<Tracked<T>> {
    const marker = { tainted: !this.enabled };
    let set = this.tracked.get(key);
    if (!set) this.tracked.set(key, (set = new Set()));
    set.add(marker);
    try {
      const value = await work();
      return { value, tainted: marker.tainted || !this.enabled };
    } finally {
      set.delete(marker);
      if (set.size === 0 && this.tracked.get(key) === set) this.tracked.delete(key);
    }
  }

  invalidate(key: string): void {
    this.entries.delete(key);
    const flight = this.loads.get(key);
    if (flight) {
      flight.tainted = true;
      this.loads.delete(key);
    }
    for (const marker of this.tracked.get(key) ?? []) marker.tainted = true;
  }

  clear(): void {
    this.entries.clear();
    for (const flight of this.loads.values()) flight.tainted = true;
    this.loads.clear();
    for (const set of this.tracked.values()) for (const marker of set) marker.tainted = true;
  }

  private set(key: string, value: V): void {
    if (this.options.ttlMs <= 0) return;
    this.entries.delete(key); // re-inserted last: the oldest entries come first in a Map
    this.entries.set(key, { value, expiresAt: this.now() + this.options.ttlMs });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}

/** What the decision needs to know about one image. */
export interface ImageFacts {
  imageId: string;
  ownerId: string;
  state: string;
  productCodes: string[];
  isPublic: boolean;
  /** Accounts a launch permission names (whatever the state of their share). */
  grantees: ReadonlySet<string>;
}

/** What the decision needs to know about one account. */
export interface AccountFacts {
  /** Product codes the subscription projection says the account is entitled to. */
  entitledProductCodes: ReadonlySet<string>;
  /** Billing's answers, by the sorted product codes asked about. */
  billingAnswers: Map<string, boolean>;
}

export class DecisionCache {
  readonly images: CacheSection<ImageFacts>;
  readonly accounts: CacheSection<AccountFacts>;

  constructor(options: CacheSectionOptions) {
    this.images = new CacheSection(options);
    this.accounts = new CacheSection(options);
  }

  get enabled(): boolean {
    return this.images.enabled;
  }

  /** Turning the cache off or on empties it: it may have missed invalidations either way. */
  setEnabled(enabled: boolean): void {
    this.clear();
    this.images.enabled = enabled;
    this.accounts.enabled = enabled;
  }

  invalidateImage(imageId: string): void {
    this.images.invalidate(imageId);
  }

  invalidateAccount(accountId: string): void {
    this.accounts.invalidate(accountId);
  }

  clear(): void {
    this.images.clear();
    this.accounts.clear();
  }
}
