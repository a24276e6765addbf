import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '@imagemart/config';
import { decisionGenerationKey, type DecisionFactsKind } from '@imagemart/contracts';
import type { PermissionConfig } from '../permission.config.js';
import { DecisionCache } from './decision-cache.js';

export type InvalidationKind = DecisionFactsKind;

interface InvalidationMessage {
  /** The replica that sent it: it has applied it already. */
  origin: string;
  /** Unique per message: the sender waits for its own copy to come back. */
  seq: number;
  kind: InvalidationKind;
  id: string;
}

/** Generations remembered per kind; one forgotten costs a reload, never a stale answer. */
const MAX_SEEN = 200_000;

/** How long a change waits for its invalidation to come back through Redis before it goes on regardless. */
const ECHO_TIMEOUT_MS = 1000;

/** The pub/sub channel every replica of one deployment listens on. */
export const decisionInvalidationChannel = (prefix: string) => `${prefix}:permission:decision-invalidations`;


/**
 * Carries cache invalidations between the replicas of the permission service, in two ways.
 *
 * - A generation counter per image and per account in Redis, incremented by every change after
 *   it commits and before it is acknowledged. Each decision reads the two counters it depends on
 *   first ({@link catchUp}) and drops what it holds from before a higher one. This is what makes
 *   "no stale allow after a revoke" hold on every replica: a decision asked after the revoke was
 *   acknowledged reads the new counter, whatever pub/sub has or has not delivered yet.
 * - Pub/sub, so that loads already in flight on other replicas when the change commits are not
 *   stored (their values may predate the change), and entries go early.
 *
 * A change invalidates the local cache and publishes before it is acknowledged; each replica
 * drops the entry when the message arrives. Pub/sub loses what is sent while a replica is not
 * subscribed, so the cache is switched off (and emptied) whenever the subscription is not up, and
 * switched on again, empty, once it is: no replica answers from a cache that may have missed an
 * invalidation. The TTL is the backstop for anything else.
 */
