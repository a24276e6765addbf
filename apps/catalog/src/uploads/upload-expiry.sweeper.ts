import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import { BundleKeys, UploadKeys } from '@imagemart/contracts';
import { createObjectStore, objectStoreConfigFromEnv, type ObjectStore } from '@imagemart/object-store';
import type { CatalogUpload } from '@imagemart/database';
import type { CatalogConfig } from '../catalog.config.js';
import { UploadsRepository } from './uploads.repository.js';
import { UploadsService } from './uploads.service.js';

/**
 * Runs the upload and pending-image expiry (UploadsService.expireStale) every
 * UPLOAD_EXPIRY_SWEEP_INTERVAL_MS in this process. Every catalog replica runs one; the sweep takes
 * each row with SKIP LOCKED, so replicas share the work. It deletes an expired upload's stored
 * parts: a raw image's under `uploads/<uploadId>/`, a seller-made bundle's under
 * `bundles/<imageId>/` (where the gateway put them).
 */
@Injectable()
export class UploadExpirySweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(UploadExpirySweeper.name);
  private loop?: Promise<void>;
  private abort?: AbortController;
  private store?: Promise<ObjectStore>;

  constructor(
    private readonly uploads: UploadsService,
    @Inject(APP_CONFIG) private readonly config: CatalogConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  async onApplicationShutdown(): Promise<void> {
    this.abort?.abort();
    await this.loop;
    await (await this.store?.catch(() => undefined))?.close();
  }

  /** One sweep now. */
  sweep(now = new Date()): Promise<{ uploads: number; images: number }> {
    return this.uploads.expireStale((upload) => this.removeParts(upload), now);
  }

  private async removeParts(upload: CatalogUpload): Promise<void> {
    const store = await (this.store ??= createObjectStore(objectStoreConfigFromEnv(this.config)));
    const prefix = UploadsRepository.bundleOf(upload) ? BundleKeys.prefix(upload.imageId) : UploadKeys.prefix(upload.id);
    await store.deletePrefix(prefix);
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.config.UPLOAD_EXPIRY_SWEEP_INTERVAL_MS, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      try {
        const { uploads, images } = await this.sweep();
        if (uploads || images) this.logger.log(`Expiry: ${uploads} open uploads aborted, ${images} pending images failed`);
      } catch (err) {
        // The database is away: the next round tries again.
        this.logger.error(`Upload expiry sweep failed: ${(err as Error).message}`);
      }
    }
  }
}
