import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import {
  ErrorCode,
  PermissionPattern,
  accountIdSchema,
  apiKeyIdSchema,
  createAccountBodySchema,
  issueApiKeyBodySchema,
  listAccountsQuerySchema,
  type AccountView,
  generateApiKey,
  type ApiKeyView,
  type Caller,
  type CreateAccountBody,
  type IssuedApiKey,
  type Page,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

const accountIdParam = new ZodValidationPipe(accountIdSchema, ErrorCode.InvalidAccountIDMalformed, 'accountId');
const keyIdParam = new ZodValidationPipe(apiKeyIdSchema, ErrorCode.InvalidParameterValue, 'keyId');

@ApiTags('accounts')
@ApiBearerAuth()
@Controller('v1')
export class AccountsController {
  constructor(private readonly services: ServiceClients) {}

  @Post('accounts')
  @ApiOperation({ summary: 'Create an account (admin). Roles: buyer, seller, admin.' })
  @ApiBody({ schema: openApiSchema(createAccountBodySchema) })
  create(
    @CurrentCaller() caller: Caller,
    @Body(new ZodValidationPipe(createAccountBodySchema)) account: CreateAccountBody,
  ): Promise<AccountView> {
    return this.services.call('permission', PermissionPattern.accountCreate, { caller, account });
  }

  @Get('accounts')
  @ApiOperation({ summary: 'List accounts, oldest first (admin). Pass nextCursor back as cursor for the next page.' })
  list(
    @CurrentCaller() caller: Caller,
    @Query(new ZodValidationPipe(listAccountsQuerySchema)) query: z.infer<typeof listAccountsQuerySchema>,
  ): Promise<Page<AccountView>> {
    return this.services.call('permission', PermissionPattern.accountList, { caller, ...query });
  }

  @Get('me')
  @ApiOperation({ summary: 'The account that the API key belongs to.' })
  me(@CurrentCaller() caller: Caller): Promise<AccountView> {
    return this.services.call('permission', PermissionPattern.accountGet, { caller, accountId: caller.accountId });
  }

  @Get('accounts/:accountId')
  @ApiOperation({ summary: 'Get an account (the account itself, or an admin).' })
  get(@CurrentCaller() caller: Caller, @Param('accountId', accountIdParam) accountId: string): Promise<AccountView> {
    return this.services.call('permission', PermissionPattern.accountGet, { caller, accountId });
  }

  @Post('accounts/:accountId/keys')
  @ApiOperation({ summary: 'Issue an API key. The key is in this response only; it is stored hashed.' })
  @ApiBody({ schema: openApiSchema(issueApiKeyBodySchema), required: false })
  async issueKey(
    @CurrentCaller() caller: Caller,
    @Param('accountId', accountIdParam) accountId: string,
    @Body(new ZodValidationPipe(issueApiKeyBodySchema.optional().transform((b) => b ?? { name: 'default' })))
    body: { name: string },
  ): Promise<IssuedApiKey> {
    // Made here, where it is shown: the permission service is sent its hash and prefix only.
    const secret = generateApiKey();
    const view = await this.services.call<ApiKeyView>('permission', PermissionPattern.apiKeyIssue, {
      caller,
      accountId,
      name: body.name,
      keyHash: secret.hash,
      prefix: secret.prefix,
    });
    return { ...view, key: secret.key };
  }

  @Get('accounts/:accountId/keys')
  @ApiOperation({ summary: "List an account's API keys (never the secrets)." })
  listKeys(@CurrentCaller() caller: Caller, @Param('accountId', accountIdParam) accountId: string): Promise<ApiKeyView[]> {
    return this.services.call('permission', PermissionPattern.apiKeyList, { caller, accountId });
  }

  @Delete('accounts/:accountId/keys/:keyId')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke an API key; it stops working at once. Revoking twice is harmless.' })
  revokeKey(
    @CurrentCaller() caller: Caller,
    @Param('accountId', accountIdParam) accountId: string,
    @Param('keyId', keyIdParam) keyId: string,
  ): Promise<ApiKeyView> {
    return this.services.call('permission', PermissionPattern.apiKeyRevoke, { caller, accountId, keyId });
  }
}
