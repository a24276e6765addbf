import { Controller, Headers, HttpCode, Inject, Post, Req } from '@nestjs/common';
import { ApiExcludeEndpoint } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { APP_CONFIG } from '@imagemart/config';
import { BillingPattern, ErrorCode, type StripeEventResult } from '@imagemart/contracts';
import { Public } from '../auth/public.decorator.js';
import { ApiProblem } from '../problem/api-problem.js';
import { ServiceClients } from '../rpc/service-clients.js';
import type { StorefrontConfig } from '../storefront.config.js';
import { verifyStripeWebhook } from './stripe-webhook.verifier.js';

/**
 * Stripe's webhook endpoint (docs/stripe.md). No API key: Stripe proves itself with the
 * signature, checked on the raw body before anything else happens. A verified event goes to
 * billing, which applies it once per event id; a 2xx tells Stripe it is done, any other answer
 * makes Stripe deliver it again later, so an event billing could not take is not lost.
 */
@Controller('v1/webhooks')
export class StripeWebhookController {
  constructor(
    private readonly services: ServiceClients,
    @Inject(APP_CONFIG) private readonly config: StorefrontConfig,
  ) {}

  @Post('stripe')
  @Public()
  @HttpCode(200)
  // For Stripe, not for API clients: kept out of the OpenAPI document (docs/stripe.md describes it).
  @ApiExcludeEndpoint()
  async receive(
    @Req() request: FastifyRequest,
    @Headers('stripe-signature') signature: string | undefined,
  ): Promise<StripeEventResult & { received: true }> {
    const secret = this.config.STRIPE_WEBHOOK_SECRET;
    if (!secret)
      throw new ApiProblem(ErrorCode.RouteNotFound, 'Stripe webhooks are not enabled on this deployment.');
    const body = request.body;
    if (!Buffer.isBuffer(body))
      throw new ApiProblem(ErrorCode.UnsupportedMediaType, 'A Stripe webhook is sent as application/json.');
    const event = verifyStripeWebhook(body, signature, secret, this.config.STRIPE_WEBHOOK_TOLERANCE_S);
    const result = await this.services.call<StripeEventResult>('billing', BillingPattern.stripeEvent, {
      event,
    });
    return { received: true, ...result };
  }
}
