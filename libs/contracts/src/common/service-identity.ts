import { Buffer } from 'node:buffer';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { isSigningProcess, SIGNING_PROCESSES, type SigningProcess } from './callers.js';

/**
 * Service identities: each process signs what it sends on the message bus with its own Ed25519
 * key, and every receiver holds the public keys of all processes (docs/messaging.md, "Signed
 * callers"). Asymmetric keys, so that a receiver cannot make assertions in another's name.
 */

/** A process's own signing key. */
export interface ServiceIdentity {
  process: SigningProcess;
  /** The key id: the first 16 hex digits of SHA-256 over the public key's DER. */
  kid: string;
  privateKey: KeyObject;
}

/** The public keys a receiver trusts: process → key id → key. Several per process while rotating. */
export type TrustedKeys = ReadonlyMap<SigningProcess, ReadonlyMap<string, KeyObject>>;

export class IdentityConfigError extends Error {
  override readonly name = 'IdentityConfigError';
}

export function keyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/** Reads `SERVICE_IDENTITY_KEY`: a PKCS#8 PEM, or the base64 of its DER (one line, for env files). */
export function parseServiceIdentity(process: SigningProcess, text: string): ServiceIdentity {
  let privateKey: KeyObject;
  try {
    privateKey = text.includes('-----BEGIN')
      ? createPrivateKey(text)
      : createPrivateKey({ key: Buffer.from(text.trim(), 'base64'), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new IdentityConfigError(
      `SERVICE_IDENTITY_KEY is not a readable private key: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new IdentityConfigError(
      `SERVICE_IDENTITY_KEY must be an Ed25519 key, not ${privateKey.asymmetricKeyType}`,
    );
  }
  return { process, kid: keyId(createPublicKey(privateKey)), privateKey };
}

/**
 * Reads `SERVICE_TRUSTED_KEYS`: entries `process=<base64 SPKI DER>` separated by commas or white
 * space. A process may appear more than once (its old and new key, during a rotation).
 */
export function parseTrustedKeys(text: string): TrustedKeys {
  const trusted = new Map<SigningProcess, Map<string, KeyObject>>();
  for (const entry of text.split(/[\s,]+/).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq);
    if (eq < 1 || !isSigningProcess(name)) {
      throw new IdentityConfigError(
        `SERVICE_TRUSTED_KEYS: "${entry.slice(0, 40)}" is not process=<base64 public key> (processes: ${SIGNING_PROCESSES.join(', ')})`,
      );
    }
    let key: KeyObject;
    try {
      key = createPublicKey({ key: Buffer.from(entry.slice(eq + 1), 'base64'), format: 'der', type: 'spki' });
    } catch (err) {
      throw new IdentityConfigError(`SERVICE_TRUSTED_KEYS: the key of ${name} is not readable`, {
        cause: err,
      });
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new IdentityConfigError(`SERVICE_TRUSTED_KEYS: the key of ${name} is not Ed25519`);
    let keys = trusted.get(name);
    if (!keys) trusted.set(name, (keys = new Map<string, KeyObject>()));
    keys.set(keyId(key), key);
  }
  return trusted;
}

/** A new key pair, as the two settings hold them (base64 DER). */
export function generateIdentityKeyPair(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
  };
}

/** `SERVICE_TRUSTED_KEYS` for these public keys. */
export function formatTrustedKeys(publicKeys: Iterable<readonly [SigningProcess, string]>): string {
  return [...publicKeys].map(([process, key]) => `${process}=${key}`).join(',');
}

/** What an assertion says. Short names: it travels with every request. */
export interface AssertionClaims {
  /** The sending process. */
  iss: SigningProcess;
  /** The receiving service. */
  aud: string;
  /** The message id of the request: unique per request, the replay key. */
  rid: string;
  /** The pattern. */
  pat: string;
  /** base64url SHA-256 of the request's `data` field exactly as sent. */
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

/** `v1.<kid>.<claims base64url>.<signature base64url>`; the signature covers everything before it. */
export function signAssertion(identity: ServiceIdentity, claims: AssertionClaims): string {
  const signed = `${ASSERTION_VERSION}.${identity.kid}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${signed}.${sign(null, Buffer.from(signed), identity.privateKey).toString('base64url')}`;
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
 * Checks an assertion's form, key and signature, and returns its claims. What the claims must
 * match (audience, pattern, payload, time, sender policy, replay) is the verifier's.
 */
export function readAssertion(token: string | undefined, trusted: TrustedKeys): AssertionClaims {
  if (!token) throw new AssertionRefused('missing');
  const parts = token.split('.');
  if (parts.length !== 4 || parts[0] !== ASSERTION_VERSION || token.length > 4096)
    throw new AssertionRefused('malformed');
  const [, kid, body, signature] = parts as [string, string, string, string];
  let claims: AssertionClaims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as AssertionClaims;
  } catch {
    throw new AssertionRefused('malformed');
  }
  if (!isClaims(claims)) throw new AssertionRefused('malformed');
  const key = trusted.get(claims.iss)?.get(kid);
  if (!key) throw new AssertionRefused('unknown-key', claims.iss);
  const ok = verify(
    null,
    Buffer.from(`${ASSERTION_VERSION}.${kid}.${body}`),
    key,
    Buffer.from(signature, 'base64url'),
  );
  if (!ok) throw new AssertionRefused('bad-signature', claims.iss);
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
