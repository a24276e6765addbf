import Stripe from 'stripe';
import { ErrorCode, stripeEventRequestSchema, type StripeEventRequest } from '@imagemart/contracts';
import { ApiProblem } from '../problem/api-problem.js';

/**
 * Checks a Stripe webhook with the SDK (`constructEvent`, HMAC-SHA256 over the exact bytes
 * received) and answers the event, or throws:
 * - 400 `SignatureDoesNotMatch`: no `Stripe-Signature` header, or no signature in it matches the
 *   body under the endpoint's secret (a forged or altered body);
 * - 400 `RequestExpired`: the signature matches but its timestamp is older than `toleranceS`
 *   (a replayed delivery);
 * - 400 `MalformedRequest`: a signed body that is not an event.
 */
export function verifyStripeWebhook(
  rawBody: Buffer,
  signature: string | undefined,
  secret: string,
  toleranceS: number,
): StripeEventRequest['event'] {
  if (!signature)
    throw new ApiProblem(ErrorCode.SignatureDoesNotMatch, 'The Stripe-Signature header is missing.');
  let event: unknown;
  try {
    event = Stripe.webhooks.constructEvent(rawBody, signature, secret, toleranceS);
  } catch (err) {
    // The signature held, but the body is no event the SDK can read (not JSON, a thin v2 event).
    if (!(err instanceof Stripe.errors.StripeSignatureVerificationError)) {
      throw new ApiProblem(ErrorCode.MalformedRequest, 'The webhook body is not a Stripe event.');
    }
    // Tell a stale delivery from a bad signature: checked again without the age limit, a stale one passes.
    let signedButOld = false;
    try {
      Stripe.webhooks.constructEvent(rawBody, signature, secret, 0);
      signedButOld = true;
    } catch {
      signedButOld = false;
    }
    if (signedButOld)
      throw new ApiProblem(
        ErrorCode.RequestExpired,
        `The webhook's signature timestamp is more than ${toleranceS} seconds old.`,
      );
    throw new ApiProblem(ErrorCode.SignatureDoesNotMatch, 'The webhook signature does not match its body.');
  }
  const parsed = stripeEventRequestSchema.shape.event.safeParse(event);
  if (!parsed.success)
    throw new ApiProblem(ErrorCode.MalformedRequest, 'The webhook body is not a Stripe event.');
  return parsed.data;
}
