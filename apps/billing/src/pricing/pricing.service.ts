import { Injectable } from '@nestjs/common';
import { PrismaClient } from '@imagemart/database';
import {
  ErrorCode,
  MAX_HOURLY,
  decimalToMicros,
  microsToMoney,
  microsToPercent,
  type Caller,
  type FieldError,
  type PlatformPricingBody,
  type PlatformPricingView,
  type PricingQuoteResponse,
  type ProductPricingBody,
  type ProductPricingView,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { CatalogClient } from '../catalog/catalog.client.js';
import { MAX_HOURLY_MICROS, hourlyMicros, markupFromBody, productInstanceTypes, quotedProduct } from './pricing.calculator.js';
import { PricingRepository, type StoredProductPricing } from './pricing.repository.js';

const latest = (dates: Date[]) => new Date(Math.max(0, ...dates.map((d) => d.getTime())));

export const productNotPriced = (productCode: string) =>
  new DomainException(ErrorCode.InvalidProductCodeNotFound, `The product '${productCode}' has no pricing yet.`);

@Injectable()
export class PricingService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pricing: PricingRepository,
    private readonly catalog: CatalogClient,
  ) {}

  async platformPricing(): Promise<PlatformPricingView> {
    const [rates, fee] = await Promise.all([this.pricing.baseRates(), this.pricing.platformFee()]);
    return {
      currency: 'USD',
      instanceTypes: rates.map((r) => ({ instanceType: r.instanceType, hourly: microsToMoney(r.hourlyMicros) })),
      platformFee: {
        percent: microsToPercent(fee?.percentMicros ?? 0n),
        fixedPerBuyer: microsToMoney(fee?.fixedPerBuyerMicros ?? 0n),
      },
      updatedAt: latest([...rates.map((r) => r.updatedAt), ...(fee ? [fee.updatedAt] : [])]).toISOString(),
    };
  }

  async setPlatformPricing(caller: Caller, body: PlatformPricingBody): Promise<PlatformPricingView> {
    if (!caller.roles.includes('admin')) {
      throw new DomainException(ErrorCode.UnauthorizedOperation, 'You are not authorized to set the platform prices.');
    }
    await this.prisma.$transaction(async (tx) => {
      await this.pricing.replaceBaseRates(
        tx,
        body.currency,
        body.instanceTypes.map((t) => ({ instanceType: t.instanceType, hourlyMicros: decimalToMicros(t.hourly) })),
      );
      if (body.platformFee) {
        await this.pricing.setPlatformFee(
          tx,
          body.currency,
          decimalToMicros(body.platformFee.percent),
          decimalToMicros(body.platformFee.fixedPerBuyer),
        );
      }
    });
    return this.platformPricing();
  }

  async productPricing(productCode: string): Promise<ProductPricingView> {
    const [stored] = await this.pricing.productPricing([productCode]);
    if (!stored) throw productNotPriced(productCode);
    return this.productView(stored, await this.baseRateMap());
  }

  /** Sets a product's prices: only the account that owns the product code in the catalog may. */
  async setProductPricing(caller: Caller, productCode: string, body: ProductPricingBody): Promise<ProductPricingView> {
    const product = await this.catalog.getProduct(productCode);
    if (product.ownerId !== caller.accountId) {
      throw new DomainException(ErrorCode.UnauthorizedOperation, `You do not own the product '${productCode}'; only its seller sets its prices.`);
    }
    const markups = body.instanceTypes.map((t) => ({ instanceType: t.instanceType, ...markupFromBody(t.markup) }));
    await this.prisma.$transaction(async (tx) => {
      const rates = new Map((await this.pricing.baseRates(tx)).map((r) => [r.instanceType, r.hourlyMicros]));
      const unknown = markups.filter((m) => !rates.has(m.instanceType)).map((m) => m.instanceType);
      if (unknown.length) {
        throw new DomainException(
          ErrorCode.InvalidInstanceType,
          `The platform has no rate for ${unknown.map((t) => `'${t}'`).join(', ')}; see GET /v1/pricing/instance-types.`,
        );
      }
      const tooHigh: FieldError[] = [];
      markups.forEach((m, i) => {
        const total = hourlyMicros(m, rates.get(m.instanceType) ?? 0n);
        if (total > MAX_HOURLY_MICROS) {
          tooHigh.push({
            path: `instanceTypes.${i}.markup`,
            message: `base + markup is ${microsToMoney(total)} per instance-hour; at most ${MAX_HOURLY} is allowed`,
          });
        }
      });
      if (tooHigh.length) {
        throw new DomainException(ErrorCode.InvalidParameterValue, `Invalid request: ${tooHigh.map((e) => `${e.path}: ${e.message}`).join('; ')}`, tooHigh);
      }
      await this.pricing.saveProductPricing(tx, {
        productCode,
        sellerId: product.ownerId,
        currency: body.currency,
        monthlyFeeMicros: decimalToMicros(body.monthlyFee),
        signUpFeeMicros: decimalToMicros(body.signUpFee),
        markups,
      });
    });
    return this.productPricing(productCode);
  }

  /** Base rates, and each product's prices (null for a product that has none). */
  async quote(productCodes: string[]): Promise<PricingQuoteResponse> {
    const codes = [...new Set(productCodes)];
    const [rates, stored] = await Promise.all([this.pricing.baseRates(), this.pricing.productPricing(codes)]);
    const rateMap = new Map(rates.map((r) => [r.instanceType, r.hourlyMicros]));
    const byCode = new Map(stored.map((p) => [p.productCode, p]));
    const products: PricingQuoteResponse['products'] = {};
    for (const code of codes) {
      const pricing = byCode.get(code);
      products[code] = pricing ? quotedProduct(pricing, rateMap) : null;
    }
    return {
      currency: 'USD',
      instanceTypes: rates.map((r) => ({ instanceType: r.instanceType, baseHourly: microsToMoney(r.hourlyMicros) })),
      products,
    };
  }

  /** The instance types a product can be bought on now; empty when it is not priced. */
  async offeredInstanceTypes(productCode: string): Promise<string[]> {
    const [stored] = await this.pricing.productPricing([productCode]);
    if (!stored) return [];
    return productInstanceTypes(stored, await this.baseRateMap()).map((t) => t.instanceType);
  }

  private async baseRateMap(): Promise<Map<string, bigint>> {
    return new Map((await this.pricing.baseRates()).map((r) => [r.instanceType, r.hourlyMicros]));
  }

  private productView(stored: StoredProductPricing, rates: ReadonlyMap<string, bigint>): ProductPricingView {
    return {
      productCode: stored.productCode,
      sellerId: stored.sellerId,
      currency: stored.currency,
      instanceTypes: productInstanceTypes(stored, rates),
      monthlyFee: microsToMoney(stored.monthlyFeeMicros),
      signUpFee: microsToMoney(stored.signUpFeeMicros),
      revision: stored.revision,
      updatedAt: stored.updatedAt.toISOString(),
    };
  }
}
