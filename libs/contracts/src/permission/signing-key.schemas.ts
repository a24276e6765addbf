import { z } from 'zod';
import { text } from '../common/text.schemas.js';
import { accountIdSchema, callerSchema } from './permission.schemas.js';

/**
 * Seller signing keys: the public keys an account signs the manifests of bundles made on its own
 * machines with. The id is the bundle format's key fingerprint: `sha256:` and the hex SHA-256 of
 * the key's DER SubjectPublicKeyInfo, the value a manifest's `signature/@key_id` carries.
 */
export const signingKeyIdSchema = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256: followed by 64 lowercase hex digits');

/** The signature algorithm a key signs with: Ed25519 keys sign Ed25519, RSA keys RSA-PSS-SHA256. */
export const SIGNING_KEY_ALGORITHMS = ['Ed25519', 'RSA-PSS-SHA256'] as const;
export type SigningKeyAlgorithm = (typeof SIGNING_KEY_ALGORITHMS)[number];

/** PEM text of a public key (SPKI `BEGIN PUBLIC KEY`, or PKCS#1 `BEGIN RSA PUBLIC KEY`). */
export const publicKeyPemSchema = z
  .string()
  .min(64)
  .max(16_384)
  .refine(
    (pem) => /-----BEGIN (RSA )?PUBLIC KEY-----/.test(pem),
    'must be the PEM of a public key (-----BEGIN PUBLIC KEY-----)',
  );

export const registerSigningKeyBodySchema = z.strictObject({
  publicKeyPem: publicKeyPemSchema,
  name: text().min(1).max(128).default('default'),
});
export type RegisterSigningKeyBody = z.infer<typeof registerSigningKeyBodySchema>;

export const registerSigningKeyRequestSchema = z.strictObject({
  caller: callerSchema,
  accountId: accountIdSchema,
  key: registerSigningKeyBodySchema,
});
export type RegisterSigningKeyRequest = z.infer<typeof registerSigningKeyRequestSchema>;

export const listSigningKeysRequestSchema = z.strictObject({
  caller: callerSchema,
  accountId: accountIdSchema,
});
export type ListSigningKeysRequest = z.infer<typeof listSigningKeysRequestSchema>;

/** get and revoke. */
export const signingKeyRequestSchema = z.strictObject({
  caller: callerSchema,
  accountId: accountIdSchema,
  keyId: signingKeyIdSchema,
});
export type SigningKeyRequest = z.infer<typeof signingKeyRequestSchema>;

/** Internal get: no caller, only services send it. */
export const signingKeyInternalGetRequestSchema = z.strictObject({
  accountId: accountIdSchema,
  keyId: signingKeyIdSchema,
});
export type SigningKeyInternalGetRequest = z.infer<typeof signingKeyInternalGetRequestSchema>;

export interface SigningKeyView {
  /** The key's fingerprint: what manifests name it by. */
  keyId: string;
  accountId: string;
  name: string;
  algorithm: SigningKeyAlgorithm;
  /** `rsa` or `ed25519`, with the RSA modulus length. */
  keyType: 'rsa' | 'ed25519';
  keyBits: number | null;
  /** SPKI PEM of the public key. */
  publicKeyPem: string;
  createdAt: string;
  revokedAt: string | null;
}
