import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@imagemart/contracts';
import { newStripeWebhookSecret, signStripePayload, stripeTestEvent } from '@imagemart/testing';
import { ApiProblem } from '../problem/api-problem.js';
import { verifyStripeWebhook } from './stripe-webhook.verifier.js';

const secret = newStripeWebhookSecret();
const event = stripeTestEvent('invoice.paid', { id: 'in_1', object: 'invoice', status: 'paid' });

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiProblem) return `${err.status} ${err.code}`;
    throw err;
  }
  return 'accepted';
};

describe('verifying a Stripe webhook with the SDK', () => {
  it('accepts the exact bytes Stripe signed, with a fresh timestamp', () => {
    const { payload, signature } = signStripePayload(event, secret);
    expect(verifyStripeWebhook(Buffer.from(payload), signature, secret, 300)).toMatchObject({
      id: event.id,
      type: 'invoice.paid',
      created: event.created,
    });
  });

  it('refuses a body changed after signing, another secret, or no signature: 400 SignatureDoesNotMatch', () => {
    const { payload, signature } = signStripePayload(event, secret);
    const bad = `400 ${ErrorCode.SignatureDoesNotMatch}`;
    expect(
      codeOf(() =>
        verifyStripeWebhook(Buffer.from(payload.replace('"paid"', '"void"')), signature, secret, 300),
      ),
    ).toBe(bad);
    // Re-serialised JSON is not the signed text (the reason the route reads the raw body).
    expect(
      codeOf(() =>
        verifyStripeWebhook(
          Buffer.from(JSON.stringify(JSON.parse(payload), null, 1)),
          signature,
          secret,
          300,
        ),
      ),
    ).toBe(bad);
    expect(
      codeOf(() => verifyStripeWebhook(Buffer.from(payload), signature, newStripeWebhookSecret(), 300)),
    ).toBe(bad);
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(payload), undefined, secret, 300))).toBe(bad);
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(payload), 'garbage', secret, 300))).toBe(bad);
  });

  it('refuses a correctly signed delivery older than the tolerance: 400 RequestExpired', () => {
    const stale = signStripePayload(event, secret, Math.floor(Date.now() / 1000) - 301);
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(stale.payload), stale.signature, secret, 300))).toBe(
      `400 ${ErrorCode.RequestExpired}`,
    );
    // The same stale delivery under another secret is a bad signature, not an old one.
    expect(
      codeOf(() =>
        verifyStripeWebhook(Buffer.from(stale.payload), stale.signature, newStripeWebhookSecret(), 300),
      ),
    ).toBe(`400 ${ErrorCode.SignatureDoesNotMatch}`);
  });

  it('refuses a signed body that is not an event: 400 MalformedRequest', () => {
    const { payload, signature } = signStripePayload(JSON.stringify({ hello: 'world' }), secret);
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(payload), signature, secret, 300))).toBe(
      `400 ${ErrorCode.MalformedRequest}`,
    );
  });
});
