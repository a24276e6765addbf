import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '@imagemart/config';
import type { Caller, ImagePage, ListImagesRequest } from '@imagemart/contracts';
import type { CatalogConfig } from '../catalog.config.js';

/** The Redis key of the catalog's list generation: one more after every change that can alter a list. */
export const listGenerationKey = (prefix: string) => `${prefix}:catalog:list-generation`;

interface Entry {
  page: ImagePage;
  bytes: number;
  expiresAt: number;
}

export interface ListCacheStats {
  hits: number;
  misses: number;
  bypassed: number;
  entries: number;
  bytes: number;
}

/**
 * Image list pages kept in memory, exactly as visible as the caller's own query would be.
 *
 * - The key is the caller's visibility scope (anonymous, or the account id, with whether he is an
 *   admin, who is shown more of each image) and the whole query as asked (filters in the order
 *   given, text, sort, limit, page token), under the current list generation.
 * - The generation is a counter in Redis that every replica reads before each list and that each
 *   change which can alter a list (an image registered, changed, its state, deregistered; a
 *   listing or seller profile written; a launch-permission projection applied) increments after
 *   it commits and before it answers. So a list asked for after a change has been answered reads
 *   the new generation and misses every page computed before it, on every replica. A page is
 *   stored under the generation read before its query ran: a change that commits meanwhile makes
 *   it unreachable, never wrongly current.
 * - Launch counts (sort=popularity, `launchCount`) do not move the generation: a page may show
 *   counts up to the TTL old.
 * - Without Redis the cache is bypassed (nothing read, nothing stored); a failed increment
 *   empties this replica's cache and is logged: other replicas may then serve pages up to the TTL
 *   old.
 * - Memory is bounded by entries and by bytes (the JSON size of the pages), least recently used
 *   first out.
 */
@Injectable()
export class ListCache implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ListCache.name);
  private readonly redis: Redis;
  private readonly key: string;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly entries = new Map<string, Entry>();
  /** Misses being computed, by key: concurrent askers of one page share one query. */
  private readonly loads = new Map<string, Promise<ImagePage>>();
  private bytes = 0;
  private readonly counts = { hits: 0, misses: 0, bypassed: 0 };

  constructor(@Inject(APP_CONFIG) config: CatalogConfig) {
    this.key = listGenerationKey(config.REDIS_PREFIX);
    this.ttlMs = config.CATALOG_LIST_CACHE_TTL_MS;
    this.maxEntries = config.CATALOG_LIST_CACHE_MAX_ENTRIES;
    this.maxBytes = config.CATALOG_LIST_CACHE_MAX_BYTES;
    this.redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    this.redis.on('error', (err: Error) => this.logger.debug(`redis: ${err.message}`));
  }

  get enabled(): boolean {
    return this.ttlMs > 0 && this.maxEntries > 0;
  }

  async onModuleInit(): Promise<void> {
    await this.redis.connect().catch((err: Error) => this.logger.warn(`Redis for the list cache: ${err.message}; lists are not cached until it connects`));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  stats(): ListCacheStats {
    return { ...this.counts, entries: this.entries.size, bytes: this.bytes };
  }

  /** The page from the cache, or from `load` (then kept). */
  async page(caller: Caller | null, query: Omit<ListImagesRequest, 'caller'>, load: () => Promise<ImagePage>): Promise<ImagePage> {
    if (!this.enabled) return load();
    let generation: string;
    try {
      generation = (await this.redis.get(this.key)) ?? '0';
    } catch (err) {
      this.counts.bypassed++;
      this.logger.debug(`list generation unreadable, list not cached: ${(err as Error).message}`);
      return load();
    }
    const key = `${generation}\u0000${scopeOf(caller)}\u0000${stableJson(query)}`;
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) {
      this.counts.hits++;
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry.page;
    }
    if (entry) this.remove(key, entry);
    const running = this.loads.get(key);
    if (running) {
      this.counts.hits++;
      return running;
    }
    this.counts.misses++;
    const promise = load();
    this.loads.set(key, promise);
    try {
      const page = await promise;
      this.store(key, page);
      return page;
    } finally {
      this.loads.delete(key);
    }
  }

  /**
   * Call after a change that can alter a list has committed, before answering it: every page
   * computed before is unreachable from then on, on every replica.
   */
  async invalidate(): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.redis.incr(this.key);
    } catch (err) {
      this.clear();
      this.logger.error(`The list generation was not incremented (${(err as Error).message}): other replicas may show lists up to ${this.ttlMs} ms old`);
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private store(key: string, page: ImagePage): void {
    const bytes = Buffer.byteLength(JSON.stringify(page)) + key.length;
    if (bytes > this.maxBytes) return;
    const earlier = this.entries.get(key);
    if (earlier) this.remove(key, earlier);
    this.entries.set(key, { page, bytes, expiresAt: Date.now() + this.ttlMs });
    this.bytes += bytes;
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const oldest = this.entries.entries().next();
      if (oldest.done) break;
      this.remove(oldest.value[0], oldest.value[1]);
    }
  }

  private remove(key: string, entry: Entry): void {
    if (this.entries.get(key) === entry) {
      this.entries.delete(key);
      this.bytes -= entry.bytes;
    }
  }
}

/** Whose list it is: what decides which images it may show, and how much of each. */
function scopeOf(caller: Caller | null): string {
  if (caller === null) return 'anonymous';
  return caller.roles.includes('admin') ? `admin:${caller.accountId}` : `account:${caller.accountId}`;
}

/** JSON with object keys sorted (array order kept: it is part of the page token's digest). */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
