import { Buffer } from 'node:buffer';
import { constants, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { BundleErrorCode, BundleFormatError } from './bundle-format.exception.js';
import { keyFingerprint, signatureAlgorithmOf } from './keys.crypto.js';
import { FieldCheck, checkManifest } from './manifest.schema.js';
import type { Manifest, ManifestSignature, SignatureAlgorithm, UnsignedManifest } from './manifest.types.js';

/**
 * The signature covers a canonical byte string, not the XML: UTF-8 text, a header line, then
 * one `key=value` line per field in a fixed order, every line ending in LF; an absent optional
 * field has an empty value. Values hold no control characters (the schema rejects them), so no
 * escaping is needed and the string is unambiguous. Every field of the manifest except the
 * signature value is covered, parts by index, size and digest in order: a changed, missing,
 * extra or reordered part changes the string.
 */
export const SIGNATURE_INPUT_HEADER = 'imagemart-bundle-manifest-signature-v1';

type Signer = Pick<ManifestSignature, 'algorithm' | 'keyId'>;

export function signatureInput(m: UnsignedManifest, signer: Signer): string {
  const mc = m.machineConfiguration;
  const image = m.image;
  const enc = m.encryption;
  const fields: [string, string | number | undefined][] = [
    ['format_version', m.formatVersion],
    ['bundler.name', m.bundler.name],
    ['bundler.version', m.bundler.version],
    ['machine.architecture', mc.architecture],
    ['machine.virtualization_type', mc.virtualizationType],
    ['machine.kernel_id', mc.kernelId],
    ['machine.ramdisk_id', mc.ramdiskId],
    ['machine.block_device_mapping.count', mc.blockDeviceMapping.length],
    ...mc.blockDeviceMapping.map((b, i): [string, string] => [
      `machine.block_device_mapping.${i}`,
      `${b.virtual} ${b.device}`,
    ]),
    ['machine.product_codes.count', mc.productCodes.length],
    ...mc.productCodes.map((code, i): [string, string] => [`machine.product_codes.${i}`, code]),
    ['image.name', image.name],
    ['image.version', image.version],
    ['image.description', image.description],
    ['image.user', image.user],
    ['image.type', image.type],
    ['image.digest', image.digest],
    ['image.size', image.size],
    ['image.bundled_size', image.bundledSize],
    ['compression.algorithm', m.compression.algorithm],
    ['compression.block_size', m.compression.blockSize],
    ['encryption.algorithm', enc.algorithm],
    ['encryption.part_size', enc.partSize],
    ['encryption.nonce_scheme', enc.nonceScheme],
    ['encryption.salt', enc.salt],
    ['encryption.key_wrapping.algorithm', enc.keyWrapping.algorithm],
    ['encryption.key_wrapping.key_id', enc.keyWrapping.keyId],
    ['encryption.key_wrapping.wrapped_key', enc.keyWrapping.wrappedKey],
    // Only when the manifest has an owner_wrapped_key: a manifest without one signs as before.
    ...(enc.ownerKeyWrapping
      ? ([
          ['encryption.owner_key_wrapping.algorithm', enc.ownerKeyWrapping.algorithm],
          ['encryption.owner_key_wrapping.key_id', enc.ownerKeyWrapping.keyId],
          ['encryption.owner_key_wrapping.wrapped_key', enc.ownerKeyWrapping.wrappedKey],
        ] as [string, string][])
      : []),
    ['signature.algorithm', signer.algorithm],
    ['signature.key_id', signer.keyId],
    ['parts.count', m.parts.length],
    ...m.parts.map((p): [string, string] => [`parts.${p.index}`, `${p.size} ${p.digest} ${p.filename}`]),
  ];
  return `${SIGNATURE_INPUT_HEADER}\n${fields.map(([key, value]) => `${key}=${value ?? ''}\n`).join('')}`;
}

function signBytes(algorithm: SignatureAlgorithm, data: Buffer, key: KeyObject): Buffer {
  return algorithm === 'Ed25519'
    ? sign(null, data, key)
    : sign('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
}

function verifyBytes(
  algorithm: SignatureAlgorithm,
  data: Buffer,
  key: KeyObject,
  signature: Buffer,
): boolean {
  return algorithm === 'Ed25519'
    ? verify(null, data, key, signature)
    : verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature);
}

/**
 * Signs a manifest with an Ed25519 key (Ed25519) or an RSA key (RSA-PSS, SHA-256, MGF1-SHA-256,
 * 32-byte salt): the key's type picks the algorithm.
 */
export function signManifest(manifest: UnsignedManifest, privateKey: KeyObject): Manifest {
  if (privateKey.type !== 'private')
    throw new BundleFormatError(BundleErrorCode.InvalidKey, 'signing needs a private key');
  const { signature: _ignored, ...unsigned } = manifest as Partial<Manifest> & UnsignedManifest;
  checkManifest(new FieldCheck(BundleErrorCode.InvalidParameter), unsigned);
  const signer: Signer = { algorithm: signatureAlgorithmOf(privateKey), keyId: keyFingerprint(privateKey) };
  const value = signBytes(
    signer.algorithm,
    Buffer.from(signatureInput(unsigned, signer), 'utf8'),
    privateKey,
  );
  return { ...unsigned, signature: { ...signer, value: value.toString('base64') } };
}

/** Throws SignatureInvalid unless `publicKey` signed exactly this manifest. */
export function verifyManifestSignature(manifest: Manifest, publicKey: KeyObject): void {
  const key = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
  const invalid = (message: string) => new BundleFormatError(BundleErrorCode.SignatureInvalid, message);
  let algorithm: SignatureAlgorithm;
  try {
    algorithm = signatureAlgorithmOf(key);
  } catch (error) {
    throw invalid(`the signer's key cannot verify manifests: ${(error as Error).message}`);
  }
  const { signature } = manifest;
  if (signature.algorithm !== algorithm) {
    throw invalid(
      `the manifest is signed with ${signature.algorithm}, but the expected signer's key is an ${algorithm} key`,
    );
  }
  const expected = keyFingerprint(key);
  if (signature.keyId !== expected) {
    throw invalid(`the manifest is signed by key ${signature.keyId}, not by the expected key ${expected}`);
  }
  // The signature's length is fixed by the key: 64 bytes for Ed25519, the modulus for RSA-PSS.
  const value = Buffer.from(signature.value, 'base64');
  const length = algorithm === 'Ed25519' ? 64 : Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (value.length !== length) {
    throw invalid(
      `the signature is ${value.length} bytes; a signature by the expected key is ${length} bytes`,
    );
  }
  const data = Buffer.from(signatureInput(manifest, signature), 'utf8');
  let valid: boolean;
  try {
    valid = verifyBytes(algorithm, data, key, value);
  } catch {
    valid = false; // e.g. a signature of the wrong length for the key
  }
  if (!valid) {
    throw invalid(
      'the manifest signature does not match its contents: the manifest was changed after it was signed',
    );
  }
}
