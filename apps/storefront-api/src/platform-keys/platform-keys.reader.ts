import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '@imagemart/config';
import { ErrorCode, platformKeysKey, type PlatformKeysView } from '@imagemart/contracts';
import { ApiProblem } from '../problem/api-problem.js';
import type { StorefrontConfig } from '../storefront.config.js';

/**
 * The platform's public keys, as the bundler-worker (the one process holding the private keys)
 * publishes them in Redis at start. Read on each use: a restarted worker with new keys is seen at once.
 */
@Injectable()
export class PlatformKeysReader {
  constructor(
    private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: StorefrontConfig,
  ) {}

  /** The keys, or undefined when no worker has published them yet (or Redis does not answer). */
  async find(): Promise<PlatformKeysView | undefined> {
    const raw = await this.redis.get(platformKeysKey(this.config.REDIS_PREFIX)).catch(() => null);
    return raw ? (JSON.parse(raw) as PlatformKeysView) : undefined;
  }

  async get(): Promise<PlatformKeysView> {
    const keys = await this.find();
    if (!keys) {
      throw new ApiProblem(
        ErrorCode.ServiceUnavailable,
        'The platform keys are not published yet: the bundler-worker has not started. Try again shortly.',
      );
    }
    return keys;
  }
}
