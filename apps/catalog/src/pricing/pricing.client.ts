import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import { BillingPattern, RpcService, type ListingPrice, type PricingQuoteResponse } from '@imagemart/contracts';
import { createRpcClient, processIdentity, sendRpc, type RedisStreamsClient } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import type { CatalogConfig } from '../catalog.config.js';

/** What billing said for one page: the price of each listing, by product code (free: `null` key). */
export interface PageQuote {
  priceOf(productCode: string | null): ListingPrice | null;
}

const NO_QUOTE: PageQuote = { priceOf: () => null };

/** Billing takes at most this many product codes per quote. */
const MAX_CODES = 100;

/**
 * Asks billing what buyers pay, once per page of listings. Billing being slow or away costs the
 * page its prices, never the page: the answer is then `price: null`, and the miss is logged.
 */
@Injectable()
export class PricingClient implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(PricingClient.name);
  private readonly client: RedisStreamsClient;
  private readonly timeoutMs: number;

  constructor(@Inject(APP_CONFIG) config: CatalogConfig) {
    this.timeoutMs = config.PRICE_QUOTE_TIMEOUT_MS;
    this.client = createRpcClient(RpcService.billing, {
      connection: config.REDIS_URL,
      prefix: config.REDIS_PREFIX,
      timeoutMs: config.PRICE_QUOTE_TIMEOUT_MS,
      signer: processIdentity(config, 'catalog').signer,
    });
  }

  async onModuleInit(): Promise<void> {
    await this.client.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.close();
  }

  /** One quote for every paid listing on the page (and the base rates the free ones cost). */
  async quote(productCodes: (string | null)[]): Promise<PageQuote> {
    if (productCodes.length === 0) return NO_QUOTE;
    const codes = [...new Set(productCodes.filter((c): c is string => c !== null))].slice(0, MAX_CODES);
    const started = Date.now();
    let quote: PricingQuoteResponse;
    try {
      quote = await sendRpc<PricingQuoteResponse>(this.client, BillingPattern.pricingQuote, { productCodes: codes });
    } catch (err) {
      this.logger.warn({
        msg: 'billing gave no price quote; listings answer with price null',
        requestId: requestContext.requestId(),
        productCodes: codes.length,
        ms: Date.now() - started,
        err: describe(err),
      });
      return NO_QUOTE;
    }
    return {
      priceOf(productCode) {
        if (productCode === null) {
          return {
            currency: quote.currency,
            monthlyFee: '0',
            signUpFee: '0',
            instanceTypes: quote.instanceTypes.map((t) => ({ instanceType: t.instanceType, hourly: t.baseHourly })),
          };
        }
        const product = quote.products[productCode];
        if (!product) return null;
        return {
          currency: quote.currency,
          monthlyFee: product.monthlyFee,
          signUpFee: product.signUpFee,
          instanceTypes: product.instanceTypes.map((t) => ({ instanceType: t.instanceType, hourly: t.hourly })),
        };
      },
    };
  }

  get quoteTimeoutMs(): number {
    return this.timeoutMs;
  }
}

function describe(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err) return String((err).code);
  return err instanceof Error ? err.message : String(err);
}
