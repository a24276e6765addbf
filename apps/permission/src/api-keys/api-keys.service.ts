import { Injectable } from '@nestjs/common';
import { PrismaClient, type ApiKey } from '@imagemart/database';
import {
  ErrorCode,
  type ApiKeyView,
  type AuthenticateResponse,
  type Caller,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { accountNotFound, assertSelfOrAdmin } from '../accounts/account.access.js';
import { AccountsRepository } from '../accounts/accounts.repository.js';
import { AuditRepository } from '../audit/audit.repository.js';
import { ApiKeyGeneration } from './api-key-generation.js';
import { generateApiKeyId } from './api-key.secret.js';
import { ApiKeysRepository } from './api-keys.repository.js';

export function toApiKeyView(k: ApiKey): ApiKeyView {
  return {
    id: k.id,
    accountId: k.accountId,
    name: k.name,
    prefix: k.prefix,
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
  };
}

@Injectable()
export class ApiKeysService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly accounts: AccountsRepository,
    private readonly keys: ApiKeysRepository,
    private readonly audit: AuditRepository,
    private readonly generation: ApiKeyGeneration,
  ) {}

  /** Records a key the gateway made: only its hash and prefix ever reach this service. */
  async issue(caller: Caller, accountId: string, name: string, secret: { hash: string; prefix: string }): Promise<ApiKeyView> {
    assertSelfOrAdmin(caller, accountId);
    const account = await this.accounts.findById(accountId);
    if (!account) throw accountNotFound(accountId);
    const row = await this.prisma.$transaction(async (tx) => {
      const created = await this.keys.create(
        { id: generateApiKeyId(), accountId, name, prefix: secret.prefix, hash: secret.hash },
        tx,
      );
      await this.audit.record(
        {
          actorId: caller.accountId,
          action: 'apikey.issue',
          resourceType: 'apikey',
          resourceId: created.id,
          requestId: requestContext.requestId(),
          details: { accountId, name },
        },
        tx,
      );
      return created;
    });
    return toApiKeyView(row);
  }

  async list(caller: Caller, accountId: string): Promise<ApiKeyView[]> {
    assertSelfOrAdmin(caller, accountId);
    if (!(await this.accounts.findById(accountId))) throw accountNotFound(accountId);
    return (await this.keys.listForAccount(accountId)).map(toApiKeyView);
  }

  /**
   * Revoking a key that is already revoked changes nothing and answers as the first time did.
   * Either way the gateways' key caches are told before the answer (see ApiKeyGeneration).
   */
  async revoke(caller: Caller, accountId: string, keyId: string): Promise<ApiKeyView> {
    assertSelfOrAdmin(caller, accountId);
    const row = await this.prisma.$transaction(async (tx) => {
      const key = await this.keys.findForAccount(accountId, keyId, tx);
      if (!key) {
        throw new DomainException(ErrorCode.InvalidKeyIDNotFound, `The key ID '${keyId}' does not exist`);
      }
      if (key.revokedAt) return key;
      const revoked = await this.keys.revoke(keyId, new Date(), tx);
      await this.audit.record(
        {
          actorId: caller.accountId,
          action: 'apikey.revoke',
          resourceType: 'apikey',
          resourceId: keyId,
          requestId: requestContext.requestId(),
          details: { accountId },
        },
        tx,
      );
      return revoked;
    });
    await this.generation.bump();
    return toApiKeyView(row);
  }

  /** Who holds the key with this SHA-256: null for a key that is unknown, revoked, or whose account is suspended. */
  async authenticate(keyHash: string): Promise<AuthenticateResponse> {
    const row = await this.keys.findByHash(keyHash);
    if (!row || row.revokedAt || row.account.status !== 'active') return { caller: null };
    await this.keys.touch(row.id, new Date());
    return { caller: { accountId: row.accountId, roles: row.account.roles } };
  }
}
