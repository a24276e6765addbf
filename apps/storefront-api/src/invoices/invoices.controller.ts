import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import {
  BillingPattern,
  ErrorCode,
  invoiceIdSchema,
  listInvoicesQuerySchema,
  type Caller,
  type InvoiceSummaryView,
  type InvoiceView,
  type Page,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

const invoiceIdParam = new ZodValidationPipe(
  invoiceIdSchema,
  ErrorCode.InvalidInvoiceIDMalformed,
  'invoiceId',
);

/** A buyer's monthly invoices and credit notes. Only the buyer's own (an admin's: anyone's). */
@ApiTags('billing')
@ApiBearerAuth()
@Controller('v1/invoices')
export class InvoicesController {
  constructor(private readonly services: ServiceClients) {}

  @Get()
  @ApiOperation({
    summary:
      'My invoices and credit notes, newest first. Pass nextCursor back as cursor for the next page. An admin may pass accountId; anyone else naming another account gets 403 UnauthorizedOperation.',
  })
  list(
    @CurrentCaller() caller: Caller,
    @Query(new ZodValidationPipe(listInvoicesQuerySchema)) query: z.infer<typeof listInvoicesQuerySchema>,
  ): Promise<Page<InvoiceSummaryView>> {
    return this.services.call('billing', BillingPattern.invoiceList, { caller, ...query });
  }

  @Get(':invoiceId')
  @ApiOperation({
    summary:
      "One of my invoices or credit notes with its lines; another account's answers 404 InvalidInvoiceID.NotFound.",
  })
  get(
    @CurrentCaller() caller: Caller,
    @Param('invoiceId', invoiceIdParam) invoiceId: string,
  ): Promise<InvoiceView> {
    return this.services.call('billing', BillingPattern.invoiceGet, { caller, invoiceId });
  }
}
