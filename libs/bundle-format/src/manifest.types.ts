/** The manifest of a bundle, as the library sees it (the XML form is in manifest.xml.ts). */

export const ARCHITECTURES = ['i386', 'x86_64', 'arm64'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export const VIRTUALIZATION_TYPES = ['hvm', 'paravirtual'] as const;
export type VirtualizationType = (typeof VIRTUALIZATION_TYPES)[number];

/** EC2's image types: a bootable machine image, or a kernel or ramdisk image. */
export const IMAGE_TYPES = ['machine', 'kernel', 'ramdisk'] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];

export const COMPRESSION_ALGORITHMS = ['zstd', 'gzip'] as const;
export type CompressionAlgorithm = (typeof COMPRESSION_ALGORITHMS)[number];

export const SIGNATURE_ALGORITHMS = ['Ed25519', 'RSA-PSS-SHA256'] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

export interface BlockDeviceMapping {
  /** `ami`, `root`, `swap`, `ephemeral0`, ... */
  virtual: string;
  /** `sda1`, `/dev/xvda`, ... */
  device: string;
}

export interface MachineConfiguration {
  architecture: Architecture;
  virtualizationType?: VirtualizationType;
  kernelId?: string;
  ramdiskId?: string;
  blockDeviceMapping: BlockDeviceMapping[];
  productCodes: string[];
}

/** What the seller says about the image. */
export interface ImageDescription {
  name: string;
  /** The image's own version (the seller's), not the format's. */
  version?: string;
  description?: string;
  /** The 12-digit account that owns the image. */
  user: string;
  type: ImageType;
}

/** What the bundler measured. */
export interface ImageMeasurements {
  /** SHA-256 of the original image, lowercase hex. */
  digest: string;
  /** Bytes of the original image. */
  size: number;
  /** Bytes of all parts together. */
  bundledSize: number;
}

export interface ManifestPart {
  index: number;
  filename: string;
  /** SHA-256 of the sealed part as stored, lowercase hex. */
  digest: string;
  /** Bytes of the sealed part (not written in the XML: it follows from part_size and bundled_size). */
  size: number;
}

export interface CompressionParameters {
  algorithm: CompressionAlgorithm;
  blockSize: number;
}

/** The data key wrapped (RSA-OAEP-SHA256) for one RSA public key. */
export interface KeyWrapping {
  algorithm: 'RSA-OAEP-SHA256';
  /** Fingerprint of the public key the data key was wrapped for (see keyFingerprint). */
  keyId: string;
  /** The wrapped data key, base64. */
  wrappedKey: string;
}

export interface EncryptionParameters {
  algorithm: 'AES-256-GCM';
  partSize: number;
  nonceScheme: 'salt32-index64be';
  /** 4 random bytes per bundle, lowercase hex: the first 4 bytes of every part's nonce. */
  salt: string;
  /** The data key wrapped for the platform (`wrapped_key`). */
  keyWrapping: KeyWrapping;
  /**
   * The data key wrapped for the image owner's own RSA key too (`owner_wrapped_key`), so that the
   * seller can decrypt and fully verify his bundle; optional (platform-made bundles leave it out).
   */
  ownerKeyWrapping?: KeyWrapping;
}

export interface ManifestSignature {
  algorithm: SignatureAlgorithm;
  /** Fingerprint of the signer's public key. */
  keyId: string;
  /** base64 */
  value: string;
}

export interface UnsignedManifest {
  formatVersion: 1;
  bundler: { name: string; version: string };
  machineConfiguration: MachineConfiguration;
  image: ImageDescription & ImageMeasurements;
  compression: CompressionParameters;
  encryption: EncryptionParameters;
  parts: ManifestPart[];
}

export interface Manifest extends UnsignedManifest {
  signature: ManifestSignature;
}
