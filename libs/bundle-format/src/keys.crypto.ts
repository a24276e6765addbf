import { Buffer } from 'node:buffer';
import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  privateDecrypt,
  publicEncrypt,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { DATA_KEY_BYTES, LIMITS } from './bundle-format.constants.js';
import { BundleErrorCode, BundleFormatError, describeError } from './bundle-format.exception.js';
import type { EncryptionParameters, KeyWrapping, SignatureAlgorithm } from './manifest.types.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** The platform's two key pairs: one wraps data keys (RSA-OAEP), one signs manifests. */
export interface PlatformKeys {
  wrapping: KeyPair;
  signing: KeyPair;
}

/** Fresh keys for tests and development: RSA 3072 for wrapping, Ed25519 (or RSA 3072) for signing. */
export async function generatePlatformKeys(
  options: { signing?: 'ed25519' | 'rsa' } = {},
): Promise<PlatformKeys> {
  const [wrapping, signing] = await Promise.all([
    generateKeyPairAsync('rsa', { modulusLength: 3072 }),
    options.signing === 'rsa'
      ? generateKeyPairAsync('rsa', { modulusLength: 3072 })
      : generateKeyPairAsync('ed25519'),
  ]);
  return { wrapping, signing };
}

/** A private key from PEM (PKCS#8, or PKCS#1/SEC1), optionally encrypted. */
export function loadPrivateKey(pem: string | Buffer, passphrase?: string): KeyObject {
  try {
    return createPrivateKey(
      passphrase === undefined ? { key: pem, format: 'pem' } : { key: pem, format: 'pem', passphrase },
    );
  } catch (error) {
    throw new BundleFormatError(
      BundleErrorCode.InvalidKey,
      `cannot read the private key: ${describeError(error)}`,
      { cause: error },
    );
  }
}

/** A public key from PEM (SPKI or PKCS#1); a private key's PEM gives its public half. */
export function loadPublicKey(pem: string | Buffer): KeyObject {
  try {
    return createPublicKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new BundleFormatError(
      BundleErrorCode.InvalidKey,
      `cannot read the public key: ${describeError(error)}`,
      { cause: error },
    );
  }
}

/** PEM text of a key: PKCS#8 for a private key, SPKI for a public one. */
export function exportKeyPem(key: KeyObject): string {
  return key.type === 'private'
    ? key.export({ format: 'pem', type: 'pkcs8' }).toString()
    : key.export({ format: 'pem', type: 'spki' }).toString();
}

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** `sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo of the (public half of the) key. */
export function keyFingerprint(key: KeyObject): string {
  const der = publicOf(key).export({ format: 'der', type: 'spki' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

function requireRsa(key: KeyObject, role: string): void {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < LIMITS.minRsaBits || bits > LIMITS.maxRsaBits) {
    throw new BundleFormatError(
      BundleErrorCode.InvalidKey,
      `${role} must be an RSA key of ${LIMITS.minRsaBits} to ${LIMITS.maxRsaBits} bits`,
    );
  }
}

/** Checks that a key can wrap data keys (an RSA public key, or a private key's public half). */
export function assertWrappingKey(key: KeyObject): void {
  if (key.type === 'secret')
    throw new BundleFormatError(BundleErrorCode.InvalidKey, 'the wrapping key must be an RSA public key');
  requireRsa(key, 'the wrapping key');
}

/** The signature algorithm a key signs with: Ed25519 keys sign Ed25519, RSA keys RSA-PSS-SHA256. */
export function signatureAlgorithmOf(key: KeyObject): SignatureAlgorithm {
  if (key.type === 'secret')
    throw new BundleFormatError(BundleErrorCode.InvalidKey, 'a signing key must be asymmetric');
  if (key.asymmetricKeyType === 'ed25519') return 'Ed25519';
  requireRsa(key, 'a signing key that is not Ed25519');
  return 'RSA-PSS-SHA256';
}

/** RSA-OAEP with SHA-256 (MGF1-SHA-256, empty label); the result is base64. */
export function wrapDataKey(dataKey: Buffer, publicKey: KeyObject): string {
  assertWrappingKey(publicKey);
  const wrapped = publicEncrypt(
    { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    dataKey,
  );
  return wrapped.toString('base64');
}

/**
 * The data key of a bundle, unwrapped with whichever of its wrapped keys was made for
 * `privateKey`: the platform's (`wrapped_key`) or the image owner's (`owner_wrapped_key`).
 */
export function unwrapBundleDataKey(encryption: EncryptionParameters, privateKey: KeyObject): Buffer {
  const owner = encryption.ownerKeyWrapping;
  if (owner && privateKey.type === 'private' && owner.keyId === keyFingerprint(privateKey))
    return unwrapDataKey(owner, privateKey);
  return unwrapDataKey(encryption.keyWrapping, privateKey, owner ? [owner.keyId] : []);
}

/** Unwraps the data key of a manifest, saying clearly when it was wrapped for another key. */
export function unwrapDataKey(
  wrapping: KeyWrapping,
  privateKey: KeyObject,
  alsoWrappedFor: string[] = [],
): Buffer {
  if (privateKey.type !== 'private')
    throw new BundleFormatError(BundleErrorCode.InvalidKey, 'unwrapping needs an RSA private key');
  requireRsa(privateKey, 'the unwrapping key');
  const ours = keyFingerprint(privateKey);
  if (wrapping.keyId !== ours) {
    throw new BundleFormatError(
      BundleErrorCode.KeyUnwrapFailed,
      `the data key was wrapped for key ${[wrapping.keyId, ...alsoWrappedFor].join(' and ')}, not for this key (${ours}); bundle again with the platform's current public key`,
    );
  }
  let key: Buffer;
  try {
    const wrapped = Buffer.from(wrapping.wrappedKey, 'base64');
    key = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      wrapped,
    );
  } catch (error) {
    throw new BundleFormatError(
      BundleErrorCode.KeyUnwrapFailed,
      'the wrapped data key cannot be unwrapped with this key',
      { cause: error },
    );
  }
  if (key.length !== DATA_KEY_BYTES) {
    throw new BundleFormatError(
      BundleErrorCode.KeyUnwrapFailed,
      `the unwrapped data key has ${key.length} bytes, not ${DATA_KEY_BYTES}`,
    );
  }
  return key;
}
