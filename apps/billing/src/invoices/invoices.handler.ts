import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  BillingPattern,
  closeMonthRequestSchema,
  invoiceGetRequestSchema,
  invoiceListRequestSchema,
  type CloseMonthRequest,
  type CloseMonthResult,
  type InvoiceGetRequest,
  type InvoiceListRequest,
  type InvoiceSummaryView,
  type InvoiceView,
  type Page,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { InvoicesService } from './invoices.service.js';

@Controller()
export class InvoicesHandler {
  constructor(private readonly invoices: InvoicesService) {}

  @MessagePattern(BillingPattern.invoiceList)
  list(
    @Payload(new ZodPayloadPipe(invoiceListRequestSchema)) req: InvoiceListRequest,
  ): Promise<Page<InvoiceSummaryView>> {
    return this.invoices.list(req.caller, req.limit, req.cursor, req.accountId);
  }

  @MessagePattern(BillingPattern.invoiceGet)
  get(@Payload(new ZodPayloadPipe(invoiceGetRequestSchema)) req: InvoiceGetRequest): Promise<InvoiceView> {
    return this.invoices.get(req.caller, req.invoiceId);
  }

  /** Internal (no public route): idempotent, so a reclaimed request that runs twice bills nobody twice. */
  @MessagePattern(BillingPattern.invoicesCloseMonth)
  closeMonth(
    @Payload(new ZodPayloadPipe(closeMonthRequestSchema)) req: CloseMonthRequest,
  ): Promise<CloseMonthResult> {
    return this.invoices.closeMonth(req.month);
  }
}
