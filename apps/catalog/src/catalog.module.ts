import { Module } from '@nestjs/common';
import { DOMAIN_EVENT_HANDLERS, type DomainEventHandlers } from '@imagemart/messaging';
import { ImagesHandler } from './images/images.handler.js';
import { ImagesRepository } from './images/images.repository.js';
import { ImagesService } from './images/images.service.js';
import { LaunchPermissionProjection } from './launch-permissions/launch-permission.projection.js';
import { InstancesModule } from './instances/instances.module.js';
import { ListingsHandler } from './listings/listings.handler.js';
import { ListingsRepository } from './listings/listings.repository.js';
import { ListingsService } from './listings/listings.service.js';
import { PricingClient } from './pricing/pricing.client.js';
import { ImageSearchRepository } from './search/image-search.repository.js';
import { ListCache } from './search/list-cache.js';
import { SellerProfilesHandler } from './sellers/seller-profiles.handler.js';
import { SellerProfilesRepository } from './sellers/seller-profiles.repository.js';
import { SellerProfilesService } from './sellers/seller-profiles.service.js';
import { UploadsHandler } from './uploads/uploads.handler.js';
import { UploadsRepository } from './uploads/uploads.repository.js';
import { UploadsService } from './uploads/uploads.service.js';
import { SigningKeysClient } from './uploads/signing-keys.client.js';
import { UploadExpirySweeper } from './uploads/upload-expiry.sweeper.js';

/**
 * The catalog service: images, listings, seller profiles, browse and search, and its projection
 * of launch permissions (fed by `permission.launch-permission.changed` on its event queue), and
 * the outcome of bundling each image (`bundling.bundle.verified` / `bundling.bundle.failed`).
 */
@Module({
  imports: [InstancesModule],
  controllers: [ImagesHandler, ListingsHandler, SellerProfilesHandler, UploadsHandler],
  providers: [
    UploadsRepository,
    UploadsService,
    SigningKeysClient,
    UploadExpirySweeper,
    ImagesRepository,
    ImagesService,
    ImageSearchRepository,
    ListCache,
    ListingsRepository,
    ListingsService,
    SellerProfilesRepository,
    SellerProfilesService,
    PricingClient,
    LaunchPermissionProjection,
    {
      provide: DOMAIN_EVENT_HANDLERS,
      useFactory: (projection: LaunchPermissionProjection, images: ImagesService): DomainEventHandlers => ({
        'permission.launch-permission.changed': async (payload) => {
          await projection.apply(payload);
        },
        'bundling.bundle.verified': (payload) => images.bundleVerified(payload),
        'bundling.bundle.failed': (payload) => images.bundleFailed(payload),
      }),
      inject: [LaunchPermissionProjection, ImagesService],
    },
  ],
  exports: [ImagesService, ListingsService, LaunchPermissionProjection, SellerProfilesService, ListCache],
})
export class CatalogModule {}
