import { z } from 'zod';
import { accountIdSchema, callerSchema } from '../permission/permission.schemas.js';

/** A calendar month, `YYYY-MM` (UTC). */
export const monthSchema = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be a month such as 2026-11');

/** `in-` (invoice) or `cn-` (credit note) followed by 17 hex digits. */
export const invoiceIdSchema = z
  .string()
  .regex(/^(in|cn)-[0-9a-f]{17}$/, 'must be in- or cn- followed by 17 lowercase hex digits');

export const INVOICE_STATUSES = ['draft', 'open', 'paid', 'void'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];
export const INVOICE_KINDS = ['invoice', 'credit_note'] as const;
export type InvoiceKind = (typeof INVOICE_KINDS)[number];
export const INVOICE_LINE_KINDS = ['sign_up_fee', 'monthly_fee', 'usage', 'usage_adjustment'] as const;
export type InvoiceLineKind = (typeof INVOICE_LINE_KINDS)[number];

/** `GET /v1/invoices`: an admin may name another account. */
export const listInvoicesQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
  accountId: accountIdSchema.optional(),
});
export const invoiceListRequestSchema = z.strictObject({
  caller: callerSchema,
  limit: z.number().int().min(1).max(100),
  cursor: z.string().max(200).optional(),
  accountId: accountIdSchema.optional(),
});
export type InvoiceListRequest = z.infer<typeof invoiceListRequestSchema>;

export const invoiceGetRequestSchema = z.strictObject({ caller: callerSchema, invoiceId: invoiceIdSchema });
export type InvoiceGetRequest = z.infer<typeof invoiceGetRequestSchema>;

/** `billing.invoices.close-month`: internal (operators, the sweep, tests). Idempotent. */
export const closeMonthRequestSchema = z.strictObject({ month: monthSchema });
export type CloseMonthRequest = z.infer<typeof closeMonthRequestSchema>;

export interface CloseMonthResult {
  month: string;
  /** Buyers closed by this call (others may have been closed by another replica or earlier). */
  buyers: number;
  invoices: number;
  creditNotes: number;
}

export interface InvoiceLineView {
  kind: InvoiceLineKind;
  description: string;
  /** The month the line is for, `YYYY-MM` (an adjustment names an earlier month). */
  servicePeriod: string;
  productCode: string | null;
  instanceType: string | null;
  subscriptionId: string | null;
  /** Billed instance-seconds (usage lines), negative on a credit note. */
  seconds: number | null;
  /** Per instance-hour (usage lines). */
  unitPrice: string | null;
  amount: string;
}

export interface InvoiceSummaryView {
  invoiceId: string;
  number: string;
  kind: InvoiceKind;
  accountId: string;
  /** The month billed, `YYYY-MM`. */
  period: string;
  status: InvoiceStatus;
  currency: 'USD';
  /** Negative on a credit note. */
  total: string;
  /** A credit note: the invoice it corrects. */
  correctsInvoiceId: string | null;
  finalizedAt: string | null;
  paidAt: string | null;
  voidedAt: string | null;
  createdAt: string;
}

export interface InvoiceView extends InvoiceSummaryView {
  lines: InvoiceLineView[];
}
