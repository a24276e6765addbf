import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  PermissionPattern,
  getLaunchPermissionRequestSchema,
  modifyLaunchPermissionRequestSchema,
  resetLaunchPermissionRequestSchema,
  type GetLaunchPermissionRequest,
  type LaunchPermissionView,
  type ModifyLaunchPermissionRequest,
  type ResetLaunchPermissionRequest,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { LaunchPermissionsService } from './launch-permissions.service.js';

/** Modify and reset are idempotent: run twice, the second run finds nothing to change. */
@Controller()
export class LaunchPermissionsHandler {
  constructor(private readonly launchPermissions: LaunchPermissionsService) {}

  @MessagePattern(PermissionPattern.launchPermissionGet)
  get(@Payload(new ZodPayloadPipe(getLaunchPermissionRequestSchema)) req: GetLaunchPermissionRequest): Promise<LaunchPermissionView> {
    return this.launchPermissions.get(req.caller, req.imageId);
  }

  @MessagePattern(PermissionPattern.launchPermissionModify)
  modify(
    @Payload(new ZodPayloadPipe(modifyLaunchPermissionRequestSchema)) req: ModifyLaunchPermissionRequest,
  ): Promise<LaunchPermissionView> {
    return this.launchPermissions.modify(req.caller, req.imageId, req.add, req.remove);
  }

  @MessagePattern(PermissionPattern.launchPermissionReset)
  reset(
    @Payload(new ZodPayloadPipe(resetLaunchPermissionRequestSchema)) req: ResetLaunchPermissionRequest,
  ): Promise<LaunchPermissionView> {
    return this.launchPermissions.reset(req.caller, req.imageId);
  }
}
