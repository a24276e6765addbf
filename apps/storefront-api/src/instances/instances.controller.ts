import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  CatalogInstancePattern,
  ErrorCode,
  INSTANCE_STATES,
  instanceIdSchema,
  launchInstancesBodySchema,
  listInstancesQuerySchema,
  type Caller,
  type InstancePage,
  type InstanceView,
  type LaunchInstancesBody,
  type LaunchResult,
  type ListInstancesQuery,
  type ListInstancesRequest,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

const instanceIdParam = new ZodValidationPipe(instanceIdSchema, ErrorCode.InvalidInstanceIDMalformed, 'instanceId');

/**
 * A buyer's instances (EC2 RunInstances, DescribeInstances, TerminateInstances). Any signed-in
 * account may launch what the launch decision allows it (a seller launches its own images, too);
 * each sees and terminates only its own instances.
 */
@ApiTags('instances')
@ApiBearerAuth()
@Controller('v1/instances')
export class InstancesController {
  constructor(private readonly services: ServiceClients) {}

  @Post()
  @ApiOperation({
    summary:
      'Launch count (default 1, at most 100) instances of an image, all or none. Allowed for the owner, a public image, or a launch ' +
      'permission naming you; a paid image also needs an active subscription (else 403 OptInRequired). The same clientToken ' +
      'with the same request answers the same instances; with a different one, 409 IdempotentParameterMismatch. Quotas: ' +
      '400 InstanceLimitExceeded, 429 RequestLimitExceeded.',
  })
  @ApiBody({ schema: openApiSchema(launchInstancesBodySchema) })
  launch(
    @CurrentCaller() caller: Caller,
    @Body(new ZodValidationPipe(launchInstancesBodySchema)) body: LaunchInstancesBody,
  ): Promise<LaunchResult> {
    return this.services.call('catalog', CatalogInstancePattern.instanceLaunch, { caller, launch: body });
  }

  @Get()
  @ApiOperation({ summary: 'My instances, newest first. Filters may repeat or list values with commas. Pass nextCursor back as cursor.' })
  @ApiQuery({ name: 'state', required: false, schema: { type: 'array', items: { type: 'string', enum: [...INSTANCE_STATES] } } })
  @ApiQuery({ name: 'image-id', required: false, description: 'ami-…' })
  @ApiQuery({ name: 'instance-type', required: false, description: 't3.micro, …' })
  @ApiQuery({ name: 'limit', required: false, description: '1 to 100, default 50' })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' })
  list(
    @CurrentCaller() caller: Caller,
    @Query(new ZodValidationPipe(listInstancesQuerySchema)) query: ListInstancesQuery,
  ): Promise<InstancePage> {
    const req: ListInstancesRequest = {
      caller,
      filters: {
        ...(query.state ? { state: query.state } : {}),
        ...(query['image-id'] ? { imageId: query['image-id'] } : {}),
        ...(query['instance-type'] ? { instanceType: query['instance-type'] } : {}),
      },
      limit: query.limit,
      ...(query.cursor ? { cursor: query.cursor } : {}),
    };
    return this.services.call('catalog', CatalogInstancePattern.instanceList, req);
  }

  @Get(':instanceId')
  @ApiOperation({ summary: "One of my instances; another account's answers 404 InvalidInstanceID.NotFound." })
  get(@CurrentCaller() caller: Caller, @Param('instanceId', instanceIdParam) instanceId: string): Promise<InstanceView> {
    return this.services.call('catalog', CatalogInstancePattern.instanceGet, { caller, instanceId });
  }

  @Post(':instanceId/terminate')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Terminate one of my instances: shutting-down at once (usage stops), terminated when the host confirms. Terminating again ' +
      'answers its current state and changes nothing.',
  })
  terminate(@CurrentCaller() caller: Caller, @Param('instanceId', instanceIdParam) instanceId: string): Promise<InstanceView> {
    return this.services.call('catalog', CatalogInstancePattern.instanceTerminate, { caller, instanceId });
  }
}
