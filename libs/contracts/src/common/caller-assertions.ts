import { eventProducer } from './callers.js';
import {
  AssertionRefused,
  payloadDigest,
  readAssertion,
  signAssertion,
  type AssertionClaims,
  type ServiceIdentity,
  type TrustedKeys,
} from './service-identity.js';

/** How long an assertion is valid by default: longer than any call waits for its answer. */
export const DEFAULT_ASSERTION_TTL_MS = 30_000;
/** Clocks of two processes may disagree by this much. */
export const ASSERTION_CLOCK_SKEW_MS = 5_000;

/** The `caller.accountId` of a payload, if it names a person (null: a caller that cannot be read). */
export function callerAccount(data: unknown): string | undefined | null {
  if (typeof data !== 'object' || data === null || !('caller' in data)) return undefined;
  const caller = (data as { caller?: unknown }).caller;
  if (caller === null || caller === undefined) return undefined;
  const account = (caller as { accountId?: unknown }).accountId;
  return typeof account === 'string' ? account : null; // null: a caller we cannot read
}

/** What a client needs to sign: the assertion of one request. */
export interface AssertionMaker {
  /** `dataJson` is the request's `data` field exactly as it goes on the wire. */
  assertion(request: {
    service: string;
    id: string;
    pattern: string;
    data: unknown;
    dataJson: string;
  }): string;
}

/** Makes the assertion a process attaches to each request it sends. */
export class CallerSigner implements AssertionMaker {
  constructor(
    private readonly identity: ServiceIdentity,
    private readonly ttlMs = DEFAULT_ASSERTION_TTL_MS,
  ) {}

  get process(): ServiceIdentity['process'] {
    return this.identity.process;
  }

  assertion(request: {
    service: string;
    id: string;
    pattern: string;
    data: unknown;
    dataJson: string;
  }): string {
    const now = Date.now();
    const sub = callerAccount(request.data) ?? undefined;
    return signAssertion(this.identity, {
      iss: this.identity.process,
      aud: request.service,
      rid: request.id,
      pat: request.pattern,
      dig: payloadDigest(request.dataJson),
      ...(sub ? { sub } : {}),
      iat: now,
      exp: now + this.ttlMs,
    });
  }
}

/**
 * How long an event's assertion is valid: events wait in the outbox while Redis is away and are
 * retried for days, so it bounds only how long a captured event could be put back (consumers are
 * idempotent by revision).
 */
export const EVENT_ASSERTION_TTL_MS = 35 * 24 * 3600 * 1000;

/** The assertion of a domain event job: issuer the producer, audience the queue, bound to the event id, type and payload. */
export function eventAssertion(
  identity: ServiceIdentity,
  job: { id: string; type: string; payload: unknown },
  queue: string,
  now = Date.now(),
): string {
  return signAssertion(identity, {
    iss: identity.process,
    aud: queue,
    rid: job.id,
    pat: job.type,
    dig: payloadDigest(JSON.stringify(job.payload) ?? 'null'),
    iat: now,
    exp: now + EVENT_ASSERTION_TTL_MS,
  });
}

/**
 * Checks a domain event job taken from `queue` under the name `type`: signed by a trusted key of
 * the event's producer (the service its type names), for this queue, this event id, type and
 * payload, and not expired. Throws AssertionRefused.
 */
export function verifyEventAssertion(
  trusted: TrustedKeys,
  job: { id: string; payload: unknown; assertion?: string | undefined },
  type: string,
  queue: string,
): AssertionClaims {
  const claims = readAssertion(job.assertion, trusted);
  const refuse = (reason: ConstructorParameters<typeof AssertionRefused>[0]) =>
    new AssertionRefused(reason, claims.iss);
  if (claims.aud !== queue) throw refuse('wrong-audience');
  if (claims.pat !== type) throw refuse('wrong-pattern');
  if (claims.rid !== job.id) throw refuse('wrong-request');
  if (claims.dig !== payloadDigest(JSON.stringify(job.payload) ?? 'null')) throw refuse('payload-mismatch');
  if (claims.exp + ASSERTION_CLOCK_SKEW_MS < Date.now()) throw refuse('expired');
  if (claims.iss !== eventProducer(type)) throw refuse('sender-not-allowed');
  return claims;
}
