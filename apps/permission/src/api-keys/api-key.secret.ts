import { createHash, randomBytes } from 'node:crypto';

/**
 * An API key is `imk_` and 43 base64url characters (32 random bytes). Only its SHA-256 is
 * stored: the key has 256 bits of entropy, so a fast hash is as safe as a slow one here, and it
 * lets a key be found by an index lookup on its hash.
 */
export function generateApiKey(): { key: string; hash: string; prefix: string } {
  const key = `imk_${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashApiKey(key), prefix: key.slice(0, 12) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function generateApiKeyId(): string {
  return `key-${randomBytes(8).toString('hex')}`;
}

/** A key an operator supplies (the bootstrap admin key) must be long enough to be unguessable. */
export const MIN_SUPPLIED_KEY_LENGTH = 32;
