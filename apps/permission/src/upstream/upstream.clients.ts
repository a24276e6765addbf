import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import { isErrorBody } from '@imagemart/contracts';
import { DomainException, createRpcClient, processIdentity, sendRpc, type RedisStreamsClient } from '@imagemart/messaging';
import type { PermissionConfig } from '../permission.config.js';

/**
 * The permission service's clients of the services it asks: catalog (an image the projection
 * lacks) and billing (entitlements). A service's error comes back as a DomainException with the
 * same code, so it reaches the gateway unchanged.
 */
@Injectable()
export class UpstreamClients implements OnModuleInit, OnApplicationShutdown {
  private readonly clients: Record<'catalog' | 'billing', RedisStreamsClient>;

  constructor(@Inject(APP_CONFIG) config: PermissionConfig) {
    const options = {
      connection: config.REDIS_URL,
      prefix: config.REDIS_PREFIX,
      timeoutMs: config.RPC_TIMEOUT_MS,
      signer: processIdentity(config, 'permission').signer,
    };
    this.clients = { catalog: createRpcClient('catalog', options), billing: createRpcClient('billing', options) };
  }

  async onModuleInit(): Promise<void> {
    await Promise.all(Object.values(this.clients).map((c) => c.connect()));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(Object.values(this.clients).map((c) => c.close()));
  }

  async call<T>(service: 'catalog' | 'billing', pattern: string, data: unknown): Promise<T> {
    try {
      return await sendRpc<T>(this.clients[service], pattern, data);
    } catch (err) {
      if (isErrorBody(err)) throw new DomainException(err.code, err.detail, err.errors);
      throw err;
    }
  }
}
