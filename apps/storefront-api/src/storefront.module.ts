import { Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { Redis } from 'ioredis';
import pg from 'pg';
import { APP_CONFIG } from '@imagemart/config';
import { QueueRegistry } from '@imagemart/messaging';
import { AccountsController } from './accounts/accounts.controller.js';
import { ImagesController } from './images/images.controller.js';
import { InstancesController } from './instances/instances.controller.js';
import { ImageListCache } from './images/image-list.cache.js';
import { ListingsController } from './listings/listings.controller.js';
import { AuditEventsController } from './audit/audit-events.controller.js';
import { LaunchPermissionsController } from './launch-permissions/launch-permissions.controller.js';
import { SharedImagesController } from './shared-images/shared-images.controller.js';
import { ApiKeyAuthenticator } from './auth/api-key.authenticator.js';
import { AuthGuard } from './auth/auth.guard.js';
import { HEALTH_DB_POOL, HealthController } from './health/health.controller.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { PricingController } from './pricing/pricing.controller.js';
import { SubscriptionsController } from './subscriptions/subscriptions.controller.js';
import { UsageController } from './usage/usage.controller.js';
import { InvoicesController } from './invoices/invoices.controller.js';
import { RevenueController } from './revenue/revenue.controller.js';
import { UploadParts } from './uploads/upload-parts.js';
import { SellerBundles } from './uploads/seller-bundle.js';
import { PlatformKeysController } from './platform-keys/platform-keys.controller.js';
import { PlatformKeysReader } from './platform-keys/platform-keys.reader.js';
import { SigningKeysController } from './signing-keys/signing-keys.controller.js';
import { UploadsController } from './uploads/uploads.controller.js';
import { ProblemFilter } from './problem/problem.filter.js';
import { ServiceClients } from './rpc/service-clients.js';
import { StripeWebhookBody } from './webhooks/stripe-webhook.body.js';
import { StripeWebhookController } from './webhooks/stripe-webhook.controller.js';
import type { StorefrontConfig } from './storefront.config.js';

/** Closes the gateway's own connections when the app stops. */
class ConnectionsCloser implements OnApplicationShutdown {
  constructor(
    @Inject(Redis) private readonly redis: Redis,
    @Inject(HEALTH_DB_POOL) private readonly db: pg.Pool,
    @Inject(QueueRegistry) private readonly queues: QueueRegistry,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.queues.close();
    await this.db.end();
    this.redis.disconnect();
  }
}

@Module({})
export class StorefrontModule {
  static forRoot(config: StorefrontConfig): DynamicModule {
    return {
      module: StorefrontModule,
      controllers: [HealthController, MetricsController, AccountsController, LaunchPermissionsController, SharedImagesController, AuditEventsController, PricingController, SubscriptionsController, UsageController, InvoicesController, RevenueController, InstancesController, ImagesController, ListingsController, UploadsController, SigningKeysController, PlatformKeysController, StripeWebhookController],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        {
          provide: Redis,
          useFactory: () => {
            // Auto-pipelining: the commands of concurrent requests (auth, page cache) go out in one write.
            const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true });
            redis.on('error', () => undefined); // reported by /health
            return redis;
          },
        },
        {
          provide: HEALTH_DB_POOL,
          useFactory: () => {
            const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2, connectionTimeoutMillis: 2000 });
            pool.on('error', () => undefined);
            return pool;
          },
        },
        { provide: QueueRegistry, useFactory: () => new QueueRegistry({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX }) },
        ServiceClients,
        StripeWebhookBody,
        ImageListCache,
        UploadParts,
        SellerBundles,
        PlatformKeysReader,
        ApiKeyAuthenticator,
        ConnectionsCloser,
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ProblemFilter },
      ],
    };
  }
}
