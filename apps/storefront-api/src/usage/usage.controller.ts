import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  BillingPattern,
  usageQuerySchema,
  type Caller,
  type UsageQuery,
  type UsageView,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

/** A buyer's metered usage of the current month so far. */
@ApiTags('billing')
@ApiBearerAuth()
@Controller('v1/usage')
export class UsageController {
  constructor(private readonly services: ServiceClients) {}

  @Get()
  @ApiOperation({
    summary:
      "My usage this calendar month so far (UTC), per product and instance type, priced as the invoice will price it; running instances count up to now. An admin may pass accountId to read another account's.",
  })
  get(
    @CurrentCaller() caller: Caller,
    @Query(new ZodValidationPipe(usageQuerySchema)) query: UsageQuery,
  ): Promise<UsageView> {
    return this.services.call('billing', BillingPattern.usageGet, { caller, ...query });
  }
}
