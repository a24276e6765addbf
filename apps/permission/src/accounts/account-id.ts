import { randomInt } from 'node:crypto';

/** A new 12-digit account id, uniformly random (leading zeros allowed, as in AWS). */
export function generateAccountId(): string {
  return String(randomInt(0, 1e12)).padStart(12, '0');
}
