import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';

/**
 * Webhook events as Stripe sends them, signed as Stripe signs them, for tests of a webhook
 * endpoint: the payload is the exact JSON text, and the `Stripe-Signature` header is made by the
 * SDK's own `generateTestHeaderString`, so `constructEvent` on the other side accepts it.
 */

export interface StripeTestEventOptions {
  /** Defaults to a fresh `evt_…`. */
  id?: string;
  /** Unix seconds; defaults to now. Out-of-order tests give older events a smaller one. */
  created?: number;
  apiVersion?: string;
}

export interface StripeTestEvent {
  id: string;
  object: 'event';
  type: string;
  created: number;
  api_version: string;
  livemode: false;
  pending_webhooks: number;
  request: { id: null; idempotency_key: null };
  data: { object: Record<string, unknown> };
}

/** An event of `type` about `object` (a Stripe object: a subscription, an invoice, …). */
export function stripeTestEvent(
  type: string,
  object: Record<string, unknown>,
  options: StripeTestEventOptions = {},
): StripeTestEvent {
  return {
    id: options.id ?? `evt_${randomBytes(12).toString('hex')}`,
    object: 'event',
    type,
    created: options.created ?? Math.floor(Date.now() / 1000),
    api_version: options.apiVersion ?? Stripe.API_VERSION,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: { object },
  };
}

export interface SignedStripePayload {
  /** The body to send, byte for byte. */
  payload: string;
  /** The `Stripe-Signature` header. */
  signature: string;
}

/**
 * Signs `event` (or a payload text) with `secret`, as of `timestamp` (Unix seconds; defaults to
 * now: an old one makes a stale delivery).
 */
export function signStripePayload(
  event: StripeTestEvent | string,
  secret: string,
  timestamp?: number,
): SignedStripePayload {
  const payload = typeof event === 'string' ? event : JSON.stringify(event);
  const signature = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret,
    ...(timestamp !== undefined ? { timestamp } : {}),
  });
  return { payload, signature };
}

/** A fresh webhook signing secret, `whsec_…`. */
export const newStripeWebhookSecret = (): string => `whsec_${randomBytes(24).toString('base64url')}`;
