import { Module } from '@nestjs/common';
import { AccountsHandler } from './accounts/accounts.handler.js';
import { AccountsRepository } from './accounts/accounts.repository.js';
import { AccountsService } from './accounts/accounts.service.js';
import { ApiKeysHandler } from './api-keys/api-keys.handler.js';
import { ApiKeysRepository } from './api-keys/api-keys.repository.js';
import { ApiKeysService } from './api-keys/api-keys.service.js';
import { AuditRepository } from './audit/audit.repository.js';
import { AdminBootstrapService } from './bootstrap/admin-bootstrap.service.js';

@Module({
  controllers: [AccountsHandler, ApiKeysHandler],
  providers: [
    AccountsRepository,
    AccountsService,
    ApiKeysRepository,
    ApiKeysService,
    AuditRepository,
    AdminBootstrapService,
  ],
  exports: [AdminBootstrapService],
})
export class PermissionModule {}
