import { createHash, randomBytes } from 'node:crypto';

/**
 * An API key is `imk_` and 43 base64url characters (32 random bytes). It is made where it is
 * shown (the gateway) and never crosses the message bus: the permission service is given and
 * stores only its SHA-256 and its first characters, and the gateway authenticates a request by
 * the key's hash. The key has 256 bits of entropy, so a fast hash is as safe as a slow one here,
 * and it lets a key be found by an index lookup on its hash.
 */
export function generateApiKey(): { key: string; hash: string; prefix: string } {
  const key = `imk_${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashApiKey(key), prefix: apiKeyPrefix(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** What lists show of a key so that a person can tell keys apart. */
export function apiKeyPrefix(key: string): string {
  return key.slice(0, 12);
}
