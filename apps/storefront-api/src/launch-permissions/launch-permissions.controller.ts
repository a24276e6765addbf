import { Body, Controller, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  ErrorCode,
  PermissionPattern,
  imageIdSchema,
  modifyLaunchPermissionBodySchema,
  type Caller,
  type LaunchPermissionView,
  type ModifyLaunchPermissionBody,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

const imageIdParam = new ZodValidationPipe(imageIdSchema, ErrorCode.InvalidAMIIDMalformed, 'imageId');

/** An image's launch permissions, as EC2's Describe/Modify/ResetImageAttribute for launchPermission. */
@ApiTags('launch permissions')
@ApiBearerAuth()
@Controller('v1/images/:imageId/launch-permission')
export class LaunchPermissionsController {
  constructor(private readonly services: ServiceClients) {}

  @Get()
  @ApiOperation({
    summary: "An image's launch permissions (its owner, or an admin): { userId } items and { group: 'all' } when it is public.",
  })
  get(@CurrentCaller() caller: Caller, @Param('imageId', imageIdParam) imageId: string): Promise<LaunchPermissionView> {
    return this.services.call('permission', PermissionPattern.launchPermissionGet, { caller, imageId });
  }

  @Patch()
  @ApiOperation({
    summary:
      'Add and remove launch permissions in one request, all or nothing (owner, admin). Adding what is there or removing what is not changes nothing.',
  })
  @ApiBody({ schema: openApiSchema(modifyLaunchPermissionBodySchema) })
  modify(
    @CurrentCaller() caller: Caller,
    @Param('imageId', imageIdParam) imageId: string,
    @Body(new ZodValidationPipe(modifyLaunchPermissionBodySchema)) body: ModifyLaunchPermissionBody,
  ): Promise<LaunchPermissionView> {
    return this.services.call('permission', PermissionPattern.launchPermissionModify, {
      caller,
      imageId,
      add: body.add ?? [],
      remove: body.remove ?? [],
    });
  }

  @Post('reset')
  @HttpCode(200)
  @ApiOperation({ summary: 'Make the image private again: no group, no accounts (owner, admin).' })
  reset(@CurrentCaller() caller: Caller, @Param('imageId', imageIdParam) imageId: string): Promise<LaunchPermissionView> {
    return this.services.call('permission', PermissionPattern.launchPermissionReset, { caller, imageId });
  }
}
