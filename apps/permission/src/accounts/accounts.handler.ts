import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  PermissionPattern,
  createAccountRequestSchema,
  getAccountRequestSchema,
  listAccountsRequestSchema,
  type AccountView,
  type CreateAccountRequest,
  type GetAccountRequest,
  type ListAccountsRequest,
  type Page,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { AccountsService } from './accounts.service.js';

@Controller()
export class AccountsHandler {
  constructor(private readonly accounts: AccountsService) {}

  @MessagePattern(PermissionPattern.accountCreate)
  create(@Payload(new ZodPayloadPipe(createAccountRequestSchema)) req: CreateAccountRequest): Promise<AccountView> {
    return this.accounts.create(req.caller, req.account);
  }

  @MessagePattern(PermissionPattern.accountGet)
  get(@Payload(new ZodPayloadPipe(getAccountRequestSchema)) req: GetAccountRequest): Promise<AccountView> {
    return this.accounts.get(req.caller, req.accountId);
  }

  @MessagePattern(PermissionPattern.accountList)
  list(@Payload(new ZodPayloadPipe(listAccountsRequestSchema)) req: ListAccountsRequest): Promise<Page<AccountView>> {
    return this.accounts.list(req.caller, req.limit, req.cursor);
  }
}
