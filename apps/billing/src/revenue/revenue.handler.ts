import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  BillingPattern,
  revenueGetRequestSchema,
  type RevenueGetRequest,
  type RevenueView,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { RevenueService } from './revenue.service.js';

@Controller()
export class RevenueHandler {
  constructor(private readonly revenue: RevenueService) {}

  @MessagePattern(BillingPattern.revenueGet)
  get(@Payload(new ZodPayloadPipe(revenueGetRequestSchema)) req: RevenueGetRequest): Promise<RevenueView> {
    return this.revenue.report(req.caller, req.month, req.sellerId);
  }
}
