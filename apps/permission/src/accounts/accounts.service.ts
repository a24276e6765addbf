import { Injectable } from '@nestjs/common';
import { PrismaClient, UniqueViolation, type Account } from '@imagemart/database';
import {
  ErrorCode,
  type AccountView,
  type Caller,
  type CreateAccountBody,
  type Page,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { AuditRepository } from '../audit/audit.repository.js';
import { accountNotFound, assertAdmin, assertSelfOrAdmin } from './account.access.js';
import { generateAccountId } from './account-id.js';
import { AccountsRepository, type AccountCursor } from './accounts.repository.js';

export function toAccountView(a: Account): AccountView {
  return {
    id: a.id,
    name: a.name,
    email: a.email,
    roles: a.roles,
    status: a.status,
    createdAt: a.createdAt.toISOString(),
  };
}

const encodeCursor = (a: Account) => Buffer.from(`${a.createdAt.toISOString()}|${a.id}`).toString('base64url');

function decodeCursor(token: string): AccountCursor {
  const [iso, id] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || !/^\d{12}$/.test(id) || Number.isNaN(createdAt.getTime())) {
    throw new DomainException(ErrorCode.InvalidParameterValue, 'The page cursor is not valid.', [
      { path: 'cursor', message: 'not a cursor this API returned' },
    ]);
  }
  return { createdAt, id };
}

@Injectable()
export class AccountsService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly accounts: AccountsRepository,
    private readonly audit: AuditRepository,
  ) {}

  async create(caller: Caller | null, body: CreateAccountBody): Promise<AccountView> {
    if (caller) assertAdmin(caller, 'create accounts');
    const taken = () =>
      new DomainException(ErrorCode.AccountAlreadyExists, `An account with the email address '${body.email}' already exists.`);
    const insert = () => this.prisma.$transaction(async (tx) => {
      if (await this.accounts.existsByEmail(body.email, tx)) throw taken();
      const created = await this.accounts.create({ id: generateAccountId(), ...body }, tx);
      await this.audit.record(
        {
          actorId: caller?.accountId ?? null,
          action: 'account.create',
          resourceType: 'account',
          resourceId: created.id,
          requestId: requestContext.requestId(),
          details: { roles: created.roles },
        },
        tx,
      );
      return created;
    });
    for (let attempt = 1; ; attempt++) {
      try {
        return toAccountView(await insert());
      } catch (err) {
        if (!(err instanceof UniqueViolation)) throw err;
        // Two requests for the same email at once: the unique index decides, the loser is told.
        if (err.fields.includes('email') || err.constraint === 'account_email_key') throw taken();
        // A random id that is already taken (one in 10^12 per account): draw another.
        if ((err.fields.includes('id') || err.constraint === 'account_pkey') && attempt < 3) continue;
        throw err;
      }
    }
  }

  async get(caller: Caller, accountId: string): Promise<AccountView> {
    assertSelfOrAdmin(caller, accountId);
    const account = await this.accounts.findById(accountId);
    if (!account) throw accountNotFound(accountId);
    return toAccountView(account);
  }

  async list(caller: Caller, limit: number, cursor?: string): Promise<Page<AccountView>> {
    assertAdmin(caller, 'list accounts');
    const rows = await this.accounts.list(limit + 1, cursor ? decodeCursor(cursor) : undefined);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(toAccountView),
      nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
    };
  }
}
