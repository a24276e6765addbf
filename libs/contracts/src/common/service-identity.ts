import { Buffer } from 'node:buffer';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventQueue } from '../events/domain-events.js';
import { isSigningProcess, SIGNING_PROCESSES, type SigningProcess } from './callers.js';

/**
 * Service identities (docs/messaging.md, "Signed callers"). Assertions are HMAC-SHA256 under
 * pairwise keys: each process holds one secret of its own; the key a sender signs with for a
 * receiver is derived from the receiver's secret and the sender's name,
 * `HMAC(secret_receiver, "imagemart caller key v1|" + sender + "|" + receiver)`. A receiver derives
 * every sender's key from its own secret (no configuration of others' keys); a sender is given the
 * keys for the receivers it sends to. So a sender's keys sign only as that sender, and a receiver's
 * secret makes only messages to itself: neither can speak for another process to a third.
 */

/** The key a process signs with for one receiver, and its id (first 16 hex digits of its SHA-256). */
export interface CallerKey {
  kid: string;
  key: Buffer;
}

/** A process's own identity: its name, its secrets (the first is current; more while rotating) and its keys for each receiver. */
export interface ServiceIdentity {
  process: SigningProcess;
  secrets: Buffer[];
  /** Receiver → the key this process signs with for it. */
  callerKeys: ReadonlyMap<SigningProcess, CallerKey>;
}

/** The keys a receiver accepts: sender → key id → key (two per sender while the receiver rotates its secret). */
export type TrustedKeys = ReadonlyMap<SigningProcess, ReadonlyMap<string, Buffer>>;

export class IdentityConfigError extends Error {
  override readonly name = 'IdentityConfigError';
}

export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** The key `sender` signs with for `receiver`, from the receiver's secret. */
export function deriveCallerKey(
  receiverSecret: Buffer,
  sender: SigningProcess,
  receiver: SigningProcess,
): Buffer {
  return createHmac('sha256', receiverSecret)
    .update(`imagemart caller key v1|${sender}|${receiver}`)
    .digest();
}

/** A new secret, as `SERVICE_IDENTITY_KEY` holds it (base64 of 32 random bytes). */
export function generateIdentitySecret(): string {
  return randomBytes(32).toString('base64');
}

function parseSecrets(text: string): Buffer[] {
  const secrets = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((s) => Buffer.from(s, 'base64'));
  if (secrets.length === 0 || secrets.some((s) => s.length < 32)) {
    throw new IdentityConfigError(
      'SERVICE_IDENTITY_KEY must be the base64 of 32 or more random bytes (comma-separated while rotating)',
    );
  }
  return secrets;
}

/**
 * Reads `SERVICE_CALLER_KEYS`: `receiver=<base64 key>` entries separated by commas or white space,
 * the keys this process signs with for each receiver.
 */
export function parseCallerKeys(text: string): Map<SigningProcess, CallerKey> {
  const keys = new Map<SigningProcess, CallerKey>();
  for (const entry of text.split(/[\s,]+/).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq);
    const key = Buffer.from(entry.slice(eq + 1), 'base64');
    if (eq < 1 || !isSigningProcess(name) || key.length < 32) {
      throw new IdentityConfigError(
        `SERVICE_CALLER_KEYS: "${entry.slice(0, 24)}…" is not receiver=<base64 key of 32 bytes> (processes: ${SIGNING_PROCESSES.join(', ')})`,
      );
    }
    keys.set(name, { kid: keyId(key), key });
  }
  return keys;
}

/** `SERVICE_CALLER_KEYS` for these keys. */
export function formatCallerKeys(keys: Iterable<readonly [SigningProcess, Buffer]>): string {
  return [...keys].map(([receiver, key]) => `${receiver}=${key.toString('base64')}`).join(',');
}

/** Every process's secret → the `SERVICE_CALLER_KEYS` of `sender` (what `npm start` and the compose generator give it). */
export function callerKeysSetting(
  sender: SigningProcess,
  secrets: ReadonlyMap<SigningProcess, string>,
): string {
  return formatCallerKeys(
    [...secrets].map(
      ([receiver, secret]) => [receiver, deriveCallerKey(parseSecrets(secret)[0], sender, receiver)] as const,
    ),
  );
}

export function parseServiceIdentity(
  process: SigningProcess,
  secretText: string,
  callerKeysText = '',
): ServiceIdentity {
  return { process, secrets: parseSecrets(secretText), callerKeys: parseCallerKeys(callerKeysText) };
}

