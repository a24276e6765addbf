import type { Redis } from 'ioredis';
import { KEY_WRAPPING_ALGORITHM, exportKeyPem, signatureAlgorithmOf } from '@imagemart/bundle-format';
import { platformKeysKey, type PlatformKeysView } from '@imagemart/contracts';
import type { LoadedPlatformKeys } from './platform-keys.js';

/** The public halves of the platform keys, as `GET /v1/platform/keys` answers them. */
export function platformKeysView(keys: LoadedPlatformKeys, now = new Date()): PlatformKeysView {
  return {
    wrapping: {
      keyId: keys.wrappingKeyId,
      algorithm: KEY_WRAPPING_ALGORITHM,
      publicKeyPem: exportKeyPem(keys.wrapping.publicKey),
    },
    signing: {
      keyId: keys.signingKeyId,
      algorithm: signatureAlgorithmOf(keys.signing.publicKey),
      publicKeyPem: exportKeyPem(keys.signing.publicKey),
    },
    publishedAt: now.toISOString(),
  };
}

/**
 * Publishes the public keys in Redis (no expiry), where the gateway reads them. The worker is the
 * only process that holds the private keys, so it is the one that can say which public keys are
 * current; every replica holds the same keys and writes the same value.
 */
export async function publishPlatformKeys(
  redis: Redis,
  prefix: string,
  keys: LoadedPlatformKeys,
): Promise<void> {
  await redis.set(platformKeysKey(prefix), JSON.stringify(platformKeysView(keys)));
}
