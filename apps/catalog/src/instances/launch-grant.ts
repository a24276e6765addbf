import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * A launch grant: what lets an instance host fetch one image's bundle for one instance, for a
 * short time. `lg1.<payload>.<signature>`, both base64url; the payload is the JSON of
 * {@link LaunchGrantClaims}; the signature is HMAC-SHA256 with LAUNCH_GRANT_SECRET over
 * `imagemart-launch-grant-v1.` followed by the payload as sent (docs/launches.md).
 */
export interface LaunchGrantClaims {
  instanceId: string;
  imageId: string;
  /** Object key of the image's signed manifest; its parts sit beside it. */
  manifestLocation: string;
  /** SHA-256 (hex) of the manifest verified when the image became available: a host refuses any other. */
  manifestDigest: string;
  /** Unix time (seconds) after which the grant is refused. */
  exp: number;
}

export const LAUNCH_GRANT_PREFIX = 'lg1';
const SIGNATURE_CONTEXT = 'imagemart-launch-grant-v1.';

export class LaunchGrantError extends Error {
  override readonly name = 'LaunchGrantError';
}

export class LaunchGrants {
  private readonly secret: Buffer;

  /** No secret: a random one for this process (development and tests only; see instances.config.ts). */
  constructor(
    secret: string | undefined,
    private readonly ttlSeconds: number,
  ) {
    this.secret = secret === undefined ? randomBytes(32) : Buffer.from(secret, 'utf8');
  }

  issue(claims: Omit<LaunchGrantClaims, 'exp'>, now = Date.now()): string {
    const body: LaunchGrantClaims = { ...claims, exp: Math.floor(now / 1000) + this.ttlSeconds };
    const payload = Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
    return `${LAUNCH_GRANT_PREFIX}.${payload}.${this.sign(payload).toString('base64url')}`;
  }

  /** The claims of a grant that is well formed, signed with our secret and not expired; else LaunchGrantError. */
  verify(grant: string, now = Date.now()): LaunchGrantClaims {
    const [prefix, payload, signature, ...rest] = grant.split('.');
    if (prefix !== LAUNCH_GRANT_PREFIX || !payload || !signature || rest.length > 0) throw new LaunchGrantError('malformed launch grant');
    const given = Buffer.from(signature, 'base64url');
    const expected = this.sign(payload);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new LaunchGrantError('bad launch grant signature');
    let claims: LaunchGrantClaims;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as LaunchGrantClaims;
    } catch (err) {
      throw new LaunchGrantError('malformed launch grant payload', { cause: err });
    }
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) throw new LaunchGrantError('launch grant expired');
    return claims;
  }

  private sign(payload: string): Buffer {
    return createHmac('sha256', this.secret).update(SIGNATURE_CONTEXT).update(payload).digest();
  }
}
