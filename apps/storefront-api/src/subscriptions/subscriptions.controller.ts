import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import {
  BillingPattern,
  ErrorCode,
  createSubscriptionBodySchema,
  listSubscriptionsQuerySchema,
  subscriptionIdSchema,
  type Caller,
  type CreateSubscriptionBody,
  type Page,
  type SubscriptionView,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

const subscriptionIdParam = new ZodValidationPipe(subscriptionIdSchema, ErrorCode.InvalidSubscriptionIDMalformed, 'subscriptionId');

/** A buyer's subscriptions to products. Only the buyer's own are visible. */
@ApiTags('subscriptions')
@ApiBearerAuth()
@Controller('v1/subscriptions')
export class SubscriptionsController {
  constructor(private readonly services: ServiceClients) {}

  @Post()
  @ApiOperation({
    summary:
      'Subscribe to a product that is priced (buyer). 409 SubscriptionAlreadyExists while one is active; the same X-Request-Id again answers the subscription it made.',
  })
  @ApiBody({ schema: openApiSchema(createSubscriptionBodySchema) })
  create(
    @CurrentCaller() caller: Caller,
    @Body(new ZodValidationPipe(createSubscriptionBodySchema)) body: CreateSubscriptionBody,
  ): Promise<SubscriptionView> {
    return this.services.call('billing', BillingPattern.subscriptionCreate, { caller, productCode: body.productCode });
  }

  @Get()
  @ApiOperation({ summary: 'My subscriptions, newest first; optional status filter. Pass nextCursor back as cursor for the next page.' })
  list(
    @CurrentCaller() caller: Caller,
    @Query(new ZodValidationPipe(listSubscriptionsQuerySchema)) query: z.infer<typeof listSubscriptionsQuerySchema>,
  ): Promise<Page<SubscriptionView>> {
    return this.services.call('billing', BillingPattern.subscriptionList, { caller, ...query });
  }

  @Get(':subscriptionId')
  @ApiOperation({ summary: "One of my subscriptions; another account's answers 404 InvalidSubscriptionID.NotFound." })
  get(@CurrentCaller() caller: Caller, @Param('subscriptionId', subscriptionIdParam) subscriptionId: string): Promise<SubscriptionView> {
    return this.services.call('billing', BillingPattern.subscriptionGet, { caller, subscriptionId });
  }

  @Post(':subscriptionId/cancel')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Cancel at the end of the paid period: it stays active (cancelAtPeriodEnd) until currentPeriodEnd, then becomes canceled. Cancelling again answers the same; one not active answers 409 IncorrectState.',
  })
  cancel(@CurrentCaller() caller: Caller, @Param('subscriptionId', subscriptionIdParam) subscriptionId: string): Promise<SubscriptionView> {
    return this.services.call('billing', BillingPattern.subscriptionCancel, { caller, subscriptionId });
  }
}
