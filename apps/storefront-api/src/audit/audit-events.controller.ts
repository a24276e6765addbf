import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  PermissionPattern,
  listAuditEventsQuerySchema,
  type AuditEventView,
  type Caller,
  type ListAuditEventsQuery,
  type Page,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/audit-events')
export class AuditEventsController {
  constructor(private readonly services: ServiceClients) {}

  @Get()
  @ApiOperation({
    summary:
      'The audit log, newest first. Admins: everything, filtered by actorId, action, resourceType, resourceId or imageId. An image owner: ?imageId= of an image it owns.',
  })
  list(
    @CurrentCaller() caller: Caller,
    @Query(new ZodValidationPipe(listAuditEventsQuerySchema)) query: ListAuditEventsQuery,
  ): Promise<Page<AuditEventView>> {
    return this.services.call('permission', PermissionPattern.auditEventList, { caller, ...query });
  }
}
