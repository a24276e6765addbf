import { createHash, randomBytes } from 'node:crypto';
import { requestContext } from '@imagemart/observability';

const hex17 = (bytes: Buffer) => bytes.toString('hex').slice(0, 17);

/**
 * A new id `<prefix>-` + 17 hex digits. Inside a request the id is derived from the request id
 * and what is being created, so a request that runs twice (a reclaimed RPC) creates the same
 * record and the second run finds the first one's; outside a request it is random.
 */
export function newResourceId(prefix: 'ami' | 'lst', ...parts: string[]): string {
  const requestId = requestContext.requestId();
  if (!requestId) return `${prefix}-${hex17(randomBytes(9))}`;
  return `${prefix}-${hex17(createHash('sha256').update([prefix, requestId, ...parts].join('\u0000')).digest())}`;
}

export function randomResourceId(prefix: 'ami' | 'lst'): string {
  return `${prefix}-${hex17(randomBytes(9))}`;
}

const ALNUM = '0123456789abcdefghijklmnopqrstuvwxyz';

/** A marketplace product code: `prod-` + 20 lowercase letters or digits, uniformly drawn. */
export function newProductCode(): string {
  let out = '';
  while (out.length < 20) {
    for (const byte of randomBytes(32)) {
      // 252 = 7 × 36: drop the bytes above it so that every character is equally likely.
      if (byte < 252 && out.length < 20) out += ALNUM[byte % 36];
    }
  }
  return `prod-${out}`;
}
