import { Injectable } from '@nestjs/common';
import {
  isBundleFormatError,
  loadPublicKey,
  parseManifest,
  verifyManifestSignature,
  type Manifest,
} from '@imagemart/bundle-format';
import {
  ErrorCode,
  PermissionPattern,
  createUploadBodySchema,
  type Caller,
  type CreateBundleUploadBody,
  type CreateUploadBody,
  type SigningKeyView,
  type UploadBundle,
} from '@imagemart/contracts';
import { PlatformKeysReader } from '../platform-keys/platform-keys.reader.js';
import { ApiProblem } from '../problem/api-problem.js';
import { ServiceClients } from '../rpc/service-clients.js';

const invalidManifest = (detail: string, errors?: { path: string; message: string }[]) =>
  new ApiProblem(ErrorCode.InvalidManifest, detail, errors);

/** A manifest device name as the catalog writes it: `sda1` is `/dev/sda1`. */
const deviceName = (device: string) =>
  device.startsWith('/') || device.startsWith('xvd') ? device : `/dev/${device}`;

/** The registration of the image a manifest describes (what `POST /v1/images` takes). */
function registrationOf(m: Manifest, body: CreateBundleUploadBody): Record<string, unknown> {
  const mc = m.machineConfiguration;
  const root = mc.blockDeviceMapping.find((b) => b.virtual === 'root');
  return {
    name: m.image.name,
    ...(m.image.version ? { version: m.image.version } : {}),
    ...(m.image.description ? { description: m.image.description } : {}),
    architecture: mc.architecture,
    virtualizationType: mc.virtualizationType ?? (mc.kernelId ? 'paravirtual' : 'hvm'),
    ...(mc.kernelId ? { kernelId: mc.kernelId } : {}),
    ...(mc.ramdiskId ? { ramdiskId: mc.ramdiskId } : {}),
    ...(root ? { rootDeviceName: deviceName(root.device) } : {}),
    blockDeviceMappings: mc.blockDeviceMapping
      .filter((b) => /^ephemeral\d+$/.test(b.virtual))
      .map((b) => ({ deviceName: deviceName(b.device), virtualName: b.virtual })),
    productCodes: mc.productCodes,
    platform: body.platform,
    ...(body.listingId ? { listingId: body.listingId } : {}),
    size: m.image.bundledSize,
    sha256: m.image.digest,
    compression: m.compression.algorithm,
  };
}

/**
 * Checks a bundle made on a seller's machine before its upload opens: the manifest reads (the
 * format's XML profile and schema), its data key is wrapped for the platform's current key, it is
 * signed by an active signing key of the uploading account, and its user is that account. What
 * it answers is what the catalog keeps with the upload; the verify job later proves every part.
 */
@Injectable()
export class SellerBundles {
  constructor(
    private readonly services: ServiceClients,
    private readonly platformKeys: PlatformKeysReader,
  ) {}

  async check(
    caller: Caller,
    body: CreateBundleUploadBody,
  ): Promise<{ upload: CreateUploadBody; bundle: UploadBundle }> {
    let manifest: Manifest;
    try {
      manifest = parseManifest(body.manifest);
    } catch (err) {
      if (isBundleFormatError(err)) throw invalidManifest(`The manifest cannot be read: ${err.message}`);
      throw err;
    }
    if (manifest.image.type !== 'machine') {
      throw invalidManifest(
        `The manifest describes a ${manifest.image.type} image; only machine images are published.`,
      );
    }

    const signer = await this.signerOf(caller, manifest.signature.keyId);
    try {
      verifyManifestSignature(manifest, loadPublicKey(signer.publicKeyPem));
    } catch (err) {
      if (isBundleFormatError(err))
        throw new ApiProblem(
          ErrorCode.InvalidManifestSignature,
          `The manifest signature is not valid: ${err.message}`,
        );
      throw err;
    }
    if (manifest.image.user !== caller.accountId) {
      throw new ApiProblem(
        ErrorCode.InvalidManifestUser,
        `The manifest is made out to account ${manifest.image.user}, not to yours (${caller.accountId}): bundle the image again with --user ${caller.accountId}.`,
      );
    }
    // Checked again by the verify job; here so a seller learns at once, not after uploading gigabytes.
    const platform = await this.platformKeys.find();
    const wrappedFor = manifest.encryption.keyWrapping.keyId;
    if (platform && wrappedFor !== platform.wrapping.keyId) {
      throw invalidManifest(
        `The data key is wrapped for key ${wrappedFor}, not for the platform's key ${platform.wrapping.keyId}: bundle again with the key of GET /v1/platform/keys.`,
      );
    }

    const upload = createUploadBodySchema.safeParse(registrationOf(manifest, body));
    if (!upload.success) {
      const errors = upload.error.issues.map((i) => ({
        path: `manifest.${i.path.map(String).join('.')}`,
        message: i.message,
      }));
      throw invalidManifest(
        `The manifest's image cannot be registered: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
        errors,
      );
    }
    return {
      upload: upload.data,
      bundle: {
        manifestXml: body.manifest,
        signerKeyId: signer.keyId,
        signerPublicKeyPem: signer.publicKeyPem,
        partSize: manifest.encryption.partSize,
        partFilenames: manifest.parts.map((p) => p.filename),
        imageSize: manifest.image.size,
      },
    };
  }

  /** The caller's active signing key the manifest names; an unknown or revoked key is a 400. */
  private async signerOf(caller: Caller, keyId: string): Promise<SigningKeyView> {
    let key: SigningKeyView;
    try {
      key = await this.services.call<SigningKeyView>('permission', PermissionPattern.signingKeyGet, {
        caller,
        accountId: caller.accountId,
        keyId,
      });
    } catch (err) {
      if (err instanceof ApiProblem && err.code === ErrorCode.InvalidKeyPairNotFound) {
        throw new ApiProblem(
          ErrorCode.InvalidManifestSignature,
          `The manifest is signed by key ${keyId}, which is not a signing key of your account: register its public key first (POST /v1/accounts/${caller.accountId}/signing-keys).`,
        );
      }
      throw err;
    }
    if (key.revokedAt) {
      throw new ApiProblem(
        ErrorCode.InvalidManifestSignature,
        `The manifest is signed by key ${keyId}, which was revoked on ${key.revokedAt}.`,
      );
    }
    return key;
  }
}
