import pg from 'pg';
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
import { http, Platform, type TestAccount } from '../support/platform.js';
import { ReliabilityRecorder } from './reliability-report.js';

/**
 * Hostile webhooks at POST /v1/webhooks/stripe, the one public route that changes state: a body
 * signed with another secret, a real signature over another body, a stale signature, no or a
 * malformed signature header, a signed body that is not an event, and the replay of a valid event
 * (the same delivery again, re-signed, and two at once). Each refusal must be a 400 problem, each
 * replay a 200 `duplicate`, and billing's state (the subscription over HTTP, and billing's rows of
 * the subscription, its Stripe mirror, invoices, applied events and outbox) must read back exactly
 * as it was.
 */
let platform: Platform;
let stripe: StripeTestServer;
let base: string;
let db: pg.Client;
let buyer: TestAccount;
let subscriptionId: string;
let remote: StripeObject;
const webhookSecret = newStripeWebhookSecret();
const TOLERANCE_S = 300;
const report = new ReliabilityRecorder('webhooks');

beforeAll(async () => {
  stripe = await startStripeTestServer();
  platform = await Platform.start('webhooks', {
    ...stripe.env(),
    STRIPE_WEBHOOK_SECRET: webhookSecret,
    STRIPE_WEBHOOK_TOLERANCE_S: String(TOLERANCE_S),
  });
  base = platform.baseUrl;
  db = new pg.Client({ connectionString: platform.env['DATABASE_URL'] });
  await db.connect();

  const seller = await platform.createAccount(['seller']);
  buyer = await platform.createAccount(['buyer']);
  const listing = await http(base, 'POST', '/v1/listings', {
    key: seller.key,
    body: { title: 'Webhook target', summary: 'A paid product', categories: ['security'], pricingType: 'paid' },
  });
  expect(listing.status, JSON.stringify(listing.body)).toBe(201);
  const code = listing.body.productCode as string;
  const priced = await http(base, 'PUT', `/v1/products/${code}/pricing`, {
    key: seller.key,
    body: { currency: 'USD', instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.01' } }], monthlyFee: '4.99' },
  });
  expect(priced.status, JSON.stringify(priced.body)).toBe(200);
  const sub = await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: code } });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  subscriptionId = sub.body.id as string;
  remote = await waitFor(
    () => stripe.objects('subscription').find((s) => (s.metadata as Record<string, string>).subscription_id === subscriptionId),
    { timeoutMs: 30_000, what: 'billing to create the Stripe subscription' },
  );
  // Billing has recorded the link: from here on only webhooks change the subscription.
  await waitFor(async () => (await db.query('SELECT 1 FROM billing.stripe_subscription WHERE subscription_id = $1', [subscriptionId])).rowCount === 1, {
    timeoutMs: 30_000,
    what: 'billing to record the Stripe subscription',
  });
}, 120_000);

afterAll(async () => {
  await db?.end();
  await platform?.stop();
  await stripe?.close();
});

/** Everything a webhook can change, read back: over HTTP as the buyer sees it, and billing's rows. */
async function state(): Promise<string> {
  const sub = await http(base, 'GET', `/v1/subscriptions/${subscriptionId}`, { key: buyer.key });
  expect(sub.status, JSON.stringify(sub.body)).toBe(200);
  const rows = async (sql: string) => (await db.query(sql)).rows as unknown[];
  return JSON.stringify({
    subscription: sub.body,
    subscriptions: await rows('SELECT * FROM billing.subscription ORDER BY id'),
    stripeSubscriptions: await rows('SELECT * FROM billing.stripe_subscription ORDER BY subscription_id'),
    invoices: await rows('SELECT * FROM billing.stripe_invoice ORDER BY stripe_id'),
    events: await rows('SELECT id, type, stripe_created_at, outcome, created_at FROM billing.stripe_event ORDER BY id'),
    outbox: await rows('SELECT id FROM billing.outbox_event ORDER BY id'),
  });
}

