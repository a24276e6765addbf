import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  ErrorCode,
  PermissionPattern,
  accountIdSchema,
  registerSigningKeyBodySchema,
  signingKeyIdSchema,
  type Caller,
  type RegisterSigningKeyBody,
  type SigningKeyView,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

const accountIdParam = new ZodValidationPipe(
  accountIdSchema,
  ErrorCode.InvalidAccountIDMalformed,
  'accountId',
);
const keyIdParam = new ZodValidationPipe(signingKeyIdSchema, ErrorCode.InvalidParameterValue, 'keyId');

/** Seller signing keys: the public keys that sign the manifests of bundles made on a seller's machine. */
@ApiTags('accounts')
@ApiBearerAuth()
@Controller('v1')
export class SigningKeysController {
  constructor(private readonly services: ServiceClients) {}

  @Post('accounts/:accountId/signing-keys')
  @ApiOperation({
    summary:
      'Register a public key (PEM: Ed25519, or RSA of 2048 bits or more) that signs manifests of bundles made with ' +
      '`imagemart bundle` (the account itself or an admin). Its id is its fingerprint, sha256:<hex>, as manifests name it. ' +
      'Registering an active key again answers it; a revoked key cannot come back (409).',
  })
  @ApiBody({ schema: openApiSchema(registerSigningKeyBodySchema) })
  register(
    @CurrentCaller() caller: Caller,
    @Param('accountId', accountIdParam) accountId: string,
    @Body(new ZodValidationPipe(registerSigningKeyBodySchema)) key: RegisterSigningKeyBody,
  ): Promise<SigningKeyView> {
    return this.services.call('permission', PermissionPattern.signingKeyRegister, { caller, accountId, key });
  }

  @Get('accounts/:accountId/signing-keys')
  @ApiOperation({
    summary:
      "An account's signing keys, revoked ones included, oldest first (the account itself or an admin).",
  })
  list(
    @CurrentCaller() caller: Caller,
    @Param('accountId', accountIdParam) accountId: string,
  ): Promise<SigningKeyView[]> {
    return this.services.call('permission', PermissionPattern.signingKeyList, { caller, accountId });
  }

  @Delete('accounts/:accountId/signing-keys/:keyId')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Revoke a signing key: uploads signed with it are refused from now on (bundles already verified stay). Revoking twice is harmless.',
  })
  revoke(
    @CurrentCaller() caller: Caller,
    @Param('accountId', accountIdParam) accountId: string,
    @Param('keyId', keyIdParam) keyId: string,
  ): Promise<SigningKeyView> {
    return this.services.call('permission', PermissionPattern.signingKeyRevoke, { caller, accountId, keyId });
  }
}
