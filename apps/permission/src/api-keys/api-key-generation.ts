import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, type BaseConfig } from '@imagemart/config';
import { ErrorCode, apiKeyGenerationKey } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';

/**
 * Tells the gateways' key caches that a key stopped being valid, by incrementing the API-key
 * generation in Redis. A revoke answers only after the increment, so no gateway accepts the key
 * once the revoke has answered.
 */
@Injectable()
export class ApiKeyGeneration implements OnApplicationShutdown {
  private readonly redis: Redis;
  private readonly key: string;

  constructor(@Inject(APP_CONFIG) config: BaseConfig) {
    this.redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    this.redis.on('error', () => undefined); // reported by the failing call
    this.key = apiKeyGenerationKey(config.REDIS_PREFIX);
  }

  async bump(): Promise<void> {
    try {
      await this.redis.incr(this.key);
    } catch {
      // The revoke is stored; asking again is harmless and bumps again.
      throw new DomainException(ErrorCode.ServiceUnavailable, 'The key is revoked but the gateways could not be told yet; revoke it again.');
    }
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}
