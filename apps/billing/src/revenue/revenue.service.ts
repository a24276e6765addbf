import { Injectable } from '@nestjs/common';
import {
  ErrorCode,
  microsToMoney,
  percentOf,
  type Caller,
  type RevenueProductView,
  type RevenueView,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { parseMonth } from '../invoices/invoice.calculator.js';
import { InvoicesRepository } from '../invoices/invoices.repository.js';

interface Sums {
  markup: bigint;
  monthly: bigint;
  signUp: bigint;
  base: bigint;
  buyers: Set<string>;
}
const emptySums = (): Sums => ({ markup: 0n, monthly: 0n, signUp: 0n, base: 0n, buyers: new Set() });
const gross = (s: Pick<Sums, 'markup' | 'monthly' | 'signUp'>) => s.markup + s.monthly + s.signUp;
const amounts = (s: Sums) => ({
  gross: microsToMoney(gross(s)),
  markup: microsToMoney(s.markup),
  monthlyFees: microsToMoney(s.monthly),
  signUpFees: microsToMoney(s.signUp),
  baseUsageCost: microsToMoney(s.base),
  buyers: s.buyers.size,
});

/**
 * The seller revenue report (docs/pricing.md, "Seller revenue report"): from the finalised
 * invoices and credit notes of the month, the seller's part of each line (markup, monthly and
 * sign-up fees), the base usage cost the platform keeps, and the platform fee per bill.
 */
@Injectable()
export class RevenueService {
  constructor(private readonly invoices: InvoicesRepository) {}

  async report(caller: Caller, month: string, sellerId?: string): Promise<RevenueView> {
    const seller = sellerId ?? caller.accountId;
    const isAdmin = caller.roles.includes('admin');
    if (seller !== caller.accountId && !isAdmin) {
      throw new DomainException(
        ErrorCode.UnauthorizedOperation,
        "Only an admin may read another seller's revenue.",
      );
    }
    if (seller === caller.accountId && !caller.roles.includes('seller') && !isAdmin) {
      throw new DomainException(
        ErrorCode.UnauthorizedOperation,
        'Only a seller account has a revenue report.',
      );
    }
    const rows = await this.invoices.sellerLines(seller, parseMonth(month).start);

    const total = emptySums();
    const byProduct = new Map<string, Sums>();
    const perBill = new Map<string, { kind: string; gross: bigint; percent: bigint; fixed: bigint }>();
    for (const r of rows) {
      const product = byProduct.get(r.productCode) ?? emptySums();
      byProduct.set(r.productCode, product);
      for (const s of [total, product]) {
        s.markup += r.markup;
        s.monthly += r.monthly;
        s.signUp += r.signUp;
        s.base += r.base;
        if (r.kind === 'invoice' && gross(r) > 0n) s.buyers.add(r.accountId);
      }
      const bill = perBill.get(r.invoiceId) ?? {
        kind: r.kind,
        gross: 0n,
        percent: r.feePercentMicros,
        fixed: r.feeFixedMicros,
      };
      bill.gross += gross(r);
      perBill.set(r.invoiceId, bill);
    }
    // Per bill: the percentage of the seller's part, rounded, plus the fixed fee when the bill
    // carries revenue of this seller; a credit note gives back its percentage, not the fixed fee.
    let platformFee = 0n;
    for (const bill of perBill.values()) {
      if (bill.gross > 0n)
        platformFee += percentOf(bill.gross, bill.percent) + (bill.kind === 'invoice' ? bill.fixed : 0n);
      else if (bill.gross < 0n) platformFee -= percentOf(-bill.gross, bill.percent);
    }
    const products: RevenueProductView[] = [...byProduct.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([productCode, s]) => ({ productCode, ...amounts(s) }));
    return {
      sellerId: seller,
      month,
      currency: 'USD',
      ...amounts(total),
      platformFee: microsToMoney(platformFee),
      net: microsToMoney(gross(total) - platformFee),
      products,
    };
  }
}
