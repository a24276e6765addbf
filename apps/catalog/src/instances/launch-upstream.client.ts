import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import {
  BillingPattern,
  ErrorCode,
  PermissionPattern,
  RpcService,
  isErrorBody,
  type LaunchDecision,
  type PricingQuoteResponse,
} from '@imagemart/contracts';
import { DomainException, createRpcClient, processIdentity, sendRpc, type RedisStreamsClient } from '@imagemart/messaging';
import type { CatalogConfig } from '../catalog.config.js';

interface CachedQuote {
  expires: number;
  quote: Promise<PricingQuoteResponse>;
}

/**
 * What a launch asks other services: billing, which instance types exist (they are the ones with
 * a base rate) and which a paid product is offered on; permission, the one launch decision.
 * Billing's answer is kept a few seconds per product (INSTANCE_TYPE_CACHE_TTL_MS); which decisions
 * may be kept, and while what holds, is LaunchDecisions' business.
 */
@Injectable()
export class LaunchUpstreamClient implements OnModuleInit, OnApplicationShutdown {
  private readonly clients: Record<'permission' | 'billing', RedisStreamsClient>;
  private readonly quotes = new Map<string, CachedQuote>();
  private readonly ttlMs: number;

  constructor(@Inject(APP_CONFIG) config: CatalogConfig) {
    const options = {
      connection: config.REDIS_URL,
      prefix: config.REDIS_PREFIX,
      timeoutMs: config.LAUNCH_RPC_TIMEOUT_MS,
      signer: processIdentity(config, 'catalog').signer,
    };
    this.clients = {
      permission: createRpcClient(RpcService.permission, options),
      billing: createRpcClient(RpcService.billing, options),
    };
    this.ttlMs = config.INSTANCE_TYPE_CACHE_TTL_MS;
  }

  async onModuleInit(): Promise<void> {
    await Promise.all(Object.values(this.clients).map((c) => c.connect()));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(Object.values(this.clients).map((c) => c.close()));
  }

  decide(accountId: string, imageId: string): Promise<LaunchDecision> {
    return this.call<LaunchDecision>('permission', PermissionPattern.launchDecide, { accountId, imageId });
  }

  /**
   * 400 InvalidInstanceType unless the type has a base rate and, for a priced product, the
   * product is offered on it.
   */
  async checkInstanceType(instanceType: string, productCode: string | null): Promise<void> {
    const quote = await this.quote(productCode);
    if (!quote.instanceTypes.some((t) => t.instanceType === instanceType)) {
      throw new DomainException(ErrorCode.InvalidInstanceType, `The instance type '${instanceType}' does not exist.`, [
        { path: 'instanceType', message: `available: ${quote.instanceTypes.map((t) => t.instanceType).join(', ')}` },
      ]);
    }
    const product = productCode === null ? null : quote.products[productCode];
    if (product && !product.instanceTypes.some((t) => t.instanceType === instanceType)) {
      throw new DomainException(ErrorCode.InvalidInstanceType, `The product of this image is not offered on '${instanceType}'.`, [
        { path: 'instanceType', message: `offered: ${product.instanceTypes.map((t) => t.instanceType).join(', ')}` },
      ]);
    }
  }

  private quote(productCode: string | null): Promise<PricingQuoteResponse> {
    const key = productCode ?? '';
    const now = Date.now();
    const cached = this.quotes.get(key);
    if (cached && cached.expires > now) return cached.quote;
    const quote = this.call<PricingQuoteResponse>('billing', BillingPattern.pricingQuote, { productCodes: productCode ? [productCode] : [] });
    if (this.ttlMs > 0) {
      const entry = { expires: now + this.ttlMs, quote };
      this.quotes.set(key, entry);
      // A failed answer is not kept: the next launch asks again.
      quote.catch(() => {
        if (this.quotes.get(key) === entry) this.quotes.delete(key);
      });
      if (this.quotes.size > 10_000) this.quotes.clear();
    }
    return quote;
  }

  private async call<T>(service: 'permission' | 'billing', pattern: string, data: unknown): Promise<T> {
    try {
      return await sendRpc<T>(this.clients[service], pattern, data);
    } catch (err) {
      if (isErrorBody(err)) throw new DomainException(err.code, err.detail, err.errors);
      throw err;
    }
  }
}
