import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  PermissionPattern,
  listAuditEventsRequestSchema,
  type AuditEventView,
  type ListAuditEventsRequest,
  type Page,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { AuditService } from './audit.service.js';

@Controller()
export class AuditHandler {
  constructor(private readonly audit: AuditService) {}

  @MessagePattern(PermissionPattern.auditEventList)
  list(@Payload(new ZodPayloadPipe(listAuditEventsRequestSchema)) req: ListAuditEventsRequest): Promise<Page<AuditEventView>> {
    return this.audit.list(req);
  }
}
