import { Body, Controller, Get, Param, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  ErrorCode,
  PermissionPattern,
  imageIdSchema,
  listSharedImagesQuerySchema,
  respondToShareBodySchema,
  type Caller,
  type ListSharedImagesQuery,
  type Page,
  type RespondToShareBody,
  type SharedImageView,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

const imageIdParam = new ZodValidationPipe(imageIdSchema, ErrorCode.InvalidAMIIDMalformed, 'imageId');

/** Images shared with the caller, and its answer to each share (Glance's image members). */
@ApiTags('shared images')
@ApiBearerAuth()
@Controller('v1/shared-images')
export class SharedImagesController {
  constructor(private readonly services: ServiceClients) {}

  @Get()
  @ApiOperation({
    summary: 'Images shared with the caller, oldest share first; ?state=pending|accepted|rejected. Pass nextCursor back as cursor.',
  })
  list(
    @CurrentCaller() caller: Caller,
    @Query(new ZodValidationPipe(listSharedImagesQuerySchema)) query: ListSharedImagesQuery,
  ): Promise<Page<SharedImageView>> {
    return this.services.call('permission', PermissionPattern.sharedImageList, { caller, ...query });
  }

  @Put(':imageId')
  @ApiOperation({ summary: 'Accept or reject an image shared with the caller. The launch permission holds either way.' })
  @ApiBody({ schema: openApiSchema(respondToShareBodySchema) })
  respond(
    @CurrentCaller() caller: Caller,
    @Param('imageId', imageIdParam) imageId: string,
    @Body(new ZodValidationPipe(respondToShareBodySchema)) body: RespondToShareBody,
  ): Promise<SharedImageView> {
    return this.services.call('permission', PermissionPattern.sharedImageRespond, { caller, imageId, state: body.state });
  }
}
