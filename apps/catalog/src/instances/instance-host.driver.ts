/**
 * What an instance host does with a launch. The catalog calls `start` for a pending instance with
 * a fresh launch grant, and marks the instance running when it resolves; it calls `stop` for a
 * shutting-down one, and marks it terminated when that resolves. Both run as jobs of the instance
 * host queue, so they are retried with backoff; they must be idempotent (a job may run twice).
 *
 * The default driver simulates a host (simulated-host.driver.ts); a real host agent (libvirt, QEMU)
 * implements the same interface, fetching the bundle through the grant and booting from it.
 */
export interface InstanceHostDriver {
  start(instance: HostedInstance, grant: string): Promise<void>;
  stop(instance: HostedInstance): Promise<void>;
  /** Releases what the driver holds (connections), when the process stops. */
  close?(): Promise<void>;
}

export interface HostedInstance {
  instanceId: string;
  imageId: string;
  instanceType: string;
  /** Object key of the image's signed manifest. */
  manifestLocation: string;
  /** SHA-256 (hex) of the manifest as verified when the image became available; the grant pins it too. */
  manifestDigest: string;
  /** The key id (fingerprint) the manifest's signature verified with. */
  signerKeyId: string;
}

/** State reason codes of a launch the host refuses. */
export const HostFailureCode = {
  grant: 'Server.LaunchGrantRefused',
  bundle: 'Server.InvalidBundle',
  /** The manifest in the store is not the one verified when the image became available. */
  manifestChanged: 'Server.ManifestDigestMismatch',
} as const;

/** Injection token of the process's host driver. */
export const INSTANCE_HOST_DRIVER = Symbol.for('imagemart.catalog.instance-host-driver');

/**
 * A launch that can never succeed (a bundle that is missing or does not verify, a refused grant):
 * the instance is terminated at once with this code and message as its state reason, not retried.
 */
export class HostLaunchFailure extends Error {
  override readonly name = 'HostLaunchFailure';
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
