import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Logger } from '@nestjs/common';
import { isBundleFormatError, parseManifest, verifyManifestSignature } from '@imagemart/bundle-format';
import { BundleKeys } from '@imagemart/contracts';
import { isObjectStoreError, ObjectStoreErrorCode, type ObjectStore } from '@imagemart/object-store';
import { HostFailureCode, HostLaunchFailure, type HostedInstance, type InstanceHostDriver } from './instance-host.driver.js';
import { LaunchGrantError, type LaunchGrants } from './launch-grant.js';
import type { ManifestSignerKeys } from './manifest-signers.js';

/**
 * A host without a hypervisor: it checks the launch grant, fetches the manifest through it and
 * refuses one whose SHA-256 is not the digest pinned when the image was verified (and named in
 * the grant), checks its signature against the key the image was verified with (the platform's
 * or the seller's; the manifest must name that key, and an unknown key id is refused), and each
 * part's size and SHA-256 against the manifest, and then says the instance runs. It does not
 * decrypt: the bundler proved the whole image before the image became available.
 *
 * Like a real host it remembers which manifest (by SHA-256) it verified for an image, so the next
 * launch of the image reads the manifest only, not every part again.
 */
export class SimulatedHostDriver implements InstanceHostDriver {
  private readonly logger = new Logger(SimulatedHostDriver.name);
  private readonly verified = new Map<string, string>();

  constructor(
    private readonly store: ObjectStore,
    private readonly grants: LaunchGrants,
    private readonly keys: ManifestSignerKeys,
  ) {}

  async start(instance: HostedInstance, grant: string): Promise<void> {
    this.checkGrant(instance, grant);
    const xml = await this.fetch(instance.manifestLocation);
    const digest = createHash('sha256').update(xml).digest('hex');
    // The manifest verified when the image became available, and no other (one replaced in the
    // store since is refused, whatever it says and whoever signed it).
    if (digest !== instance.manifestDigest) {
      throw new HostLaunchFailure(
        HostFailureCode.manifestChanged,
        `The manifest in the object store (SHA-256 ${digest}) is not the one verified for this image (${instance.manifestDigest}).`,
      );
    }
    // Verified before, this manifest with this key: its parts need not be read again.
    const verifiedAs = `${digest} ${instance.signerKeyId}`;
    if (this.verified.get(instance.imageId) === verifiedAs) return;

    let manifest;
    try {
      manifest = parseManifest(xml);
    } catch (err) {
      if (isBundleFormatError(err)) throw new HostLaunchFailure(HostFailureCode.bundle, `The manifest does not verify: ${err.message}`, { cause: err });
      throw err;
    }
    if (manifest.signature.keyId !== instance.signerKeyId) {
      throw new HostLaunchFailure(
        HostFailureCode.bundle,
        `The manifest names the signing key ${manifest.signature.keyId}, not ${instance.signerKeyId}, which the image was verified with.`,
      );
    }
    // Always checked, against the key recorded at verification: the platform's or the seller's.
    const key = await this.keys.keyFor(instance.imageId, instance.signerKeyId);
    try {
      verifyManifestSignature(manifest, key);
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
    this.verified.set(instance.imageId, verifiedAs);
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
        claims.manifestLocation !== instance.manifestLocation ||
        claims.manifestDigest !== instance.manifestDigest
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
}
