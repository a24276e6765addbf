/** Request patterns answered by the billing service. */
export const BillingPattern = {
  /** Base rates and platform fee: `PlatformPricingView`. Anyone. */
  platformPricingGet: 'billing.platform-pricing.get',
  /** Replace the base rates (and the platform fee): `PlatformPricingView`. Admin. */
  platformPricingPut: 'billing.platform-pricing.put',
  /** One product's prices: `ProductPricingView`, or 404 InvalidProductCode.NotFound when not priced. */
  productPricingGet: 'billing.product-pricing.get',
  /** Set a product's prices (its owner): `ProductPricingView`. */
  productPricingPut: 'billing.product-pricing.put',
  subscriptionCreate: 'billing.subscription.create',
  subscriptionList: 'billing.subscription.list',
  subscriptionGet: 'billing.subscription.get',
  subscriptionCancel: 'billing.subscription.cancel',
  /** For the launch decision: `EntitlementCheckResponse`. Read-only. */
  entitlementCheck: 'billing.entitlement.check',
  /** For product pages: `PricingQuoteResponse`. Read-only. */
  pricingQuote: 'billing.pricing.quote',
  /** The caller's usage of this month so far: `UsageView`. */
  usageGet: 'billing.usage.get',
  /** The caller's invoices and credit notes, newest first: `Page<InvoiceSummaryView>`. */
  invoiceList: 'billing.invoice.list',
  /** One of the caller's: `InvoiceView`, or 404 InvalidInvoiceID.NotFound. */
  invoiceGet: 'billing.invoice.get',
  /** Internal: close a month for every buyer (idempotent): `CloseMonthResult`. */
  invoicesCloseMonth: 'billing.invoices.close-month',
  /** A seller's revenue report of one month: `RevenueView`. */
  revenueGet: 'billing.revenue.get',
  /**
   * A Stripe webhook event the gateway verified (`StripeEventRequest`): `StripeEventResult`.
   * Idempotent by event id.
   */
  stripeEvent: 'billing.stripe.event',
} as const;
export type BillingPattern = (typeof BillingPattern)[keyof typeof BillingPattern];
