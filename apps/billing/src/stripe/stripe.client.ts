import type { Provider } from '@nestjs/common';
import Stripe from 'stripe';
import { APP_CONFIG } from '@imagemart/config';
import { MICROS_PER_UNIT } from '@imagemart/contracts';
import type { StripeConfig } from './stripe.config.js';

/** Injection token of the Stripe SDK client, or null when Stripe is not configured. */
export const STRIPE_CLIENT = Symbol.for('imagemart.billing.stripe-client');

/**
 * The SDK with its own retries (`maxNetworkRetries`): it retries network failures, 409s and 5xxs
 * with backoff, and every call we make carries an idempotency key derived from our ids, so a
 * retry (the SDK's, a job's, a second replica's) replays the first result instead of doing it twice.
 */
export function createStripeClient(config: StripeConfig): Stripe | null {
  if (!config.STRIPE_SECRET_KEY) return null;
  return new Stripe(config.STRIPE_SECRET_KEY, {
    maxNetworkRetries: config.STRIPE_MAX_NETWORK_RETRIES,
    timeout: config.STRIPE_TIMEOUT_MS,
    appInfo: { name: 'ImageMart billing' },
    ...(config.STRIPE_API_HOST ? { host: config.STRIPE_API_HOST } : {}),
    ...(config.STRIPE_API_PORT ? { port: config.STRIPE_API_PORT } : {}),
    ...(config.STRIPE_API_PROTOCOL ? { protocol: config.STRIPE_API_PROTOCOL } : {}),
  });
}

export const stripeClientProvider: Provider = {
  provide: STRIPE_CLIENT,
  inject: [APP_CONFIG],
  useFactory: (config: StripeConfig) => createStripeClient(config),
};

const MICROS_PER_CENT = MICROS_PER_UNIT / 100n;

/**
 * Micro-units of a currency with cents → Stripe's `unit_amount_decimal` in cents, exactly:
 * `10400n` (0.0104) → `"1.04"`; `5000000n` (5.00) → `"500"`.
 */
export function microsToStripeCents(micros: bigint): string {
  if (micros < 0n) throw new RangeError('Stripe prices are not negative');
  const whole = micros / MICROS_PER_CENT;
  const fraction = (micros % MICROS_PER_CENT).toString().padStart(4, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : whole.toString();
}

/**
 * An hourly rate in micro-units → the price of one second in cents, as `unit_amount_decimal`
 * (at most 12 decimals, Stripe's limit), rounded half up: `20400n` (0.0204 per hour) →
 * `"0.000566666667"`. Usage is metered in seconds, as the built-in ledger meters it.
 */
export function hourlyMicrosToStripeCentsPerSecond(hourlyMicros: bigint): string {
  if (hourlyMicros < 0n) throw new RangeError('Stripe prices are not negative');
  // cents per second = micros / 10^4 / 3600; scaled by 10^12 for twelve decimals.
  const divisor = MICROS_PER_CENT * 3600n;
  const scaled = (hourlyMicros * 10n ** 12n + divisor / 2n) / divisor;
  const whole = scaled / 10n ** 12n;
  const fraction = (scaled % 10n ** 12n).toString().padStart(12, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : whole.toString();
}

/** Stripe's integer cents → an exact decimal of currency units: `1234` → `"12.34"`. */
export function stripeCentsToDecimal(cents: number): string {
  if (!Number.isSafeInteger(cents)) throw new RangeError(`Not an amount in cents: ${cents}`);
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}
