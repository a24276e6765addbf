import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  PermissionPattern,
  launchDecisionRequestSchema,
  type LaunchDecision,
  type LaunchDecisionRequest,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { LaunchDecisionService } from './launch-decision.service.js';

@Controller()
export class LaunchDecisionHandler {
  constructor(private readonly decisions: LaunchDecisionService) {}

  /** Read-only: safe to run twice. */
  @MessagePattern(PermissionPattern.launchDecide)
  decide(@Payload(new ZodPayloadPipe(launchDecisionRequestSchema)) req: LaunchDecisionRequest): Promise<LaunchDecision> {
    return this.decisions.decide(req.accountId, req.imageId);
  }
}
