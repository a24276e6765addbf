import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { firstValueFrom, timeout as rxTimeout } from 'rxjs';
import { APP_CONFIG } from '@imagemart/config';
import { ErrorCode, RpcService, isErrorBody } from '@imagemart/contracts';
import { RedisStreamsClient, processIdentity } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { ApiProblem } from '../problem/api-problem.js';
import type { StorefrontConfig } from '../storefront.config.js';

/**
 * The gateway's clients of the services, one per service, and the one way handlers call them:
 * a service's error body becomes an ApiProblem with the same code; anything else is an internal
 * error whose details stay in the log.
 */
@Injectable()
export class ServiceClients implements OnModuleInit, OnApplicationShutdown {
  private readonly clients: Record<RpcService, RedisStreamsClient>;

  constructor(@Inject(APP_CONFIG) config: StorefrontConfig) {
    const { signer } = processIdentity(config, 'storefront-api');
    const make = (service: RpcService) =>
      new RedisStreamsClient({
        connection: config.REDIS_URL,
        prefix: config.REDIS_PREFIX,
        service,
        timeoutMs: config.RPC_TIMEOUT_MS,
        signer,
      });
    this.clients = { permission: make('permission'), catalog: make('catalog'), billing: make('billing') };
  }

  async onModuleInit(): Promise<void> {
    await Promise.all(Object.values(this.clients).map((c) => c.connect()));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(Object.values(this.clients).map((c) => c.close()));
  }

  /**
   * Calls `pattern` on `service` within what is left of the request's deadline (and within
   * `timeoutMs`, when given); the client's own timeout bounds calls made outside a request.
   */
  async call<T>(service: RpcService, pattern: string, data: unknown, timeoutMs?: number): Promise<T> {
    const deadline = requestContext.get()?.deadline;
    const budget = Math.min(timeoutMs ?? Infinity, deadline === undefined ? Infinity : deadline - Date.now());
    const timedOut = () => new ApiProblem(ErrorCode.ServiceTimeout, `${service} did not answer in time`);
    if (budget <= 0) throw timedOut();
    const reply$ = this.clients[service].send<T>(pattern, data);
    try {
      return await firstValueFrom(Number.isFinite(budget) ? reply$.pipe(rxTimeout(budget)) : reply$);
    } catch (err) {
      // A refused assertion of ours is the platform's fault (keys out of step), not the caller's.
      if (isErrorBody(err) && err.code === ErrorCode.InvalidCallerAssertion) {
        throw new ApiProblem(ErrorCode.InternalError, 'Internal error');
      }
      if (isErrorBody(err)) throw ApiProblem.from(err);
      if (err instanceof Error && err.name === 'TimeoutError') throw timedOut();
      throw err;
    }
  }
}
