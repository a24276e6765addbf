import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  PermissionPattern,
  authenticateRequestSchema,
  issueApiKeyRequestSchema,
  listApiKeysRequestSchema,
  revokeApiKeyRequestSchema,
  type ApiKeyView,
  type AuthenticateRequest,
  type AuthenticateResponse,
  type IssueApiKeyRequest,
  type ListApiKeysRequest,
  type RevokeApiKeyRequest,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { ApiKeysService } from './api-keys.service.js';

@Controller()
export class ApiKeysHandler {
  constructor(private readonly keys: ApiKeysService) {}

  @MessagePattern(PermissionPattern.apiKeyIssue)
  issue(@Payload(new ZodPayloadPipe(issueApiKeyRequestSchema)) req: IssueApiKeyRequest): Promise<ApiKeyView> {
    return this.keys.issue(req.caller, req.accountId, req.name, { hash: req.keyHash, prefix: req.prefix });
  }

  @MessagePattern(PermissionPattern.apiKeyList)
  list(@Payload(new ZodPayloadPipe(listApiKeysRequestSchema)) req: ListApiKeysRequest): Promise<ApiKeyView[]> {
    return this.keys.list(req.caller, req.accountId);
  }

  @MessagePattern(PermissionPattern.apiKeyRevoke)
  revoke(@Payload(new ZodPayloadPipe(revokeApiKeyRequestSchema)) req: RevokeApiKeyRequest): Promise<ApiKeyView> {
    return this.keys.revoke(req.caller, req.accountId, req.keyId);
  }

  @MessagePattern(PermissionPattern.apiKeyAuthenticate)
  authenticate(
    @Payload(new ZodPayloadPipe(authenticateRequestSchema)) req: AuthenticateRequest,
  ): Promise<AuthenticateResponse> {
    return this.keys.authenticate(req.keyHash);
  }
}
