import { createHash, randomBytes } from 'node:crypto';
import { requestContext } from '@imagemart/observability';

const sha256 = (...parts: string[]) => createHash('sha256').update(parts.join('\u0000')).digest();
const hex17 = (bytes: Buffer) => bytes.toString('hex').slice(0, 17);

/**
 * The id of a launch request's reservation. With a client token it derives from the account and
 * the token; otherwise from the request id, so that a request that runs twice (a reclaimed RPC)
 * finds the first run's reservation instead of launching again. Outside a request it is random.
 */
export function reservationIdFor(accountId: string, clientToken: string | undefined): string {
  if (clientToken !== undefined) return `r-${hex17(sha256('r', 'token', accountId, clientToken))}`;
  const requestId = requestContext.requestId();
  if (requestId === undefined) return `r-${hex17(randomBytes(9))}`;
  return `r-${hex17(sha256('r', 'request', accountId, requestId))}`;
}

/** The instance ids of a reservation follow from it, one per launch index. */
export const instanceIdFor = (reservationId: string, launchIndex: number): string =>
  `i-${hex17(sha256('i', reservationId, String(launchIndex)))}`;

/** What a launch asked for, as a digest: the same client token must ask for the same. */
export const launchDigest = (imageId: string, instanceType: string, count: number): string =>
  createHash('sha256').update(JSON.stringify({ imageId, instanceType, count })).digest('hex');

/**
 * The outbox event id (= BullMQ job id) of a host job: a UUID named by the job and the instance,
 * so one instance gets at most one start job and one stop job however often they are written.
 */
export function hostJobId(jobName: string, instanceId: string): string {
  const h = sha256('instance-host', jobName, instanceId);
  h[6] = (h[6] & 0x0f) | 0x80; // version 8 (name-based, custom hash)
  h[8] = (h[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
