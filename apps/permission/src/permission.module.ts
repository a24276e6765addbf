import { Module } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import { DOMAIN_EVENT_HANDLERS, type DomainEventHandlers } from '@imagemart/messaging';
import { AccountsHandler } from './accounts/accounts.handler.js';
import { AccountsRepository } from './accounts/accounts.repository.js';
import { AccountsService } from './accounts/accounts.service.js';
import { ApiKeysHandler } from './api-keys/api-keys.handler.js';
import { ApiKeyGeneration } from './api-keys/api-key-generation.js';
import { ApiKeysRepository } from './api-keys/api-keys.repository.js';
import { ApiKeysService } from './api-keys/api-keys.service.js';
import { AuditHandler } from './audit/audit.handler.js';
import { AuditReader, AuditRepository } from './audit/audit.repository.js';
import { AuditService } from './audit/audit.service.js';
import { AdminBootstrapService } from './bootstrap/admin-bootstrap.service.js';
import { DecisionCache } from './decision/decision-cache.js';
import { DecisionInvalidationBus } from './decision/decision-invalidation.bus.js';
import { LaunchDecisionHandler } from './decision/launch-decision.handler.js';
import { LaunchDecisionService } from './decision/launch-decision.service.js';
import { ImageProjectionRepository } from './images/image-projection.repository.js';
import { ImageProjectionService } from './images/image-projection.service.js';
import { ImageAccess } from './launch-permissions/image.access.js';
import { LaunchPermissionsHandler } from './launch-permissions/launch-permissions.handler.js';
import { LaunchPermissionsRepository } from './launch-permissions/launch-permissions.repository.js';
import { LaunchPermissionsService } from './launch-permissions/launch-permissions.service.js';
import type { PermissionConfig } from './permission.config.js';
import { SharesHandler } from './shares/shares.handler.js';
import { SharesService } from './shares/shares.service.js';
import { SigningKeysHandler } from './signing-keys/signing-keys.handler.js';
import { SigningKeysRepository } from './signing-keys/signing-keys.repository.js';
import { SigningKeysService } from './signing-keys/signing-keys.service.js';
import { SubscriptionProjectionRepository } from './subscriptions/subscription-projection.repository.js';
import { SubscriptionProjectionService } from './subscriptions/subscription-projection.service.js';
import { UpstreamClients } from './upstream/upstream.clients.js';

@Module({
  controllers: [
    AccountsHandler,
    ApiKeysHandler,
    LaunchPermissionsHandler,
    SharesHandler,
    LaunchDecisionHandler,
    AuditHandler,
    SigningKeysHandler,
  ],
  providers: [
    AccountsRepository,
    AccountsService,
    ApiKeyGeneration,
    ApiKeysRepository,
    ApiKeysService,
    AuditRepository,
    AuditReader,
    AuditService,
    AdminBootstrapService,
    UpstreamClients,
    {
      provide: DecisionCache,
      useFactory: (config: PermissionConfig) =>
        new DecisionCache({ ttlMs: config.DECISION_CACHE_TTL_MS, maxEntries: config.DECISION_CACHE_MAX_ENTRIES }),
      inject: [APP_CONFIG],
    },
    DecisionInvalidationBus,
    LaunchDecisionService,
    ImageProjectionRepository,
    ImageProjectionService,
    SubscriptionProjectionRepository,
    SubscriptionProjectionService,
    ImageAccess,
    LaunchPermissionsRepository,
    LaunchPermissionsService,
    SharesService,
    SigningKeysRepository,
    SigningKeysService,
    {
      provide: DOMAIN_EVENT_HANDLERS,
      useFactory: (images: ImageProjectionService, subscriptions: SubscriptionProjectionService): DomainEventHandlers => ({
        'catalog.image.changed': async (payload) => void (await images.apply(payload)),
        'billing.subscription.changed': async (payload) => void (await subscriptions.apply(payload)),
      }),
      inject: [ImageProjectionService, SubscriptionProjectionService],
    },
  ],
  exports: [AdminBootstrapService, DOMAIN_EVENT_HANDLERS],
})
export class PermissionModule {}
