import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  BillingPattern,
  subscriptionCancelRequestSchema,
  subscriptionCreateRequestSchema,
  subscriptionGetRequestSchema,
  subscriptionListRequestSchema,
  type Page,
  type SubscriptionCancelRequest,
  type SubscriptionCreateRequest,
  type SubscriptionGetRequest,
  type SubscriptionListRequest,
  type SubscriptionView,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { SubscriptionsService } from './subscriptions.service.js';

@Controller()
export class SubscriptionsHandler {
  constructor(private readonly subscriptions: SubscriptionsService) {}

  /** Idempotent by request id: a replay gets the subscription the first run made. */
  @MessagePattern(BillingPattern.subscriptionCreate)
  create(@Payload(new ZodPayloadPipe(subscriptionCreateRequestSchema)) req: SubscriptionCreateRequest): Promise<SubscriptionView> {
    return this.subscriptions.create(req.caller, req.productCode);
  }

  @MessagePattern(BillingPattern.subscriptionList)
  list(@Payload(new ZodPayloadPipe(subscriptionListRequestSchema)) req: SubscriptionListRequest): Promise<Page<SubscriptionView>> {
    return this.subscriptions.list(req.caller, req.limit, req.cursor, req.status);
  }

  @MessagePattern(BillingPattern.subscriptionGet)
  get(@Payload(new ZodPayloadPipe(subscriptionGetRequestSchema)) req: SubscriptionGetRequest): Promise<SubscriptionView> {
    return this.subscriptions.get(req.caller, req.subscriptionId);
  }

  /** Idempotent: cancelling again answers the same state. */
  @MessagePattern(BillingPattern.subscriptionCancel)
  cancel(@Payload(new ZodPayloadPipe(subscriptionCancelRequestSchema)) req: SubscriptionCancelRequest): Promise<SubscriptionView> {
    return this.subscriptions.cancel(req.caller, req.subscriptionId);
  }
}
