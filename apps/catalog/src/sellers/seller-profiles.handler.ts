import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  CatalogPattern,
  getSellerProfileRequestSchema,
  putSellerProfileRequestSchema,
  type GetSellerProfileRequest,
  type PutSellerProfileRequest,
  type SellerProfileView,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { SellerProfilesService } from './seller-profiles.service.js';

@Controller()
export class SellerProfilesHandler {
  constructor(private readonly profiles: SellerProfilesService) {}

  @MessagePattern(CatalogPattern.sellerProfileGet)
  get(@Payload(new ZodPayloadPipe(getSellerProfileRequestSchema)) req: GetSellerProfileRequest): Promise<SellerProfileView> {
    return this.profiles.get(req.accountId);
  }

  /** Idempotent: the same body sets the same profile. */
  @MessagePattern(CatalogPattern.sellerProfilePut)
  put(@Payload(new ZodPayloadPipe(putSellerProfileRequestSchema)) req: PutSellerProfileRequest): Promise<SellerProfileView> {
    return this.profiles.put(req.caller, req.accountId, req.profile);
  }
}
