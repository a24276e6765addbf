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
} as const;
export type BillingPattern = (typeof BillingPattern)[keyof typeof BillingPattern];
