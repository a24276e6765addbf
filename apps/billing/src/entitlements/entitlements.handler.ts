import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  BillingPattern,
  entitlementCheckRequestSchema,
  type EntitlementCheckRequest,
  type EntitlementCheckResponse,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { EntitlementsService } from './entitlements.service.js';

@Controller()
export class EntitlementsHandler {
  constructor(private readonly entitlements: EntitlementsService) {}

  /** Read-only. */
  @MessagePattern(BillingPattern.entitlementCheck)
  check(@Payload(new ZodPayloadPipe(entitlementCheckRequestSchema)) req: EntitlementCheckRequest): Promise<EntitlementCheckResponse> {
    return this.entitlements.check(req.accountId, req.productCodes);
  }
}