/** What a receiver accepts: every sender's key derived from each of its secrets. */
export function trustedKeysOf(identity: Pick<ServiceIdentity, 'process' | 'secrets'>): TrustedKeys {
  const trusted = new Map<SigningProcess, Map<string, Buffer>>();
  for (const sender of SIGNING_PROCESSES) {
    const keys = new Map<string, Buffer>();
    for (const secret of identity.secrets) {
      const key = deriveCallerKey(secret, sender, identity.process);
      keys.set(keyId(key), key);
    }
    trusted.set(sender, keys);
  }
  return trusted;
}

/** The receiving process of an assertion's audience: a service, or the consumer of an event queue. */
export function receiverOf(audience: string): SigningProcess | undefined {
  const consumer: Record<string, SigningProcess> = {
    [EventQueue.catalog]: 'catalog',
    [EventQueue.permission]: 'permission',
    [EventQueue.billing]: 'billing',
    [EventQueue.bundling]: 'bundler-worker',
  };
  return consumer[audience] ?? (isSigningProcess(audience) ? audience : undefined);
}

/** What an assertion says. Short names: it travels with every request. */
export interface AssertionClaims {
  /** The sending process. */
  iss: SigningProcess;
  /** The receiving service, or the event queue. */
  aud: string;
  /** The message id of the request (the event id): unique per message, the replay key. */
  rid: string;
  /** The pattern (the event type). */
  pat: string;
  /** base64url SHA-256 of the request's `data` field exactly as sent (an event's payload). */
  dig: string;
  /** The account a person's request is made for (the payload's `caller.accountId`), if any. */
  sub?: string;
  /** Epoch ms: issued at, and not valid after. */
  iat: number;
  exp: number;
}

export const ASSERTION_VERSION = 'v1';

export function payloadDigest(dataJson: string): string {
  return createHash('sha256').update(dataJson).digest('base64url');
}

/** `v1.<kid>.<claims base64url>.<HMAC base64url>`; the MAC covers everything before it. */
export function signAssertion(identity: ServiceIdentity, claims: AssertionClaims): string {
  const receiver = receiverOf(claims.aud);
  const key = receiver && identity.callerKeys.get(receiver);
  if (!key)
    throw new IdentityConfigError(
      `${identity.process} has no caller key for ${claims.aud} (SERVICE_CALLER_KEYS)`,
    );
  const signed = `${ASSERTION_VERSION}.${key.kid}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${signed}.${createHmac('sha256', key.key).update(signed).digest('base64url')}`;
}

export type AssertionRefusal =
  | 'missing'
  | 'malformed'
  | 'unknown-key'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-audience'
  | 'wrong-pattern'
  | 'wrong-request'
  | 'payload-mismatch'
  | 'caller-mismatch'
  | 'sender-not-allowed'
  | 'caller-not-allowed'
  | 'replayed';

export class AssertionRefused extends Error {
  override readonly name = 'AssertionRefused';
  constructor(
    readonly reason: AssertionRefusal,
    readonly issuer?: string,
  ) {
    super(`caller assertion refused: ${reason}${issuer ? ` (issuer ${issuer})` : ''}`);
  }
}

/**
 * Checks an assertion's form, key and MAC, and returns its claims. What the claims must match
 * (audience, pattern, payload, time, sender policy, replay) is the verifier's.
 */
export function readAssertion(token: string | undefined, trusted: TrustedKeys): AssertionClaims {
  if (!token) throw new AssertionRefused('missing');
  const parts = token.split('.');
  if (parts.length !== 4 || parts[0] !== ASSERTION_VERSION || token.length > 4096)
    throw new AssertionRefused('malformed');
  const [, kid, body, mac] = parts as [string, string, string, string];
  let claims: AssertionClaims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as AssertionClaims;
  } catch {
    throw new AssertionRefused('malformed');
  }
  if (!isClaims(claims)) throw new AssertionRefused('malformed');
  const key = trusted.get(claims.iss)?.get(kid);
  if (!key) throw new AssertionRefused('unknown-key', claims.iss);
  const expected = createHmac('sha256', key).update(`${ASSERTION_VERSION}.${kid}.${body}`).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw new AssertionRefused('bad-signature', claims.iss);
  return claims;
}

function isClaims(value: unknown): value is AssertionClaims {
  if (typeof value !== 'object' || value === null) return false;
  const c = value as Record<string, unknown>;
  return (
    isSigningProcess(c['iss']) &&
    typeof c['aud'] === 'string' &&
    typeof c['rid'] === 'string' &&
    typeof c['pat'] === 'string' &&
    typeof c['dig'] === 'string' &&
    (c['sub'] === undefined || typeof c['sub'] === 'string') &&
    Number.isFinite(c['iat']) &&
    Number.isFinite(c['exp'])
  );
}
