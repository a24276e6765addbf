import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** What travels with one request across every hop: HTTP → RPC → job. */
export interface RequestContext {
  requestId: string;
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

/** A caller's request id when it is safe to echo and log; a fresh one otherwise. */
export function acceptOrCreateRequestId(candidate: unknown): string {
  return typeof candidate === 'string' && REQUEST_ID.test(candidate) ? candidate : randomUUID();
}
