import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { Caller, ListImagesRequest, SerializedImagePage } from '@imagemart/contracts';

/** Bounds of the gateway's pages: a storefront's hot pages, not the long tail. */
const MAX_ENTRIES = 5_000;
const MAX_BYTES = 32 * 1024 * 1024;

interface Fetched {
  body: Buffer;
  validators: SerializedImagePage['validators'];
}

interface Load {
  promise: Promise<Fetched>;
  /** performance.now() when the call was sent. */
  startedAt: number;
}

interface Entry {
  /** The page's JSON, encoded once: answering it again is a copy to the socket. */
  body: Buffer;
  bytes: number;
  validators: { keys: string[]; values: string[] };
  /** Fresh until then; past it, served while one request asks the catalog again, until `staleUntil`. */
  expiresAt: number;
  staleUntil: number;
}

export interface ImageListCacheStats {
  hits: number;
  staleHits: number;
  misses: number;
  entries: number;
}

/**
 * The image list pages the gateway has been given, as JSON text, so that a page asked for again
 * costs one Redis read instead of a call to the catalog (and no JSON work at all).
 *
 * The catalog decides what may be kept: each page comes with its validators, the list
 * generations it was computed under (see the catalog's list cache), and how long it may be
 * reused. Before every reuse the gateway reads those keys (one MGET) and uses the page only when
 * every one still holds its value; the catalog moves them after a change commits and before it
 * answers, so a list asked for after a change has been answered never shows the page from before
 * it. The key is the caller's visibility scope and the query as validated, so one account's page
 * never answers another's, nor an anonymous caller's.
 *
 * Past its age a page whose validators hold is answered while one request asks the catalog again
 * (stale-while-revalidate: only launch counts can have moved). Concurrent misses of one key share
 * one call; a request that joined a call already running uses its page only if the validators
 * still hold when it arrives (the call may have been answered under generations its own request
 * came after). Without Redis nothing is kept or reused.
 */
@Injectable()
export class ImageListCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loads = new Map<string, Load>();
  private bytes = 0;
  private readonly counts = { hits: 0, staleHits: 0, misses: 0 };

  constructor(@Inject(Redis) private readonly redis: Redis) {}

  stats(): ImageListCacheStats {
    return { ...this.counts, entries: this.entries.size };
  }

  /** The page as UTF-8 JSON: kept, or from `load` (then kept when the catalog allows it). */
  async page(caller: Caller | null, query: Omit<ListImagesRequest, 'caller'>, load: () => Promise<SerializedImagePage>): Promise<Buffer> {
    const arrived = performance.now();
    const key = `${scopeOf(caller)}\u0000${stableJson(query)}`;
    const entry = this.entries.get(key);
    const now = Date.now();
    if (entry && entry.staleUntil > now && (await this.holds(entry.validators))) {
      this.touch(key, entry);
      if (entry.expiresAt > Date.now()) {
        this.counts.hits++;
        return entry.body;
      }
      this.counts.staleHits++;
      if (!this.loads.has(key)) this.fetch(key, load).catch(() => undefined);
      return entry.body;
    }
    if (entry) this.remove(key, entry);
    for (let running = this.loads.get(key); running; running = this.loads.get(key)) {
      const shared = await running.promise.catch(() => null);
      // A call sent after this request arrived is as good as its own; an earlier one only if
      // nothing has moved since.
      const current = running.startedAt >= arrived || (shared?.validators ? await this.holds(shared.validators) : false);
      if (shared && current) {
        this.counts.hits++;
        return shared.body;
      }
      if (running.startedAt >= arrived || this.loads.get(key) === running) break;
    }
    this.counts.misses++;
    return (await this.fetch(key, load)).body;
  }

  /** Asks the catalog once for everyone asking `key` meanwhile, and keeps the page. */
  private fetch(key: string, load: () => Promise<SerializedImagePage>): Promise<Fetched> {
    const startedAt = performance.now();
    const promise = load().then((page) => {
      const fetched = { body: Buffer.from(page.json), validators: page.validators };
      this.store(key, fetched.body, page);
      return fetched;
    });
    const running = { promise, startedAt };
    this.loads.set(key, running);
    const forget = () => {
      if (this.loads.get(key) === running) this.loads.delete(key);
    };
    promise.then(forget, forget);
    return promise;
  }

  /** Whether every validator key still holds its value; false when Redis does not answer. */
  private async holds(validators: { keys: string[]; values: string[] }): Promise<boolean> {
    try {
      const now = await this.redis.mget(...validators.keys);
      return now.every((v, i) => (v ?? '0') === validators.values[i]);
    } catch {
      return false;
    }
  }

  private touch(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
  }

  private store(key: string, body: Buffer, page: SerializedImagePage): void {
    if (!page.validators || page.maxAgeMs <= 0) return;
    const bytes = body.length + key.length;
    if (bytes > MAX_BYTES) return;
    const earlier = this.entries.get(key);
    if (earlier) this.remove(key, earlier);
    const now = Date.now();
    this.entries.set(key, {
      body,
      bytes,
      validators: page.validators,
      expiresAt: now + page.maxAgeMs,
      staleUntil: now + 2 * page.maxAgeMs,
    });
    this.bytes += bytes;
    while (this.entries.size > MAX_ENTRIES || this.bytes > MAX_BYTES) {
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

/** Whose list it is: the catalog shows an owner and an admin more of each image. */
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
