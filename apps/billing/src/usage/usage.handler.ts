import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  BillingPattern,
  usageGetRequestSchema,
  type UsageGetRequest,
  type UsageView,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { UsageService } from './usage.service.js';

@Controller()
export class UsageHandler {
  constructor(private readonly usage: UsageService) {}

  @MessagePattern(BillingPattern.usageGet)
  get(@Payload(new ZodPayloadPipe(usageGetRequestSchema)) req: UsageGetRequest): Promise<UsageView> {
    return this.usage.current(req.caller, req.accountId);
  }
}
