import { randomBytes } from 'node:crypto';

// Keys themselves are made by the gateway, where they are shown: see `generateApiKey` in libs/contracts.
export { generateApiKey, hashApiKey } from '@imagemart/contracts';

export function generateApiKeyId(): string {
  return `key-${randomBytes(8).toString('hex')}`;
}

/** A key an operator supplies (the bootstrap admin key) must be long enough to be unguessable. */
export const MIN_SUPPLIED_KEY_LENGTH = 32;
