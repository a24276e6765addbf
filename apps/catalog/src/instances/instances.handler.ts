import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  CatalogInstancePattern,
  instanceRequestSchema,
  internalGetInstanceRequestSchema,
  launchInstancesRequestSchema,
  listInstancesRequestSchema,
  type InstanceChanged,
  type InstancePage,
  type InstanceRequest,
  type InstanceView,
  type InternalGetInstanceRequest,
  type LaunchInstancesRequest,
  type LaunchResult,
  type ListInstancesRequest,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { InstancesService } from './instances.service.js';

@Controller()
export class InstancesHandler {
  constructor(private readonly instances: InstancesService) {}

  /** Idempotent: the reservation id derives from the client token, or else from the request id. */
  @MessagePattern(CatalogInstancePattern.instanceLaunch)
  launch(@Payload(new ZodPayloadPipe(launchInstancesRequestSchema)) req: LaunchInstancesRequest): Promise<LaunchResult> {
    return this.instances.launch(req.caller, req.launch);
  }

  @MessagePattern(CatalogInstancePattern.instanceList)
  list(@Payload(new ZodPayloadPipe(listInstancesRequestSchema)) req: ListInstancesRequest): Promise<InstancePage> {
    return this.instances.list(req);
  }

  @MessagePattern(CatalogInstancePattern.instanceGet)
  get(@Payload(new ZodPayloadPipe(instanceRequestSchema)) req: InstanceRequest): Promise<InstanceView> {
    return this.instances.get(req.caller, req.instanceId);
  }

  /** Idempotent: terminating again changes nothing and answers the current state. */
  @MessagePattern(CatalogInstancePattern.instanceTerminate)
  terminate(@Payload(new ZodPayloadPipe(instanceRequestSchema)) req: InstanceRequest): Promise<InstanceView> {
    return this.instances.terminate(req.caller, req.instanceId);
  }

  @MessagePattern(CatalogInstancePattern.instanceInternalGet)
  internalGet(@Payload(new ZodPayloadPipe(internalGetInstanceRequestSchema)) req: InternalGetInstanceRequest): Promise<InstanceChanged> {
    return this.instances.internalGet(req.instanceId);
  }
}
