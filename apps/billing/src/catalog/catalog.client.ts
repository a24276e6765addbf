import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, type BaseConfig } from '@imagemart/config';
import { CatalogPattern, RpcService, isErrorBody, type ProductView } from '@imagemart/contracts';
import { createRpcClient, DomainException, processIdentity, sendRpc, type RedisStreamsClient } from '@imagemart/messaging';

/** A product as the catalog describes it: its code, owner, listing and title. */
export type CatalogProduct = ProductView;

/** What billing asks the catalog: who owns a product code, and whether it exists. */
@Injectable()
export class CatalogClient implements OnModuleInit, OnApplicationShutdown {
  private readonly client: RedisStreamsClient;

  constructor(@Inject(APP_CONFIG) config: BaseConfig) {
    this.client = createRpcClient(RpcService.catalog, {
      connection: config.REDIS_URL,
      prefix: config.REDIS_PREFIX,
      timeoutMs: config.RPC_TIMEOUT_MS,
      signer: processIdentity(config, 'billing').signer,
    });
  }

  onModuleInit(): Promise<void> {
    return this.client.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.close();
  }

  /** The product; the catalog's error (404 InvalidProductCode.NotFound, a timeout) passes on unchanged. */
  async getProduct(productCode: string): Promise<CatalogProduct> {
    try {
      return await sendRpc<CatalogProduct>(this.client, CatalogPattern.productGet, { productCode });
    } catch (err) {
      if (isErrorBody(err)) throw new DomainException(err.code, err.detail, err.errors);
      throw err;
    }
  }
}
