import { z } from 'zod';

/**
 * Stripe settings of the billing service (docs/stripe.md). Without STRIPE_SECRET_KEY the built-in
 * ledger is the only provider and nothing talks to Stripe. STRIPE_API_* point the SDK at another
 * Stripe-compatible server (the local test server); they are unset in production.
 */
export const stripeConfigShape = {
  STRIPE_SECRET_KEY: z
    .string()
    .regex(
      /^(sk|rk)_(test|live)_[A-Za-z0-9]+$/,
      'must be a Stripe secret or restricted key (sk_test_…, sk_live_…)',
    )
    .optional(),
  /** How many times the SDK retries a call that failed on the network or with a 409/5xx. */
  STRIPE_MAX_NETWORK_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  /** Milliseconds the SDK waits for one answer. */
  STRIPE_TIMEOUT_MS: z.coerce.number().int().min(1000).max(120_000).default(30_000),
  STRIPE_API_HOST: z.string().min(1).optional(),
  STRIPE_API_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  STRIPE_API_PROTOCOL: z.enum(['http', 'https']).optional(),
};

export type StripeConfig = {
  [K in keyof typeof stripeConfigShape]: z.infer<(typeof stripeConfigShape)[K]>;
};
