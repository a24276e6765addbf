import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomUUID } from 'node:crypto';

/** What travels with one request across every hop: HTTP → RPC → job. */
export interface RequestContext {
  /** The platform's id of the request, made by the gateway (see {@link createRequestId}). */
  requestId: string;
  /** The `X-Request-Id` the client sent, when it is one the platform keeps (see {@link acceptClientRequestId}). */
  clientRequestId?: string;
  /** The authenticated account, once the gateway knows it. */
  accountId?: string;
  /** Epoch ms by which the whole request must be answered; every call it makes fits inside. */
  deadline?: number;
}

const storage = new AsyncLocalStorage<RequestContext>();

export const requestContext = {
  run<T>(context: RequestContext, fn: () => T): T {
    return storage.run(context, fn);
  },
  get(): RequestContext | undefined {
    return storage.getStore();
  },
  requestId(): string | undefined {
    return storage.getStore()?.requestId;
  },
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The request id another process of the platform sent (RPC metadata, a job) when it is safe to
 * log; a fresh one otherwise. Not for ids from outside the platform: the gateway makes its own.
 */
export function acceptOrCreateRequestId(candidate: unknown): string {
  return typeof candidate === 'string' && REQUEST_ID.test(candidate) ? candidate : randomUUID();
}

/**
 * A client's `X-Request-Id` when it is safe to keep, log and echo (1 to 64 letters, digits and
 * `. _ : -`); undefined for anything else, which is then ignored.
 */
export function acceptClientRequestId(candidate: unknown): string | undefined {
  return typeof candidate === 'string' && REQUEST_ID.test(candidate) ? candidate : undefined;
}

/**
 * The platform's id of a request that reached the gateway: a UUID the gateway makes, never the
 * client's `X-Request-Id`, which is kept beside it as `clientRequestId`. Mostly a random UUID. A
 * request that carries both a client request id and credentials (`scope`: the Authorization
 * header) gets a UUID derived from the two instead, so that a client retrying with the same
 * `X-Request-Id` and key is the same request to the services, which make what a request creates
 * idempotent by its id; the client still cannot choose the id, nor land on another key's ids.
 */
export function createRequestId(clientRequestId?: string, scope?: string): string {
  if (clientRequestId === undefined || scope === undefined) return randomUUID();
  const h = createHash('sha256').update(['imagemart.request', scope, clientRequestId].join('\u0000')).digest();
  h[6] = (h[6] & 0x0f) | 0x80; // version 8 (name-based, custom hash)
  h[8] = (h[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The request ids that travel in RPC metadata (`requestId`, `clientRequestId`). */
export function requestIdsFromMetadata(metadata: Record<string, string | undefined>): Pick<RequestContext, 'requestId' | 'clientRequestId'> {
  const clientRequestId = acceptClientRequestId(metadata['clientRequestId']);
  return { requestId: acceptOrCreateRequestId(metadata['requestId']), ...(clientRequestId ? { clientRequestId } : {}) };
}
