import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStripeTestServer, type StripeTestServer } from './stripe-test-server.js';
import { newStripeWebhookSecret, signStripePayload, stripeTestEvent } from './stripe-webhook.fixture.js';

let server: StripeTestServer;
let stripe: Stripe;

beforeAll(async () => {
  server = await startStripeTestServer();
  // Short retry delays keep the retry tests quick; the retry logic is the SDK's own.
  stripe = server.client({ maxNetworkRetries: 3 });
});

afterAll(() => server?.close());

const errorOf = async (promise: Promise<unknown>): Promise<Stripe.errors.StripeError> => {
  try {
    await promise;
  } catch (err) {
    return err as Stripe.errors.StripeError;
  }
  throw new Error('expected a Stripe error');
};

describe('the local Stripe-compatible server, driven by the real SDK', () => {
  it('creates and reads customers, products, prices and subscriptions from form-encoded bodies', async () => {
    const customer = await stripe.customers.create({
      email: 'buyer@example.com',
      metadata: { account_id: '123456789012' },
    });
    expect(customer).toMatchObject({
      object: 'customer',
      email: 'buyer@example.com',
      metadata: { account_id: '123456789012' },
    });
    expect((await stripe.customers.retrieve(customer.id)).id).toBe(customer.id);

    const product = await stripe.products.create({ id: 'prod-abcdefghij0123456789', name: 'A product' });
    expect(product.id).toBe('prod-abcdefghij0123456789');
    const monthly = await stripe.prices.create({
      product: product.id,
      currency: 'usd',
      unit_amount_decimal: Stripe.Decimal.from('500.0001'),
      recurring: { interval: 'month' },
    });
    expect(monthly).toMatchObject({
      type: 'recurring',
      recurring: { interval: 'month', usage_type: 'licensed' },
    });
    // Sent and answered as an exact decimal string, never a float.
    expect(String(monthly.unit_amount_decimal)).toBe('500.0001');
    expect(server.requests.at(-1)?.params.unit_amount_decimal).toBe('500.0001');
    const signUp = await stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 100 });
    expect(signUp.type).toBe('one_time');

    const sub = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: monthly.id }],
      add_invoice_items: [{ price: signUp.id }],
      metadata: { subscription_id: 'sub-0123456789abcdef0' },
    });
    expect(sub).toMatchObject({
      status: 'active',
      cancel_at_period_end: false,
      metadata: { subscription_id: 'sub-0123456789abcdef0' },
    });
    expect(sub.items.data.map((i) => i.price.id)).toEqual([monthly.id]);
    // The nested array arrived as an array.
    expect(server.requests.at(-1)?.params).toMatchObject({
      items: [{ price: monthly.id }],
      add_invoice_items: [{ price: signUp.id }],
    });
    const invoice = await stripe.invoices.retrieve(sub.latest_invoice as string);
    expect(invoice).toMatchObject({ status: 'paid', amount_due: 600, customer: customer.id });

    const cancelling = await stripe.subscriptions.update(sub.id, { cancel_at_period_end: true });
    expect(cancelling).toMatchObject({ status: 'active', cancel_at_period_end: true });
    expect((await stripe.subscriptions.cancel(sub.id)).status).toBe('canceled');
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('canceled');
  });

  it("answers errors in Stripe's shape, which the SDK turns into its typed errors", async () => {
    const missing = await errorOf(stripe.customers.retrieve('cus_nothere'));
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'id' });

    const noParam = await errorOf(stripe.prices.create({ currency: 'usd', unit_amount: 1 }));
    expect(noParam).toMatchObject({
      statusCode: 400,
      type: 'StripeInvalidRequestError',
      code: 'parameter_missing',
      param: 'product',
    });

    const badKey = await errorOf(server.client({ apiKey: 'sk_test_wrong' }).customers.create({}));
    expect(badKey).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(badKey.statusCode).toBe(401);
  });

  it('replays the same idempotency key with the same request, and refuses it with another', async () => {
    const first = await stripe.customers.create({ email: 'a@example.com' }, { idempotencyKey: 'key-same' });
    const again = await stripe.customers.create({ email: 'a@example.com' }, { idempotencyKey: 'key-same' });
    expect(again.id).toBe(first.id);
    expect(server.requests.at(-1)).toMatchObject({ idempotencyKey: 'key-same', replayed: true });
    expect(server.objects('customer').filter((c) => c.email === 'a@example.com')).toHaveLength(1);

    const other = await errorOf(
      stripe.customers.create({ email: 'b@example.com' }, { idempotencyKey: 'key-same' }),
    );
    expect(other).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(other).toMatchObject({ statusCode: 400, type: 'StripeIdempotencyError' });
  });

  it.each(['500', 'drop', 'drop-after'] as const)(
    'lets the SDK retry a %s without creating twice',
    async (mode) => {
      const email = `retry-${mode}@example.com`;
      server.failNext(2, mode, /^POST \/v1\/customers$/);
      const customer = await stripe.customers.create({ email }, { idempotencyKey: `key-retry-${mode}` });
      expect(
        server
          .objects('customer')
          .filter((c) => c.email === email)
          .map((c) => c.id),
      ).toEqual([customer.id]);
      const tries = server.requests.filter((r) => r.idempotencyKey === `key-retry-${mode}`);
      expect(tries.map((r) => r.failed)).toEqual([mode, mode, null]);
      // After a drop-after the request had already taken effect: the retry is a replay.
      expect(tries.at(-1)?.replayed).toBe(mode === 'drop-after');
    },
  );

  it('takes meter events for a meter, once per identifier', async () => {
    const customer = await stripe.customers.create({});
    const meter = await stripe.billing.meters.create({
      display_name: 'Instance seconds',
      event_name: 'instance_seconds',
      default_aggregation: { formula: 'sum' },
    });
    const event = await stripe.billing.meterEvents.create({
      event_name: meter.event_name,
      identifier: 'usage-1',
      payload: { stripe_customer_id: customer.id, value: '3600' },
    });
    expect(event).toMatchObject({ identifier: 'usage-1', payload: { value: '3600' } });
    const dup = await errorOf(
      stripe.billing.meterEvents.create({
        event_name: meter.event_name,
        identifier: 'usage-1',
        payload: { stripe_customer_id: customer.id, value: '1' },
      }),
    );
    expect(dup).toMatchObject({ statusCode: 400, code: 'resource_already_exists' });
    expect(server.objects('billing.meter_event')).toHaveLength(1);
  });

  it('builds signed webhook events that the SDK verifies, and only with the right secret and a fresh timestamp', () => {
    const secret = newStripeWebhookSecret();
    const event = stripeTestEvent('invoice.paid', { id: 'in_1', object: 'invoice', status: 'paid' });
    const { payload, signature } = signStripePayload(event, secret);
    expect(Stripe.webhooks.constructEvent(payload, signature, secret)).toMatchObject({
      id: event.id,
      type: 'invoice.paid',
    });
    expect(() => Stripe.webhooks.constructEvent(payload, signature, newStripeWebhookSecret())).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
    expect(() => Stripe.webhooks.constructEvent(payload.replace('paid', 'void'), signature, secret)).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
    const stale = signStripePayload(event, secret, Math.floor(Date.now() / 1000) - 3600);
    expect(() => Stripe.webhooks.constructEvent(stale.payload, stale.signature, secret)).toThrow(/tolerance/);
  });
});
