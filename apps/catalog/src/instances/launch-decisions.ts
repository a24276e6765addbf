import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '@imagemart/config';
import { decisionGenerationKey, type LaunchDecision, type LaunchDecisionReason } from '@imagemart/contracts';
import type { CatalogConfig } from '../catalog.config.js';
import { LaunchUpstreamClient } from './launch-upstream.client.js';

/**
 * Allowances that follow from the image's facts alone (its state, owner, visibility and launch
 * permissions), which the image's generation counter covers. A subscription's allowance depends on
 * the account's entitlements and on billing's answers, and every refusal carries what the caller
 * may learn: those are asked every time.
 */
const KEPT_REASONS: ReadonlySet<LaunchDecisionReason> = new Set(['owner', 'public', 'launch-permission']);

/** Decisions a catalog process keeps, at most. */
const MAX_KEPT = 100_000;

interface Kept {
  decision: LaunchDecision;
  /** The image's and the account's decision generations when the decision was asked for. */
  image: string;
  account: string;
  expiresAt: number;
}

/**
 * The permission service's launch decisions, kept for a while where they cannot go stale
 * unnoticed. The permission service increments a generation counter per image and per account
 * in Redis after any change of their decision facts commits and before it acknowledges the change
 * (a revoke, a share, an image turned private or deregistered). A kept decision is reused only
 * while both counters hold what they held before it was asked for (one MGET per launch instead of
 * an RPC to the permission service), so a launch sent after a revoke was acknowledged reads the
 * moved counter and asks again: the same guarantee as the permission service's own cache. Kept
 * at most LAUNCH_DECISION_CACHE_TTL_MS; 0 asks every time; without Redis every launch asks.
 */
@Injectable()
export class LaunchDecisions implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LaunchDecisions.name);
  private readonly kept = new Map<string, Kept>();
  private readonly redis: Redis;
  private readonly ttlMs: number;
  private readonly prefix: string;

  constructor(
    @Inject(APP_CONFIG) config: CatalogConfig,
    private readonly upstream: LaunchUpstreamClient,
  ) {
    this.ttlMs = config.LAUNCH_DECISION_CACHE_TTL_MS;
    this.prefix = config.REDIS_PREFIX;
    this.redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableAutoPipelining: true });
    this.redis.on('error', (err: Error) => this.logger.debug(`Redis for launch decisions: ${err.message}`));
  }

  async onModuleInit(): Promise<void> {
    if (this.ttlMs > 0) await this.redis.connect().catch((err: Error) => this.logger.warn(`Redis for launch decisions: ${err.message}`));
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }

  /** May `accountId` launch `imageId`: as the permission service decides. */
  async decide(accountId: string, imageId: string): Promise<LaunchDecision> {
    if (this.ttlMs <= 0) return this.upstream.decide(accountId, imageId);
    const generations = await this.generations(accountId, imageId);
    const key = `${accountId}/${imageId}`;
    const hit = this.kept.get(key);
    if (
      generations &&
      hit &&
      hit.image === generations.image &&
      hit.account === generations.account &&
      hit.expiresAt > Date.now()
    ) {
      return hit.decision;
    }
    const decision = await this.upstream.decide(accountId, imageId);
    // Kept under the counters read before asking: a change that raced the question has moved
    // them on, so the entry is never used.
    if (generations && decision.allowed && KEPT_REASONS.has(decision.reason)) {
      if (this.kept.size >= MAX_KEPT) this.kept.delete(this.kept.keys().next().value as string);
      this.kept.set(key, { decision, ...generations, expiresAt: Date.now() + this.ttlMs });
    } else {
      this.kept.delete(key);
    }
    return decision;
  }

  /** The two counters ('0' before the first change), or undefined when Redis does not answer. */
  private async generations(accountId: string, imageId: string): Promise<{ image: string; account: string } | undefined> {
    try {
      const [image, account] = await this.redis.mget(
        decisionGenerationKey(this.prefix, 'image', imageId),
        decisionGenerationKey(this.prefix, 'account', accountId),
      );
      return { image: image ?? '0', account: account ?? '0' };
    } catch {
      return undefined;
    }
  }
}
