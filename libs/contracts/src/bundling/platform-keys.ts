/**
 * The platform's public keys, as the bundler-worker (the only holder of the private keys)
 * publishes them in Redis at start, and as `GET /v1/platform/keys` answers them. A seller wraps a
 * bundle's data key for `wrapping` (RSA-OAEP-SHA256); the platform's own manifests are signed
 * with `signing`.
 */
export interface PlatformPublicKey {
  /** `sha256:` + hex SHA-256 of the key's DER SubjectPublicKeyInfo. */
  keyId: string;
  /** `RSA-OAEP-SHA256` for the wrapping key; `Ed25519` or `RSA-PSS-SHA256` for the signing key. */
  algorithm: string;
  /** SPKI PEM. */
  publicKeyPem: string;
}

export interface PlatformKeysView {
  wrapping: PlatformPublicKey;
  signing: PlatformPublicKey;
  /** When a worker last published them (each worker does at start). */
  publishedAt: string;
}

/**
 * The Redis key holding the JSON `PlatformKeysView`. Every worker writes it at start (all replicas
 * hold the same keys); it has no expiry, so the answer survives a worker restart.
 */
export const platformKeysKey = (prefix: string) => `${prefix}:bundling:platform-keys`;
