import 'reflect-metadata';
import { EventQueue } from '@imagemart/contracts';
import { runMain, startRpcService, stopOnSignals } from '@imagemart/messaging';
import { AdminBootstrapService } from './bootstrap/admin-bootstrap.service.js';
import { PermissionModule } from './permission.module.js';
import { permissionConfigSchema } from './permission.config.js';

runMain('permission', async () => {
  const service = await startRpcService({
    service: 'permission',
    configSchema: permissionConfigSchema,
    imports: [PermissionModule],
    outboxSchema: 'permission',
    eventQueue: EventQueue.permission,
    afterStart: async (app, config) => {
      if (config.ADMIN_BOOTSTRAP_KEY) {
        await app.get(AdminBootstrapService).bootstrap({
          key: config.ADMIN_BOOTSTRAP_KEY,
          email: config.ADMIN_BOOTSTRAP_EMAIL,
          name: 'Administrator',
        });
      }
    },
  });
  stopOnSignals(service.stop, service.logger);
});
