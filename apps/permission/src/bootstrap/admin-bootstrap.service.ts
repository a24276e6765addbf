import { Injectable, Logger } from '@nestjs/common';
import { PrismaClient } from '@imagemart/database';
import { StartupError } from '@imagemart/messaging';
import { AccountsRepository } from '../accounts/accounts.repository.js';
import { generateAccountId } from '../accounts/account-id.js';
import { ApiKeysRepository } from '../api-keys/api-keys.repository.js';
import { generateApiKeyId, hashApiKey, MIN_SUPPLIED_KEY_LENGTH } from '../api-keys/api-key.secret.js';
import { AuditRepository } from '../audit/audit.repository.js';

export interface AdminBootstrap {
  key: string;
  email: string;
  name: string;
}

export type BootstrapOutcome = 'created' | 'admin-exists';

/**
 * On a fresh install there is no one to create the first account, so the operator supplies the
 * first admin's API key in the environment. It is used only while no admin exists; several
 * replicas starting at once create one admin between them (a transaction-scoped advisory lock).
 */
@Injectable()
export class AdminBootstrapService {
  private readonly logger = new Logger(AdminBootstrapService.name);

  constructor(
    private readonly prisma: PrismaClient,
    private readonly accounts: AccountsRepository,
    private readonly keys: ApiKeysRepository,
    private readonly audit: AuditRepository,
  ) {}

  async bootstrap(admin: AdminBootstrap): Promise<BootstrapOutcome> {
    if (admin.key.length < MIN_SUPPLIED_KEY_LENGTH) {
      throw new StartupError(`ADMIN_BOOTSTRAP_KEY must be at least ${MIN_SUPPLIED_KEY_LENGTH} characters long.`);
    }
    const outcome = await this.prisma.$transaction(async (tx) => {
      await this.accounts.lockForBootstrap(tx);
      if ((await this.accounts.countAdmins(tx)) > 0) return 'admin-exists' as const;
      if (await this.accounts.existsByEmail(admin.email, tx)) {
        throw new StartupError(`ADMIN_BOOTSTRAP_EMAIL ${admin.email} belongs to an account that is not an admin: choose another.`);
      }
      const account = await this.accounts.create(
        { id: generateAccountId(), name: admin.name, email: admin.email, roles: ['admin'] },
        tx,
      );
      const keyId = generateApiKeyId();
      await this.keys.create(
        { id: keyId, accountId: account.id, name: 'bootstrap', prefix: admin.key.slice(0, 12), hash: hashApiKey(admin.key) },
        tx,
      );
      await this.audit.record(
        { actorId: null, action: 'account.bootstrap-admin', resourceType: 'account', resourceId: account.id, details: { keyId } },
        tx,
      );
      return 'created' as const;
    });
    this.logger.log(
      outcome === 'created'
        ? `Created the first admin account (${admin.email}) with the key from ADMIN_BOOTSTRAP_KEY`
        : 'An admin account exists; ADMIN_BOOTSTRAP_KEY is ignored',
    );
    return outcome;
  }
}
