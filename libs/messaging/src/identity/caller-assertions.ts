import type { Redis } from 'ioredis';
import {
  ASSERTION_CLOCK_SKEW_MS,
  AssertionRefused,
  DEFAULT_ASSERTION_TTL_MS,
  USER_CALLER_ISSUERS,
  allowedSenders,
  callerAccount,
  payloadDigest,
  readAssertion,
  type AssertionClaims,
  type TrustedKeys,
} from '@imagemart/contracts';

export interface CallerVerifierOptions {
  /** The receiving service: an assertion's audience must be it. */
  service: string;
  trusted: TrustedKeys;
  /** Where request ids already seen are remembered (shared by the service's replicas). */
  redis: Redis;
  prefix: string;
  /** The longest validity an assertion may claim. Default twice DEFAULT_ASSERTION_TTL_MS. */
  maxLifetimeMs?: number;
}

export interface ReceivedRequest {
  /** The stream entry it arrived as: a reclaimed entry is the same request, not a replay. */
  entryId: string;
  id: string;
  pattern: string;
  data: unknown;
  dataJson: string;
  assertion?: string | undefined;
}

/**
 * Remembers a request id with the stream entry that first carried it, until the assertion
 * expires: 1 when this entry is the first (or the same entry again: a reclaim), 0 otherwise.
 */
const SEEN_SCRIPT = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0`;

/**
 * Checks every request a service acts on: a valid signature by a trusted key of the process
 * named as issuer, meant for this service, this pattern, this request id and this payload, within
 * its validity, from a process allowed to send the pattern, naming a person only if that process
 * authenticates people (and then the person the payload names), and never seen before.
 */
export class CallerVerifier {
  private readonly maxLifetimeMs: number;
  private readonly seenPrefix: string;

  constructor(private readonly options: CallerVerifierOptions) {
    this.maxLifetimeMs = options.maxLifetimeMs ?? 2 * DEFAULT_ASSERTION_TTL_MS;
    this.seenPrefix = `${options.prefix}:rpc:seen:${options.service}:`;
    if (!('imagemartSeen' in options.redis)) {
      options.redis.defineCommand('imagemartSeen', { numberOfKeys: 1, lua: SEEN_SCRIPT });
    }
  }

  /** The claims, or AssertionRefused with the reason. */
  async verify(request: ReceivedRequest): Promise<AssertionClaims> {
    const claims = readAssertion(request.assertion, this.options.trusted);
    const refuse = (reason: ConstructorParameters<typeof AssertionRefused>[0]) =>
      new AssertionRefused(reason, claims.iss);
    const now = Date.now();
    if (claims.aud !== this.options.service) throw refuse('wrong-audience');
    if (claims.pat !== request.pattern) throw refuse('wrong-pattern');
    if (claims.rid !== request.id) throw refuse('wrong-request');
    if (claims.dig !== payloadDigest(request.dataJson)) throw refuse('payload-mismatch');
    if (claims.exp + ASSERTION_CLOCK_SKEW_MS < now) throw refuse('expired');
    if (claims.iat - ASSERTION_CLOCK_SKEW_MS > now || claims.exp - claims.iat > this.maxLifetimeMs) {
      throw refuse('not-yet-valid');
    }
    if (!allowedSenders(request.pattern).includes(claims.iss)) throw refuse('sender-not-allowed');
    const account = callerAccount(request.data);
    if (account === null) throw refuse('caller-mismatch');
    if (account !== undefined && !USER_CALLER_ISSUERS.includes(claims.iss))
      throw refuse('caller-not-allowed');
    if (account !== claims.sub) throw refuse('caller-mismatch');

    const ttl = Math.max(1000, claims.exp + ASSERTION_CLOCK_SKEW_MS - now);
    const first = await (this.options.redis as unknown as SeenCommands).imagemartSeen(
      this.seenPrefix + request.id,
      request.entryId,
      ttl,
    );
    if (first !== 1) throw refuse('replayed');
    return claims;
  }
}

interface SeenCommands {
  imagemartSeen(key: string, entryId: string, ttlMs: number): Promise<number>;
}
