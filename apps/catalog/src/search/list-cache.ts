import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '@imagemart/config';
import type { Caller, ImagePage, ListImagesRequest, SerializedImagePage } from '@imagemart/contracts';
import type { CatalogConfig } from '../catalog.config.js';
import { ImageSearchRepository, type ImageAudience } from './image-search.repository.js';

/** Every list page depends on this generation: a change that can alter any list moves it. */
export const listGenerationKey = (prefix: string) => `${prefix}:catalog:list-generation`;
/** The lists of one account (its own images, those shared with it), whoever else's stay. */
export const accountGenerationKey = (prefix: string, accountId: string) => `${prefix}:catalog:list-generation:account:${accountId}`;
/** Lists without a search text. */
export const browseGenerationKey = (prefix: string) => `${prefix}:catalog:list-generation:browse`;
/** Search texts that could match an image without any of their words (a `-word` among them). */
export const textGenerationKey = (prefix: string) => `${prefix}:catalog:list-generation:text`;
/** Search texts with this word (a lexeme of PostgreSQL's `english` configuration). */
export const lexemeGenerationKey = (prefix: string, lexeme: string) => `${prefix}:catalog:list-generation:lexeme:${lexeme}`;
/** The sequence every generation takes its next value from, so that no value is ever used twice. */
const sequenceKey = (prefix: string) => `${prefix}:catalog:list-generation:sequence`;

/**
 * What a committed change can alter, from the narrowest to the widest:
 * - `accounts`: the lists of these accounts only (an image that only its owner and the accounts
 *   named in its launch permission can list: pending, private, shared);
 * - `text`: the texts of an image listed for everyone (public and available) changed, and not
 *   whether it is listed: the lists without a search text (they show the image's fields), and the
 *   searches for a word the image's search document held before or holds after;
 * - `all`: any list (an image listed for everyone appears or goes; a listing, a seller profile, a
 *   launch permission changed).
 */
export type ListChange = { kind: 'all' } | { kind: 'accounts'; accounts: string[] } | { kind: 'text'; lexemes: string[] };

/** More words than this in one change: cheaper to move every list on. */
const MAX_LEXEMES_PER_CHANGE = 2000;
/**
 * Generations other than the catalog-wide one expire after a day without change; a page lives far
 * less (TTL plus as much again stale), and values never repeat, so a key that expired and starts
 * again can never validate a page kept under its earlier value.
 */
const GENERATION_KEY_TTL_S = 86_400;
/** Search texts whose words are remembered (a pure function of the text). */
const MAX_REMEMBERED_TEXTS = 10_000;

/**
 * Sets every key to the next value of the sequence (KEYS[1]), in one step; each expires after
 * ARGV[1] seconds, but the catalog-wide generation (ARGV[2]), which never does.
 */
const BUMP_SCRIPT = `
local v = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do
  if KEYS[i] == ARGV[2] then redis.call('SET', KEYS[i], v) else redis.call('SET', KEYS[i], v, 'EX', ARGV[1]) end
end
return v`;

/**
 * Renews a page past its TTL whose generations have not moved: only what moves no generation can
 * differ (launch counts), so the page may be the same rows in the same order with those read
 * again. Null when only computing it anew will do (an order by launches).
 */
export type RefreshPage = (page: ImagePage) => Promise<ImagePage | null>;

interface Entry {
  page: ImagePage;
  json: string;
  bytes: number;
  keys: string[];
  values: string[];
  /** Fresh until then; served stale (while one request refreshes it) until `staleUntil`. */
  expiresAt: number;
  staleUntil: number;
}

export interface ListCacheStats {
  hits: number;
  /** Hits on a page past its TTL, answered while it is computed again. */
  staleHits: number;
  misses: number;
  bypassed: number;
  entries: number;
  bytes: number;
}

/**
 * Image list pages kept in memory, exactly as visible as the caller's own query would be.
 *
 * - The key is the caller's visibility scope (anonymous, or the account id, with whether he is an
 *   admin, who is shown more of each image), the whole query as asked (filters in the order given,
 *   text, sort, limit, page token), and the values of the list generations the page depends on.
 * - Generations are Redis keys that every replica reads (one MGET) before each list, and that a
 *   change which can alter a list moves after it commits and before it answers (see
 *   {@link ListChange}). Every page depends on the catalog-wide generation; a signed-in caller's
 *   page also on his account's; a page without search text on the browse generation; a search on
 *   the generation of each of its words (or, for a text with a `-word`, on the text generation).
 *   So a list asked for after a change has been answered misses every page the change could
 *   alter, on every replica, and keeps the others. A page is stored under the values read before
 *   its query ran: a change that commits meanwhile makes it unreachable, never wrongly current.
 * - Launch counts (sort=popularity, `launchCount`) move no generation: a page may show counts up
 *   to the TTL old, or twice the TTL when served stale.
 * - Past its TTL a page whose generations have not moved is served stale for as long again while
 *   one request computes it anew, or, when the caller can (see {@link RefreshPage}), reads again
 *   only the launch counts of its rows; concurrent misses of one key share one query.
 * - Without Redis the cache is bypassed (nothing read, nothing stored); a failed move empties this
 *   replica's cache and is logged: other replicas may then serve pages up to the TTL old.
 * - Memory is bounded by entries and by bytes (the JSON size of the pages), least recently used
 *   first out.
 */
