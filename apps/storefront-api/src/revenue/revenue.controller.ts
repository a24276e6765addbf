import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { BillingPattern, revenueQuerySchema, type Caller, type RevenueView } from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

/** A seller's monthly revenue report. */
@ApiTags('billing')
@ApiBearerAuth()
@Controller('v1/revenue')
export class RevenueController {
  constructor(private readonly services: ServiceClients) {}

  @Get()
  @ApiOperation({
    summary:
      "My revenue of a month (sellers), from that month's finalised invoices and credit notes: gross (markup, monthly and sign-up fees), the base usage cost the platform keeps, the platform fee and net. An admin may pass sellerId.",
  })
  get(
    @CurrentCaller() caller: Caller,
    @Query(new ZodValidationPipe(revenueQuerySchema)) query: z.infer<typeof revenueQuerySchema>,
  ): Promise<RevenueView> {
    return this.services.call('billing', BillingPattern.revenueGet, { caller, ...query });
  }
}
