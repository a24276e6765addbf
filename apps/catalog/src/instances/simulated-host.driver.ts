import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Logger } from '@nestjs/common';
import { isBundleFormatError, keyFingerprint, loadPrivateKey, loadPublicKey, parseManifest, verifyManifestSignature } from '@imagemart/bundle-format';
import { BundleKeys } from '@imagemart/contracts';
import { isObjectStoreError, ObjectStoreErrorCode, type ObjectStore } from '@imagemart/object-store';
import { HostLaunchFailure, type HostedInstance, type InstanceHostDriver } from './instance-host.driver.js';
import { LaunchGrantError, type LaunchGrants } from './launch-grant.js';

export interface SigningKeySource {
  PLATFORM_SIGNING_PUBLIC_KEY_PEM?: string | undefined;
  PLATFORM_SIGNING_KEY_PEM?: string | undefined;
  PLATFORM_KEY_PASSPHRASE?: string | undefined;
  PLATFORM_KEY_DIR: string;
}

/** State reason codes of a launch the simulated host refuses. */
export const HostFailureCode = {
  grant: 'Server.LaunchGrantRefused',
  bundle: 'Server.InvalidBundle',
} as const;

/**
 * A host without a hypervisor: it checks the launch grant, fetches the manifest and every part
 * from the object store through it, checks the manifest's signature (when the platform signed it)
 * and each part's size and SHA-256 against the manifest, and then says the instance runs. It does
 * not decrypt: the bundler proved the whole image before the image became available.
 *
 * Like a real host it remembers which manifest (by SHA-256) it verified for an image, so the next
 * launch of the image reads the manifest only, not every part again.
 */
export class SimulatedHostDriver implements InstanceHostDriver {
  private readonly logger = new Logger(SimulatedHostDriver.name);
  private readonly verified = new Map<string, string>();
  private publicKey?: Promise<KeyObject | null>;

  constructor(
    private readonly store: ObjectStore,
    private readonly grants: LaunchGrants,
    private readonly keys: SigningKeySource,
  ) {}

  async start(instance: HostedInstance, grant: string): Promise<void> {
    this.checkGrant(instance, grant);
    const xml = await this.fetch(instance.manifestLocation);
    const digest = createHash('sha256').update(xml).digest('hex');
    if (this.verified.get(instance.imageId) === digest) return;

    let manifest;
    try {
      manifest = parseManifest(xml);
      const key = await this.platformKey();
      // A seller-signed bundle carries the seller's key id; the bundler checked that signature.
      if (key && manifest.signature.keyId === keyFingerprint(key)) verifyManifestSignature(manifest, key);
    } catch (err) {
      if (isBundleFormatError(err)) throw new HostLaunchFailure(HostFailureCode.bundle, `The manifest does not verify: ${err.message}`, { cause: err });
      throw err;
    }
    for (const part of manifest.parts) {
      const body = await this.fetchStream(BundleKeys.part(instance.manifestLocation, part.filename));
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
      }
      if (hash.digest('hex') !== part.digest || size !== part.size) {
        throw new HostLaunchFailure(HostFailureCode.bundle, `Part ${part.index} of the bundle does not match its manifest.`);
      }
    }
    this.verified.set(instance.imageId, digest);
    this.logger.log({ msg: 'bundle verified on the host', imageId: instance.imageId, parts: manifest.parts.length });
  }

  stop(): Promise<void> {
    // Nothing runs here to stop.
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private checkGrant(instance: HostedInstance, grant: string): void {
    try {
      const claims = this.grants.verify(grant);
      if (
        claims.instanceId !== instance.instanceId ||
        claims.imageId !== instance.imageId ||
        claims.manifestLocation !== instance.manifestLocation
      ) {
        throw new LaunchGrantError('the launch grant names another instance or bundle');
      }
    } catch (err) {
      if (err instanceof LaunchGrantError) throw new HostLaunchFailure(HostFailureCode.grant, `The launch grant was refused: ${err.message}.`, { cause: err });
      throw err;
    }
  }

  private async fetch(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of (await this.fetchStream(key)) as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /** A missing object fails the launch for good; any other store error is retried. */
  private async fetchStream(key: string): Promise<Readable> {
    try {
      return await this.store.get(key);
    } catch (err) {
      if (isObjectStoreError(err, ObjectStoreErrorCode.ObjectNotFound)) {
        throw new HostLaunchFailure(HostFailureCode.bundle, `The bundle object ${key} is not in the object store.`, { cause: err });
      }
      throw err;
    }
  }

  /** The platform's public signing key, or null when this process has none configured or on disk yet. */
  private platformKey(): Promise<KeyObject | null> {
    const loaded = (this.publicKey ??= this.loadPlatformKey());
    // Not there yet (the bundler-worker writes development keys on its first start): look again next time.
    void loaded.then((key) => {
      if (key === null && this.publicKey === loaded) this.publicKey = undefined;
    });
    return loaded;
  }

  private async loadPlatformKey(): Promise<KeyObject | null> {
    const k = this.keys;
    const unescape = (pem: string) => (pem.includes('\\n') ? pem.replace(/\\n/g, '\n') : pem);
    if (k.PLATFORM_SIGNING_PUBLIC_KEY_PEM) return loadPublicKey(unescape(k.PLATFORM_SIGNING_PUBLIC_KEY_PEM));
    if (k.PLATFORM_SIGNING_KEY_PEM) return createPublicKey(loadPrivateKey(unescape(k.PLATFORM_SIGNING_KEY_PEM), k.PLATFORM_KEY_PASSPHRASE));
    try {
      const pem = await readFile(path.resolve(k.PLATFORM_KEY_DIR, 'signing-key.pem'), 'utf8');
      return createPublicKey(loadPrivateKey(pem, k.PLATFORM_KEY_PASSPHRASE));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }
}