@Injectable()
export class ListCache implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ListCache.name);
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly entries = new Map<string, Entry>();
  /** Pages being computed, by key: concurrent askers of one page share one query. */
  private readonly loads = new Map<string, Promise<Entry | null>>();
  /** Words of search texts (null: the text can match without its words), by text. */
  private readonly words = new Map<string, string[] | null>();
  private bytes = 0;
  private readonly counts = { hits: 0, staleHits: 0, misses: 0, bypassed: 0 };

  constructor(
    @Inject(APP_CONFIG) config: CatalogConfig,
    private readonly search: ImageSearchRepository,
  ) {
    this.prefix = config.REDIS_PREFIX;
    this.ttlMs = config.CATALOG_LIST_CACHE_TTL_MS;
    this.maxEntries = config.CATALOG_LIST_CACHE_MAX_ENTRIES;
    this.maxBytes = config.CATALOG_LIST_CACHE_MAX_BYTES;
    this.redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true });
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

  /**
   * The page from the cache, or from `load` (then kept). `refresh`, when given, renews a page past
   * its TTL whose generations have not moved more cheaply than `load` (see {@link RefreshPage}).
   */
  async page(
    caller: Caller | null,
    query: Omit<ListImagesRequest, 'caller'>,
    load: () => Promise<ImagePage>,
    refresh?: RefreshPage,
  ): Promise<ImagePage> {
    const found = await this.lookup(caller, query, load, refresh);
    return 'entry' in found ? found.entry.page : found.page;
  }

  /** The page as JSON, with the generations it was computed under, for a keeper of pages. */
  async serialized(
    caller: Caller | null,
    query: Omit<ListImagesRequest, 'caller'>,
    load: () => Promise<ImagePage>,
    refresh?: RefreshPage,
  ): Promise<SerializedImagePage> {
    const found = await this.lookup(caller, query, load, refresh);
    if (!('entry' in found)) return { json: JSON.stringify(found.page), validators: null, maxAgeMs: 0 };
    const { entry } = found;
    return {
      json: entry.json,
      validators: { keys: entry.keys, values: entry.values },
      maxAgeMs: Math.max(0, entry.expiresAt - Date.now()),
    };
  }

  private async lookup(
    caller: Caller | null,
    query: Omit<ListImagesRequest, 'caller'>,
    load: () => Promise<ImagePage>,
    refresh?: RefreshPage,
  ): Promise<{ entry: Entry } | { page: ImagePage }> {
    if (!this.enabled) return { page: await load() };
    let keys: string[];
    let values: string[];
    try {
      keys = await this.dependencies(caller, query.q);
      values = (await this.redis.mget(...keys)).map((v) => v ?? '0');
    } catch (err) {
      this.counts.bypassed++;
      this.logger.debug(`list generations unreadable, list not cached: ${(err as Error).message}`);
      return { page: await load() };
    }
    const key = `${values.join(',')}\u0000${scopeOf(caller)}\u0000${stableJson(query)}`;
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) {
      this.counts.hits++;
      this.touch(key, entry);
      return { entry };
    }
    if (entry && entry.staleUntil > now) {
      // Nothing it depends on has changed, only launch counts may have: answer it while one
      // request computes it again.
      this.counts.staleHits++;
      this.touch(key, entry);
      if (!this.loads.has(key)) {
        const renew = refresh ? async () => (await refresh(entry.page)) ?? (await load()) : load;
        this.compute(key, keys, values, renew).catch((err: unknown) =>
          this.logger.warn(`Refreshing a list page failed: ${(err as Error).message}`),
        );
      }
      return { entry };
    }
    if (entry) this.remove(key, entry);
    const running = this.loads.get(key);
    if (running) {
      this.counts.hits++;
    } else {
      this.counts.misses++;
    }
    const computed = await (running ?? this.compute(key, keys, values, load));
    return computed ? { entry: computed } : { page: await load() };
  }

  /** Runs `load` once for every asker of `key`, and keeps the page. */
  private compute(key: string, keys: string[], values: string[], load: () => Promise<ImagePage>): Promise<Entry | null> {
    const promise = (async () => {
      const page = await load();
      return this.store(key, keys, values, page);
    })();
    this.loads.set(key, promise);
    const forget = () => {
      if (this.loads.get(key) === promise) this.loads.delete(key);
    };
    promise.then(forget, forget);
    return promise;
  }

  /** The generation keys a page of this caller and text depends on. */
  private async dependencies(caller: Caller | null, q: string | undefined): Promise<string[]> {
    const keys = [listGenerationKey(this.prefix)];
    if (caller) keys.push(accountGenerationKey(this.prefix, caller.accountId));
    if (q === undefined) {
      keys.push(browseGenerationKey(this.prefix));
      return keys;
    }
    const words = await this.wordsOf(q);
    if (words === null) keys.push(textGenerationKey(this.prefix));
    else keys.push(...words.map((w) => lexemeGenerationKey(this.prefix, w)));
    return keys;
  }

  private async wordsOf(q: string): Promise<string[] | null> {
    const known = this.words.get(q);
    if (known !== undefined) return known;
    const words = positiveLexemes(await this.search.tsquery(q));
    if (this.words.size >= MAX_REMEMBERED_TEXTS) this.words.clear();
    this.words.set(q, words);
    return words;
  }

  /**
   * Call after a change that can alter a list has committed, before answering it: every page the
   * change can alter is unreachable from then on, on every replica.
   */
  async invalidate(change: ListChange = { kind: 'all' }): Promise<void> {
    if (!this.enabled) return;
    const keys = this.keysMovedBy(change);
    if (keys.length === 0) return;
    try {
      await this.redis.eval(
        BUMP_SCRIPT,
        keys.length + 1,
        sequenceKey(this.prefix),
        ...keys,
        String(GENERATION_KEY_TTL_S),
        listGenerationKey(this.prefix),
      );
    } catch (err) {
      this.clear();
      this.logger.error(`The list generations were not moved (${(err as Error).message}): other replicas may show lists up to ${this.ttlMs} ms old`);
    }
  }

  /** The generation keys a change moves. */
  private keysMovedBy(change: ListChange): string[] {
    switch (change.kind) {
      case 'all':
        return [listGenerationKey(this.prefix)];
      case 'accounts':
        return [...new Set(change.accounts)].map((a) => accountGenerationKey(this.prefix, a));
      case 'text': {
        const lexemes = [...new Set(change.lexemes)];
        if (lexemes.length > MAX_LEXEMES_PER_CHANGE) return [listGenerationKey(this.prefix)];
        return [
          browseGenerationKey(this.prefix),
          textGenerationKey(this.prefix),
          ...lexemes.map((w) => lexemeGenerationKey(this.prefix, w)),
        ];
      }
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private touch(key: string, entry: Entry): void {
    // Most recently used last.
    this.entries.delete(key);
    this.entries.set(key, entry);
  }

  private store(key: string, keys: string[], values: string[], page: ImagePage): Entry | null {
    const json = JSON.stringify(page);
    const bytes = Buffer.byteLength(json) + key.length;
    if (bytes > this.maxBytes) return null;
    const earlier = this.entries.get(key);
    if (earlier) this.remove(key, earlier);
    const now = Date.now();
    const entry: Entry = { page, json, bytes, keys, values, expiresAt: now + this.ttlMs, staleUntil: now + 2 * this.ttlMs };
    this.entries.set(key, entry);
    this.bytes += bytes;
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const oldest = this.entries.entries().next();
      if (oldest.done) break;
      this.remove(oldest.value[0], oldest.value[1]);
    }
    return entry;
  }

  private remove(key: string, entry: Entry): void {
    if (this.entries.get(key) === entry) {
      this.entries.delete(key);
      this.bytes -= entry.bytes;
    }
  }
}

