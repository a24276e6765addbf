import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newStripeWebhookSecret,
  signStripePayload,
  startStripeTestServer,
  stripeTestEvent,
  waitFor,
  type StripeObject,
  type StripeTestServer,
} from '@imagemart/testing';
import { http, Platform, expectProblem, type TestAccount } from './support/platform.js';

/**
 * Stripe with the five real processes and the local Stripe-compatible server: a subscription
 * made over HTTP reaches Stripe on its own (outbox → queue → billing's worker → the SDK), and
 * Stripe's webhooks, signed as Stripe signs them, come back through POST /v1/webhooks/stripe.
 */
let platform: Platform;
let stripe: StripeTestServer;
let base: string;
const webhookSecret = newStripeWebhookSecret();

beforeAll(async () => {
  stripe = await startStripeTestServer();
  platform = await Platform.start('stripe', {
    ...stripe.env(),
    STRIPE_WEBHOOK_SECRET: webhookSecret,
    STRIPE_MAX_NETWORK_RETRIES: '2',
  });
  base = platform.baseUrl;
}, 120_000);

afterAll(async () => {
  await platform?.stop();
  await stripe?.close();
});

async function subscribed(): Promise<{ buyer: TestAccount; subscriptionId: string; remote: StripeObject }> {
  const seller = await platform.createAccount(['seller']);
  const buyer = await platform.createAccount(['buyer']);
  const listing = await http(base, 'POST', '/v1/listings', {
    key: seller.key,
    body: {
      title: `Stripe test ${Math.random().toString(36).slice(2, 8)}`,
      summary: 'A paid product',
      categories: ['security'],
      pricingType: 'paid',
    },
  });
  expect(listing.status, JSON.stringify(listing.body)).toBe(201);
  const code = listing.body.productCode as string;
  const priced = await http(base, 'PUT', `/v1/products/${code}/pricing`, {
    key: seller.key,
    body: {
      currency: 'USD',
      instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.01' } }],
      monthlyFee: '4.99',
      signUpFee: '10',
    },
  });
  expect(priced.status, JSON.stringify(priced.body)).toBe(200);
  const sub = await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: code } });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  const subscriptionId = sub.body.id as string;
  const remote = await waitFor(
    () =>
      stripe
        .objects('subscription')
        .find((s) => (s.metadata as Record<string, string>).subscription_id === subscriptionId),
    { timeoutMs: 20_000, what: 'billing to create the Stripe subscription' },
  );
  return { buyer, subscriptionId, remote };
}

const post = (payload: string, signature?: string) =>
  http(base, 'POST', '/v1/webhooks/stripe', {
    rawBody: payload,
    ...(signature ? { headers: { 'stripe-signature': signature } } : {}),
  });

describe('Stripe end to end', () => {
  it('creates the Stripe customer and subscription for a subscription made over HTTP', async () => {
    const { buyer, subscriptionId, remote } = await subscribed();
    expect(remote).toMatchObject({
      status: 'active',
      metadata: { subscription_id: subscriptionId, account_id: buyer.id },
    });
    expect(
      stripe
        .objects('customer')
        .filter((c) => (c.metadata as Record<string, string>).account_id === buyer.id),
    ).toHaveLength(1);
    // Cancelling over HTTP cancels at the period end in Stripe too.
    const cancelled = await http(base, 'POST', `/v1/subscriptions/${subscriptionId}/cancel`, {
      key: buyer.key,
    });
    expect(cancelled.status).toBe(200);
    await waitFor(() => stripe.get(remote.id)?.cancel_at_period_end === true, {
      timeoutMs: 20_000,
      what: 'the cancel to reach Stripe',
    });
  });

  it('applies a signed webhook without an API key, once per event id; refuses a bad or stale signature with 400 and changes nothing', async () => {
    const { buyer, subscriptionId, remote } = await subscribed();
    const status = async () =>
      (await http(base, 'GET', `/v1/subscriptions/${subscriptionId}`, { key: buyer.key })).body
        .status as string;
    const invoice = {
      id: `in_e2e${Date.now()}`,
      object: 'invoice',
      customer: remote.customer,
      currency: 'usd',
      amount_due: 1499,
      amount_paid: 0,
      status: 'open',
      parent: { type: 'subscription_details', subscription_details: { subscription: remote.id } },
    };
    const failed = stripeTestEvent('invoice.payment_failed', invoice);

    const forged = signStripePayload(failed, newStripeWebhookSecret());
    expectProblem(await post(forged.payload, forged.signature), 400, 'SignatureDoesNotMatch');
    expectProblem(await post(JSON.stringify(failed)), 400, 'SignatureDoesNotMatch');
    const stale = signStripePayload(failed, webhookSecret, Math.floor(Date.now() / 1000) - 600);
    expectProblem(await post(stale.payload, stale.signature), 400, 'RequestExpired');
    expect(await status()).toBe('active');

    const good = signStripePayload(failed, webhookSecret);
    const first = await post(good.payload, good.signature);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toEqual({ received: true, eventId: failed.id, outcome: 'applied' });
    expect(await status()).toBe('past_due');
    // Stripe redelivers the same event: answered 200, nothing changes.
    const again = await post(good.payload, good.signature);
    expect(again.body).toMatchObject({ received: true, outcome: 'duplicate' });

    const paid = signStripePayload(
      stripeTestEvent(
        'invoice.paid',
        { ...invoice, status: 'paid', amount_paid: 1499 },
        { created: failed.created + 1 },
      ),
      webhookSecret,
    );
    expect((await post(paid.payload, paid.signature)).body).toMatchObject({ outcome: 'applied' });
    expect(await status()).toBe('active');

    // Every other route still parses its JSON as before.
    expectProblem(
      await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, rawBody: '{"productCode":' }),
      400,
      'MalformedRequest',
    );
  });
});
