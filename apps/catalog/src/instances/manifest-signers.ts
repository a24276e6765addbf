import type { KeyObject } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { keyFingerprint, loadPublicKey } from '@imagemart/bundle-format';
import { APP_CONFIG } from '@imagemart/config';
import { platformKeysKey, type PlatformKeysView } from '@imagemart/contracts';
import type { CatalogConfig } from '../catalog.config.js';
import { UploadsRepository } from '../uploads/uploads.repository.js';
import { HostFailureCode, HostLaunchFailure } from './instance-host.driver.js';

/** Where a host finds the public key a manifest was verified with, by its key id. */
export interface ManifestSignerKeys {
  /**
   * The public key `keyId` names for `imageId`: the platform's signing key, or the seller's
   * registered key the image's bundle was uploaded with. A key id that is neither is
   * HostLaunchFailure (the launch can never succeed); not knowing the platform's key yet is an
   * ordinary error (retried).
   */
  keyFor(imageId: string, keyId: string): Promise<KeyObject>;
}

interface PlatformKey {
  keyId: string;
  key: KeyObject;
}

/**
 * The catalog's manifest keys. It holds public keys only: the platform's signing key from
 * PLATFORM_SIGNING_PUBLIC_KEY_PEM, else as the bundler-worker (the only holder of the private
 * keys) publishes it in Redis, read again after PLATFORM_KEYS_CACHE_TTL_MS or when a manifest
 * names another key (the platform's key may have changed); a seller's key from the upload that
 * brought the image's bundle (the gateway checked it was the seller's registered key, and the
 * bundler verified the manifest with it).
 */
@Injectable()
export class ManifestSigners implements ManifestSignerKeys, OnApplicationShutdown {
  private readonly logger = new Logger(ManifestSigners.name);
  private readonly configured?: PlatformKey;
  private published?: { key: PlatformKey; expiresAt: number };
  private redis?: Redis;

  constructor(
    @Inject(APP_CONFIG) private readonly config: CatalogConfig,
    private readonly uploads: UploadsRepository,
  ) {
    const pem = config.PLATFORM_SIGNING_PUBLIC_KEY_PEM;
    if (pem) {
      const key = loadPublicKey(pem.includes('\\n') ? pem.replace(/\\n/g, '\n') : pem);
      this.configured = { keyId: keyFingerprint(key), key };
    }
  }

  onApplicationShutdown(): void {
    this.redis?.disconnect();
  }

  async keyFor(imageId: string, keyId: string): Promise<KeyObject> {
    let platform = await this.platformKey(false);
    if (platform?.keyId === keyId) return platform.key;
    const bundle = await this.uploads.findByImageId(imageId).then((u) => (u ? UploadsRepository.bundleOf(u) : null));
    if (bundle?.signerKeyId === keyId) {
      const key = loadPublicKey(bundle.signerPublicKeyPem);
      if (keyFingerprint(key) === keyId) return key;
    }
    // Not the platform key we hold: it may have been published anew since.
    platform = await this.platformKey(true);
    if (platform?.keyId === keyId) return platform.key;
    if (!platform) {
      throw new Error('the platform signing key is not known yet: set PLATFORM_SIGNING_PUBLIC_KEY_PEM or start a bundler-worker, which publishes it');
    }
    throw new HostLaunchFailure(
      HostFailureCode.bundle,
      `The image was verified with the key ${keyId}, which is neither the platform's signing key nor the seller's key its bundle was uploaded with.`,
    );
  }

  /** The platform's public signing key, or null when none is configured or published yet. */
  private async platformKey(fresh: boolean): Promise<PlatformKey | null> {
    if (this.configured) return this.configured;
    const now = Date.now();
    if (!fresh && this.published && this.published.expiresAt > now) return this.published.key;
    this.redis ??= this.connect();
    const json = await this.redis.get(platformKeysKey(this.config.REDIS_PREFIX));
    if (json === null) return null;
    const view = JSON.parse(json) as PlatformKeysView;
    const key = loadPublicKey(view.signing.publicKeyPem);
    const keyId = keyFingerprint(key);
    if (keyId !== view.signing.keyId) {
      throw new Error(`the published platform signing key has the fingerprint ${keyId}, not the ${view.signing.keyId} it is published as`);
    }
    this.published = { key: { keyId, key }, expiresAt: now + this.config.PLATFORM_KEYS_CACHE_TTL_MS };
    return this.published.key;
  }

  private connect(): Redis {
    const redis = new Redis(this.config.REDIS_URL, { maxRetriesPerRequest: 1 });
    redis.on('error', (err: Error) => this.logger.debug(`Redis for the platform keys: ${err.message}`));
    return redis;
  }
}