/** Listed for everyone: in anonymous lists and in every account's. */
const listedForAll = (a: Pick<ImageAudience, 'isPublic' | 'state'>) => a.isPublic && a.state === 'available';

/**
 * An image appeared, went, or moved between states: for everyone when it was or is listed for
 * everyone, else for its owner and the accounts its launch permission names.
 */
export function membershipChange(before: ImageAudience, after: ImageAudience | null): ListChange {
  if (listedForAll(before) || (after !== null && listedForAll(after))) return { kind: 'all' };
  return { kind: 'accounts', accounts: [before.ownerId, ...before.grantees, ...(after ? [after.ownerId, ...after.grantees] : [])] };
}

/** Only the texts of an image changed (its description): see {@link ListChange}. */
export function textChange(before: ImageAudience, after: ImageAudience): ListChange {
  if (listedForAll(before) !== listedForAll(after)) return { kind: 'all' };
  if (!listedForAll(after)) return membershipChange(before, after);
  return { kind: 'text', lexemes: [...before.lexemes, ...after.lexemes] };
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

/**
 * The words of a tsquery (its text form, as PostgreSQL prints it) when only documents holding one
 * of them can match it; null when it could match a document without any of its words (a negated
 * word) or holds something this reading does not know (weights, prefixes).
 */
export function positiveLexemes(tsquery: string): string[] | null {
  const words = new Set<string>();
  let i = 0;
  while (i < tsquery.length) {
    const c = tsquery[i];
    if (c === "'") {
      let word = '';
      i++;
      for (;;) {
        if (i >= tsquery.length) return null;
        if (tsquery[i] === "'") {
          if (tsquery[i + 1] === "'") {
            word += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        word += tsquery[i++];
      }
      words.add(word);
      continue;
    }
    // Outside quotes only AND, OR, FOLLOWED BY (<->, <N>), brackets and spaces keep it positive.
    if (!/[\s&|()<>\-0-9]/.test(c)) return null;
    i++;
  }
  return [...words];
}
