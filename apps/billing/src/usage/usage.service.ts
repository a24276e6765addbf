import { Injectable } from '@nestjs/common';
import { microsToMoney, type Caller, type UsageView } from '@imagemart/contracts';
import { PricingRepository } from '../pricing/pricing.repository.js';
import { hourlyRate, monthOf, usageCharge } from '../invoices/invoice.calculator.js';
import { readableAccount } from '../invoices/invoices.service.js';
import { UsageRepository } from './usage.repository.js';

/** What a buyer has used this month so far, priced as the month's invoice will price it. */
@Injectable()
export class UsageService {
  constructor(
    private readonly usage: UsageRepository,
    private readonly pricing: PricingRepository,
  ) {}

  async current(caller: Caller, accountId?: string, now = new Date()): Promise<UsageView> {
    const account = readableAccount(caller, accountId);
    const period = monthOf(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)));
    const groups = await this.usage.groups(account, period.start, period.end, now);
    const baseRates = new Map((await this.pricing.baseRates()).map((r) => [r.instanceType, r.hourlyMicros]));
    const codes = [...new Set(groups.map((g) => g.productCode).filter((c): c is string => c !== null))];
    const products = new Map((await this.pricing.productPricing(codes)).map((p) => [p.productCode, p]));
    let total = 0n;
    // Seconds of one product and instance type from different sellers' images add up in one line.
    const lines = new Map<string, UsageView['lines'][number] & { secondsBig: bigint }>();
    for (const g of groups) {
      const key = `${g.productCode ?? ''}|${g.instanceType}`;
      const line = lines.get(key);
      if (line) {
        line.secondsBig += g.seconds;
        line.instances += g.instances;
      } else {
        const rate = hourlyRate({ baseRates, products }, g.productCode, g.instanceType);
        lines.set(key, {
          productCode: g.productCode,
          instanceType: g.instanceType,
          instances: g.instances,
          seconds: 0,
          secondsBig: g.seconds,
          hourly: microsToMoney(rate.base + rate.markup),
          amount: '0',
        });
      }
    }
    const view: UsageView['lines'] = [];
    for (const line of lines.values()) {
      const rate = hourlyRate({ baseRates, products }, line.productCode, line.instanceType);
      const amount = usageCharge(line.secondsBig, rate).amount;
      total += amount;
      const { secondsBig, ...rest } = line;
      view.push({ ...rest, seconds: Number(secondsBig), amount: microsToMoney(amount) });
    }
    return {
      accountId: account,
      currency: 'USD',
      periodStart: period.start.toISOString(),
      periodEnd: period.end.toISOString(),
      asOf: now.toISOString(),
      lines: view,
      total: microsToMoney(total),
    };
  }
}
