import { Module } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import { StartupError } from '@imagemart/messaging';
import { createObjectStore, objectStoreConfigFromEnv } from '@imagemart/object-store';
import type { CatalogConfig } from '../catalog.config.js';
import { ImagesRepository } from '../images/images.repository.js';
import { UploadsRepository } from '../uploads/uploads.repository.js';
import { INSTANCE_HOST_DRIVER, type InstanceHostDriver } from './instance-host.driver.js';
import { InstanceHostProcessor } from './instance-host.processor.js';
import { InstancesHandler } from './instances.handler.js';
import { InstancesRepository } from './instances.repository.js';
import { InstancesService } from './instances.service.js';
import { LaunchCounts } from './launch-counts.js';
import { LaunchDecisions } from './launch-decisions.js';
import { LaunchGrants } from './launch-grant.js';
import { LaunchRateLimiter } from './launch-rate.limiter.js';
import { LaunchUpstreamClient } from './launch-upstream.client.js';
import { ManifestSigners } from './manifest-signers.js';
import { SimulatedHostDriver } from './simulated-host.driver.js';

/** Instances: launch, list, get, terminate, and the instance host queue (docs/launches.md). */
@Module({
  controllers: [InstancesHandler],
  providers: [
    InstancesRepository,
    ImagesRepository,
    InstancesService,
    LaunchUpstreamClient,
    LaunchDecisions,
    LaunchRateLimiter,
    InstanceHostProcessor,
    LaunchCounts,
    UploadsRepository,
    ManifestSigners,
    {
      provide: LaunchGrants,
      useFactory: (config: CatalogConfig) => {
        if (config.LAUNCH_GRANT_SECRET === undefined && config.NODE_ENV === 'production') {
          throw new StartupError('LAUNCH_GRANT_SECRET is required in production (32 characters or more): hosts check launch grants with it.');
        }
        return new LaunchGrants(config.LAUNCH_GRANT_SECRET, config.LAUNCH_GRANT_TTL_SECONDS);
      },
      inject: [APP_CONFIG],
    },
    {
      provide: INSTANCE_HOST_DRIVER,
      useFactory: async (config: CatalogConfig, grants: LaunchGrants, signers: ManifestSigners): Promise<InstanceHostDriver | null> => {
        if (config.INSTANCE_HOST_DRIVER === 'external') return null;
        return new SimulatedHostDriver(await createObjectStore(objectStoreConfigFromEnv(config)), grants, signers);
      },
      inject: [APP_CONFIG, LaunchGrants, ManifestSigners],
    },
  ],
  exports: [InstancesService, LaunchCounts],
})
export class InstancesModule {}
