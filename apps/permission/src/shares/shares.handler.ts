import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  PermissionPattern,
  listSharedImagesRequestSchema,
  respondToShareRequestSchema,
  type ListSharedImagesRequest,
  type Page,
  type RespondToShareRequest,
  type SharedImageView,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { SharesService } from './shares.service.js';

@Controller()
export class SharesHandler {
  constructor(private readonly shares: SharesService) {}

  @MessagePattern(PermissionPattern.sharedImageList)
  list(@Payload(new ZodPayloadPipe(listSharedImagesRequestSchema)) req: ListSharedImagesRequest): Promise<Page<SharedImageView>> {
    return this.shares.list(req.caller, req.state, req.limit, req.cursor);
  }

  /** Idempotent: the same answer twice changes nothing the second time. */
  @MessagePattern(PermissionPattern.sharedImageRespond)
  respond(@Payload(new ZodPayloadPipe(respondToShareRequestSchema)) req: RespondToShareRequest): Promise<SharedImageView> {
    return this.shares.respond(req.caller, req.imageId, req.state);
  }
}
