import { Injectable } from '@nestjs/common';
import { PrismaClient, type Prisma } from '@imagemart/database';
import { decimalToMicros, microsToPercent, type Currency } from '@imagemart/contracts';

type Tx = Prisma.TransactionClient | PrismaClient;

/** The one row of platform_fee. */
const PLATFORM_FEE_ID = 'platform';

/** An exact database decimal as micro-units. */
const micros = (d: Prisma.Decimal): bigint => decimalToMicros(d.toFixed(6));
/** Micro-units as a decimal string the database takes exactly. */
const decimal = (m: bigint): string => microsToPercent(m);

export interface BaseRate {
  instanceType: string;
  hourlyMicros: bigint;
  updatedAt: Date;
}

export interface PlatformFeeRow {
  percentMicros: bigint;
  fixedPerBuyerMicros: bigint;
  updatedAt: Date;
}

export type MarkupKind = 'amount' | 'percent';

export interface StoredMarkup {
  instanceType: string;
  kind: MarkupKind;
  /** Micro-units of currency (amount) or of a percent (percent). */
  valueMicros: bigint;
}

export interface StoredProductPricing {
  productCode: string;
  sellerId: string;
  currency: Currency;
  monthlyFeeMicros: bigint;
  signUpFeeMicros: bigint;
  revision: number;
  updatedAt: Date;
  markups: StoredMarkup[];
}

export interface NewProductPricing {
  productCode: string;
  sellerId: string;
  currency: Currency;
  monthlyFeeMicros: bigint;
  signUpFeeMicros: bigint;
  markups: StoredMarkup[];
}

/** Base rates, the platform fee and product prices. Amounts leave here as bigint micro-units. */
@Injectable()
export class PricingRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async baseRates(tx: Tx = this.prisma): Promise<BaseRate[]> {
    const rows = await tx.instanceTypeRate.findMany({ orderBy: { id: 'asc' } });
    return rows.map((r) => ({ instanceType: r.id, hourlyMicros: micros(r.hourly), updatedAt: r.updatedAt }));
  }

  async platformFee(tx: Tx = this.prisma): Promise<PlatformFeeRow | null> {
    const row = await tx.platformFee.findUnique({ where: { id: PLATFORM_FEE_ID } });
    return row && { percentMicros: micros(row.percent), fixedPerBuyerMicros: micros(row.fixedPerBuyer), updatedAt: row.updatedAt };
  }

  /** Makes `rates` the whole list of base rates: types not in it are removed. */
  async replaceBaseRates(tx: Prisma.TransactionClient, currency: Currency, rates: { instanceType: string; hourlyMicros: bigint }[]): Promise<void> {
    // Replicas setting rates at once apply one after the other.
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('imagemart:billing:base-rates'))`;
    await tx.instanceTypeRate.deleteMany({ where: { id: { notIn: rates.map((r) => r.instanceType) } } });
    for (const rate of rates) {
      const hourly = decimal(rate.hourlyMicros);
      await tx.instanceTypeRate.upsert({
        where: { id: rate.instanceType },
        create: { id: rate.instanceType, currency, hourly },
        update: { currency, hourly },
      });
    }
  }

  async setPlatformFee(tx: Prisma.TransactionClient, currency: Currency, percentMicros: bigint, fixedPerBuyerMicros: bigint): Promise<void> {
    const data = { currency, percent: decimal(percentMicros), fixedPerBuyer: decimal(fixedPerBuyerMicros) };
    await tx.platformFee.upsert({ where: { id: PLATFORM_FEE_ID }, create: { id: PLATFORM_FEE_ID, ...data }, update: data });
  }

  async productPricing(productCodes: string[], tx: Tx = this.prisma): Promise<StoredProductPricing[]> {
    if (productCodes.length === 0) return [];
    const rows = await tx.productPricing.findMany({
      where: { id: { in: productCodes } },
      include: { instanceTypes: { orderBy: { instanceType: 'asc' } } },
    });
    return rows.map((row) => ({
      productCode: row.id,
      sellerId: row.sellerId,
      currency: row.currency as Currency,
      monthlyFeeMicros: micros(row.monthlyFee),
      signUpFeeMicros: micros(row.signUpFee),
      revision: row.revision,
      updatedAt: row.updatedAt,
      markups: row.instanceTypes.map((t) => ({ instanceType: t.instanceType, kind: t.markupKind, valueMicros: micros(t.markup) })),
    }));
  }

  /** Creates or replaces a product's prices; the revision grows by one with each replacement. */
  async saveProductPricing(tx: Prisma.TransactionClient, pricing: NewProductPricing): Promise<void> {
    const data = {
      sellerId: pricing.sellerId,
      currency: pricing.currency,
      monthlyFee: decimal(pricing.monthlyFeeMicros),
      signUpFee: decimal(pricing.signUpFeeMicros),
    };
    // An upsert on the key: concurrent writers of one product take its row lock in turn.
    await tx.productPricing.upsert({
      where: { id: pricing.productCode },
      create: { id: pricing.productCode, ...data },
      update: { ...data, revision: { increment: 1 } },
    });
    await tx.productInstanceTypePrice.deleteMany({ where: { productCode: pricing.productCode } });
    await tx.productInstanceTypePrice.createMany({
      data: pricing.markups.map((m) => ({
        productCode: pricing.productCode,
        instanceType: m.instanceType,
        markupKind: m.kind,
        markup: decimal(m.valueMicros),
      })),
    });
  }
}