@Injectable()
export class DecisionInvalidationBus implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(DecisionInvalidationBus.name);
  private readonly origin = randomUUID();
  private readonly channel: string;
  private readonly subscriber: Redis;
  private readonly publisher: Redis;
  private closed = false;
  private seq = 0;
  private readonly echoes = new Map<number, () => void>();
  /** The highest generation of each image and account this replica has acted on. */
  private readonly seen = { image: new Map<string, number>(), account: new Map<string, number>() };
  private readonly prefix: string;

  constructor(
    @Inject(APP_CONFIG) config: PermissionConfig,
    readonly cache: DecisionCache,
  ) {
    this.channel = decisionInvalidationChannel(config.REDIS_PREFIX);
    this.prefix = config.REDIS_PREFIX;
    this.subscriber = new Redis(config.REDIS_URL, {
      lazyConnect: true,
      autoResubscribe: false,
      maxRetriesPerRequest: null,
      connectionName: this.channel, // CLIENT LIST shows which connections listen
    });
    this.publisher = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    this.subscriber.on('error', (err: Error) => this.logger.debug(`subscriber: ${err.message}`));
    this.publisher.on('error', (err: Error) => this.logger.debug(`publisher: ${err.message}`));
  }

  async onModuleInit(): Promise<void> {
    this.cache.setEnabled(false);
    this.subscriber.on('message', (channel: string, raw: string) => {
      if (channel === this.channel) this.onMessage(raw);
    });
    this.subscriber.on('close', () => {
      if (this.cache.enabled) this.logger.warn('Invalidation channel lost; the launch decision cache is off until it is back');
      this.cache.setEnabled(false);
    });
    this.subscriber.on('ready', () => void this.subscribe());
    await Promise.all([this.subscriber.connect(), this.publisher.connect()]).catch((err: Error) =>
      this.logger.warn(`Redis for cache invalidations: ${err.message}; the cache stays off until it connects`),
    );
  }

  /** Whether invalidations from other replicas reach this one now (the cache is on). */
  get listening(): boolean {
    return this.cache.enabled;
  }

  private async subscribe(): Promise<void> {
    try {
      await this.subscriber.subscribe(this.channel);
      // Anything could have changed while the channel was down: start empty.
      this.cache.setEnabled(true);
    } catch (err) {
      this.logger.warn(`Subscribing to ${this.channel} failed: ${(err as Error).message}`);
    }
  }

  private onMessage(raw: string): void {
    let message: InvalidationMessage;
    try {
      message = JSON.parse(raw) as InvalidationMessage;
    } catch {
      this.logger.warn('Dropped an undecodable invalidation; emptying the cache instead');
      this.cache.clear();
      return;
    }
    if (message.origin === this.origin) {
      this.echoes.get(message.seq)?.();
      return;
    }
    this.apply(message.kind, message.id);
  }

  private apply(kind: InvalidationKind, id: string): void {
    if (kind === 'image') this.cache.invalidateImage(id);
    else if (kind === 'account') this.cache.invalidateAccount(id);
    else this.cache.clear();
  }

  /**
   * Call after the change has committed and before it is acknowledged: drops the local entry,
   * tells the other replicas, and waits until the message has come back to this replica through
   * Redis. Redis delivers a message to all subscribers at once, so by then it is in every other
   * replica's socket, ahead of any request sent after the acknowledgement; {@link settle} makes
   * sure a replica reads it before it answers such a request. A failed publish is logged; a
   * replica whose subscription is down has its cache off.
   */
  async invalidate(kind: InvalidationKind, id: string): Promise<void> {
    this.apply(kind, id);
    if (this.closed) return;
    try {
      await this.publisher.incr(decisionGenerationKey(this.prefix, kind, id));
    } catch (err) {
      // Without the counter other replicas could answer from what they hold: stop the change's
      // acknowledgement, so the caller retries (the change itself is committed and idempotent).
      this.logger.error(`Moving the generation of ${kind} ${id} on failed: ${(err as Error).message}`);
      throw err;
    }
    const seq = ++this.seq;
    const message: InvalidationMessage = { origin: this.origin, seq, kind, id };
    let timer: NodeJS.Timeout | undefined;
    const echoed = new Promise<boolean>((resolve) => {
      this.echoes.set(seq, () => resolve(true));
      timer = setTimeout(() => resolve(false), ECHO_TIMEOUT_MS);
    });
    try {
      await this.publisher.publish(this.channel, JSON.stringify(message));
      if (this.cache.enabled && !(await echoed)) {
        this.logger.warn(`The invalidation of ${kind} ${id} did not come back within ${ECHO_TIMEOUT_MS} ms`);
      }
    } catch (err) {
      this.logger.error(`Publishing the invalidation of ${kind} ${id} failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
      this.echoes.delete(seq);
    }
  }

  /**
   * Before a decision reads the cache: drops what this replica holds about the image or the
   * account from before their latest change (by their generation counters).
   */
  async catchUp(imageId: string, accountId: string): Promise<void> {
    const [image, account] = await this.publisher.mget(
      decisionGenerationKey(this.prefix, 'image', imageId),
      decisionGenerationKey(this.prefix, 'account', accountId),
    );
    this.advance('image', imageId, Number(image ?? 0));
    this.advance('account', accountId, Number(account ?? 0));
  }

  private advance(kind: InvalidationKind, id: string, generation: number): void {
    const seen = this.seen[kind];
    const known = seen.get(id) ?? 0;
    if (generation <= known) return;
    // Held entries may predate this change; so may loads in flight.
    this.apply(kind, id);
    if (seen.size >= MAX_SEEN) seen.delete(seen.keys().next().value as string);
    seen.set(id, generation);
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.cache.setEnabled(false);
    this.subscriber.disconnect();
    await this.publisher.quit().catch(() => this.publisher.disconnect());
  }
}
