import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  PermissionPattern,
  listSigningKeysRequestSchema,
  registerSigningKeyRequestSchema,
  signingKeyInternalGetRequestSchema,
  signingKeyRequestSchema,
  type ListSigningKeysRequest,
  type RegisterSigningKeyRequest,
  type SigningKeyInternalGetRequest,
  type SigningKeyRequest,
  type SigningKeyView,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { SigningKeysService } from './signing-keys.service.js';

/** Register and revoke are idempotent (a reclaimed request answers the same); list and get read. */
@Controller()
export class SigningKeysHandler {
  constructor(private readonly keys: SigningKeysService) {}

  @MessagePattern(PermissionPattern.signingKeyRegister)
  register(
    @Payload(new ZodPayloadPipe(registerSigningKeyRequestSchema)) req: RegisterSigningKeyRequest,
  ): Promise<SigningKeyView> {
    return this.keys.register(req.caller, req.accountId, req.key);
  }

  @MessagePattern(PermissionPattern.signingKeyList)
  list(
    @Payload(new ZodPayloadPipe(listSigningKeysRequestSchema)) req: ListSigningKeysRequest,
  ): Promise<SigningKeyView[]> {
    return this.keys.list(req.caller, req.accountId);
  }

  @MessagePattern(PermissionPattern.signingKeyGet)
  get(@Payload(new ZodPayloadPipe(signingKeyRequestSchema)) req: SigningKeyRequest): Promise<SigningKeyView> {
    return this.keys.get(req.caller, req.accountId, req.keyId);
  }

  /** Internal: whether a seller's key is still active, for the catalog and the bundler. */
  @MessagePattern(PermissionPattern.signingKeyInternalGet)
  internalGet(
    @Payload(new ZodPayloadPipe(signingKeyInternalGetRequestSchema)) req: SigningKeyInternalGetRequest,
  ): Promise<SigningKeyView> {
    return this.keys.internalGet(req.accountId, req.keyId);
  }

  @MessagePattern(PermissionPattern.signingKeyRevoke)
  revoke(
    @Payload(new ZodPayloadPipe(signingKeyRequestSchema)) req: SigningKeyRequest,
  ): Promise<SigningKeyView> {
    return this.keys.revoke(req.caller, req.accountId, req.keyId);
  }
}
