import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  BillingPattern,
  stripeEventRequestSchema,
  type StripeEventRequest,
  type StripeEventResult,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { StripeEventsService } from './stripe-events.service.js';

@Controller()
export class StripeEventsHandler {
  constructor(private readonly events: StripeEventsService) {}

  /** A webhook event the gateway verified. Idempotent by event id: a reclaimed request changes nothing twice. */
  @MessagePattern(BillingPattern.stripeEvent)
  handle(
    @Payload(new ZodPayloadPipe(stripeEventRequestSchema)) req: StripeEventRequest,
  ): Promise<StripeEventResult> {
    return this.events.handle(req.event);
  }
}
