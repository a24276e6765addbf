import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '@imagemart/config';
import { ErrorCode } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import type { CatalogConfig } from '../catalog.config.js';

/** The Redis key of an account's launch token bucket. */
export const launchRateKey = (prefix: string, accountId: string) => `${prefix}:catalog:launch-rate:${accountId}`;

/**
 * One token bucket per account, in Redis so that every catalog replica draws from the same one:
 * `burst` tokens, refilled at `refill` a second; a launch request takes one. Atomic in one script;
 * the time is Redis's own (`TIME`), so replicas' clocks do not matter.
 */
const TAKE = `
local burst = tonumber(ARGV[1])
local perMs = tonumber(ARGV[2]) / 1000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * perMs)
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / perMs) + 1000)
return ok
`;

interface TakeCommand {
  launchRateTake(key: string, burst: number, refillPerSecond: number): Promise<unknown>;
}

@Injectable()
export class LaunchRateLimiter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LaunchRateLimiter.name);
  private readonly redis: Redis;

  constructor(@Inject(APP_CONFIG) private readonly config: CatalogConfig) {
    this.redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableAutoPipelining: true });
    // EVALSHA of the loaded script (EVAL once when Redis does not know it), not the text each time.
    this.redis.defineCommand('launchRateTake', { numberOfKeys: 1, lua: TAKE });
    this.redis.on('error', (err: Error) => this.logger.warn(`Redis for the launch rate: ${err.message}`));
  }

  async onModuleInit(): Promise<void> {
    await this.redis.connect().catch((err: Error) => this.logger.warn(`Redis for the launch rate: ${err.message}`));
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }

  /** Takes one launch from the account's bucket, or 429 RequestLimitExceeded. */
  async take(accountId: string): Promise<void> {
    let ok: unknown;
    try {
      ok = await (this.redis as Redis & TakeCommand).launchRateTake(
        launchRateKey(this.config.REDIS_PREFIX, accountId),
        this.config.INSTANCE_LAUNCH_BURST,
        this.config.INSTANCE_LAUNCH_REFILL_PER_SECOND,
      );
    } catch (err) {
      this.logger.warn({ msg: 'launch rate not checked', accountId, err: (err as Error).message });
      throw new DomainException(ErrorCode.ServiceUnavailable, 'The launch rate could not be checked; try again.');
    }
    if (ok !== 1) {
      throw new DomainException(
        ErrorCode.RequestLimitExceeded,
        `Too many launch requests: at most ${this.config.INSTANCE_LAUNCH_BURST} at once, then ${this.config.INSTANCE_LAUNCH_REFILL_PER_SECOND} a second.`,
      );
    }
  }
}