const post = (payload: string, headers: Record<string, string> = {}) => http(base, 'POST', '/v1/webhooks/stripe', { rawBody: payload, headers });
const signed = (payload: string, signature: string) => post(payload, { 'stripe-signature': signature });

/** An invoice of the subscription, as Stripe's invoice events carry it. */
function invoice(id: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    object: 'invoice',
    customer: remote.customer,
    currency: 'usd',
    amount_due: 499,
    amount_paid: 0,
    status: 'open',
    parent: { type: 'subscription_details', subscription_details: { subscription: remote.id } },
    ...fields,
  };
}

/** A violation, or none: a clear 400 problem with this code. */
function refusal(label: string, res: { status: number; headers: Headers; body: unknown }, code: string): string | undefined {
  const type = res.headers.get('content-type') ?? '';
  const body = res.body as { code?: string; status?: number } | undefined;
  if (res.status !== 400 || !type.startsWith('application/problem+json') || body?.code !== code || body.status !== 400) {
    return `${label}: ${res.status} ${type} ${JSON.stringify(res.body).slice(0, 200)} (expected 400 ${code})`;
  }
  return undefined;
}

describe('hostile webhooks', () => {
  it('refuses forged, altered, stale, unsigned and malformed deliveries with a 400 problem, and changes nothing', async () => {
    const failed = stripeTestEvent('invoice.payment_failed', invoice(`in_forged${Date.now()}`));
    const payload = JSON.stringify(failed);
    const now = Math.floor(Date.now() / 1000);
    // Another body of the same shape that would cancel the subscription if it were taken.
    const other = JSON.stringify(stripeTestEvent('customer.subscription.deleted', { ...remote, status: 'canceled', ended_at: now }));
    const goodHeader = signStripePayload(payload, webhookSecret).signature;
    const [, signedAt, v1] = /t=(\d+),v1=([0-9a-f]+)/.exec(goodHeader)!;

    const cases: { label: string; send: () => ReturnType<typeof post>; code: string }[] = [
      { label: 'signed with another secret', send: () => signed(payload, signStripePayload(payload, newStripeWebhookSecret()).signature), code: 'SignatureDoesNotMatch' },
      { label: 'a valid signature over another body', send: () => signed(other, goodHeader), code: 'SignatureDoesNotMatch' },
      { label: 'the signed body with one byte changed', send: () => signed(payload.replace('"amount_due":499', '"amount_due":498'), goodHeader), code: 'SignatureDoesNotMatch' },
      { label: 'the signed body with a trailing space', send: () => signed(`${payload} `, goodHeader), code: 'SignatureDoesNotMatch' },
      { label: 'a valid signature under another timestamp', send: () => signed(payload, `t=${Number(signedAt) - 1},v1=${v1}`), code: 'SignatureDoesNotMatch' },
      {
        label: `stale: signed ${TOLERANCE_S + 60} s ago`,
        send: () => signed(payload, signStripePayload(payload, webhookSecret, now - TOLERANCE_S - 60).signature),
        code: 'RequestExpired',
      },
      { label: 'stale: signed a day ago', send: () => signed(payload, signStripePayload(payload, webhookSecret, now - 86_400).signature), code: 'RequestExpired' },
      { label: 'no Stripe-Signature header', send: () => post(payload), code: 'SignatureDoesNotMatch' },
      { label: 'an empty Stripe-Signature header', send: () => signed(payload, ''), code: 'SignatureDoesNotMatch' },
      { label: 'a header with no v1 signature', send: () => signed(payload, `t=${now}`), code: 'SignatureDoesNotMatch' },
      { label: 'a header that is not Stripe-shaped', send: () => signed(payload, 'sha256=deadbeef'), code: 'SignatureDoesNotMatch' },
      { label: 'an API-style bearer instead of a signature', send: () => post(payload, { authorization: 'Bearer imk_forged' }), code: 'SignatureDoesNotMatch' },
      { label: 'a signed body that is not an event', send: () => signed('{"object":"event"}', signStripePayload('{"object":"event"}', webhookSecret).signature), code: 'MalformedRequest' },
      { label: 'a signed body that is not JSON', send: () => signed('not json', signStripePayload('not json', webhookSecret).signature), code: 'MalformedRequest' },
      {
        label: 'a signed thin event notification',
        send: () => signed('{"object":"v2.core.event"}', signStripePayload('{"object":"v2.core.event"}', webhookSecret).signature),
        code: 'MalformedRequest',
      },
    ];

    const before = await state();
    const violations: string[] = [];
    for (const c of cases) {
      const problem = refusal(c.label, await c.send(), c.code);
      if (problem) violations.push(problem);
    }
    const after = await state();
    if (after !== before) violations.push('state changed');
    report.add({ hostile_inputs: cases.length, wrongly_accepted: violations.length });
    expect(violations).toEqual([]);
    expect(after).toBe(before);
    // The same event, properly signed, is taken: the refusals were for their signatures alone.
    const good = await signed(payload, goodHeader);
    expect(good.status, JSON.stringify(good.body)).toBe(200);
    expect(good.body).toMatchObject({ received: true, eventId: failed.id, outcome: 'applied' });
    expect(await state()).not.toBe(after);
  });

  it('applies a replayed event once: the same delivery again, re-signed, or two at once answer 200 duplicate and change nothing', async () => {
    const paid = stripeTestEvent('invoice.paid', invoice(`in_replay${Date.now()}`, { status: 'paid', amount_paid: 499 }));
    const payload = JSON.stringify(paid);
    const header = signStripePayload(payload, webhookSecret).signature;
    const violations: string[] = [];
    let sent = 0;

    const first = await signed(payload, header);
    sent++;
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ eventId: paid.id, outcome: 'applied' });
    const applied = await state();
    expect(JSON.parse(applied).invoices).toContainEqual(expect.objectContaining({ stripe_id: paid.data.object['id'], status: 'paid' }));

    const duplicate = (label: string, res: Awaited<ReturnType<typeof post>>) => {
      sent++;
      if (res.status !== 200 || (res.body as { outcome?: string }).outcome !== 'duplicate') violations.push(`${label}: ${res.status} ${JSON.stringify(res.body)}`);
    };
    duplicate('the same delivery again', await signed(payload, header));
    // Stripe signs each delivery anew.
    duplicate('redelivered with a new signature', await signed(payload, signStripePayload(payload, webhookSecret, Math.floor(Date.now() / 1000) - 5).signature));
    const both = await Promise.all([signed(payload, header), signed(payload, header), signed(payload, header)]);
    for (const res of both) duplicate('three deliveries at once', res);
    const after = await state();
    if (after !== applied) violations.push('state changed by a replay');
    expect((await db.query('SELECT count(*)::int AS n FROM billing.stripe_event WHERE id = $1', [paid.id])).rows[0].n).toBe(1);

    // A new event delivered twice at once: exactly one delivery applies it.
    const failed = stripeTestEvent('invoice.payment_failed', invoice(`in_race${Date.now()}`));
    const racePayload = JSON.stringify(failed);
    const raceHeader = signStripePayload(racePayload, webhookSecret).signature;
    const race = await Promise.all([signed(racePayload, raceHeader), signed(racePayload, raceHeader)]);
    sent += race.length;
    const outcomes = race.map((r) => `${r.status} ${(r.body as { outcome?: string }).outcome}`).sort();
    if (JSON.stringify(outcomes) !== JSON.stringify(['200 applied', '200 duplicate'])) violations.push(`two at once: ${outcomes.join(', ')}`);
    expect((await db.query('SELECT count(*)::int AS n FROM billing.stripe_event WHERE id = $1', [failed.id])).rows[0].n).toBe(1);

    report.add({ hostile_inputs: sent - 2, wrongly_accepted: violations.length });
    expect(violations).toEqual([]);
    expect(after).toBe(applied);
  });
});
