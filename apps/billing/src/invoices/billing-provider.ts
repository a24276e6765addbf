import { Injectable } from '@nestjs/common';
import type { InstanceChanged, InvoiceView } from '@imagemart/contracts';

/**
 * Where billing hands finalised documents and metered usage on to the provider that collects the
 * money. The built-in ledger (the default, no outside service) keeps invoices `open` in the
 * database until a payment is recorded; a provider such as Stripe replaces it under
 * {@link BILLING_PROVIDER}. Both calls happen after the data is committed; a provider that must
 * not miss one keeps its own record of what it has sent (the invoice id and instance id are
 * stable keys for idempotency).
 */
export interface BillingProvider {
  readonly name: string;
  /** An invoice or credit note was finalised (status `open`). */
  invoiceFinalized(invoice: InvoiceView): Promise<void>;
  /** Usage records were stored (the latest state of each instance). */
  usageRecorded(events: readonly InstanceChanged[]): Promise<void>;
}

export const BILLING_PROVIDER = Symbol('BILLING_PROVIDER');

/** The built-in ledger: the invoices in the billing schema are the whole record. */
@Injectable()
export class LedgerBillingProvider implements BillingProvider {
  readonly name = 'ledger';

  invoiceFinalized(): Promise<void> {
    return Promise.resolve();
  }

  usageRecorded(): Promise<void> {
    return Promise.resolve();
  }
}
