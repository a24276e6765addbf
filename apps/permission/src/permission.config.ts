import { z } from 'zod';
import { baseConfigSchema } from '@imagemart/config';

export const permissionConfigSchema = baseConfigSchema.extend({
  /** The first admin's API key, used only while no admin account exists (a fresh install). */
  ADMIN_BOOTSTRAP_KEY: z.string().min(32).max(256).optional(),
  ADMIN_BOOTSTRAP_EMAIL: z.email().default('admin@imagemart.local'),
});
export type PermissionConfig = z.infer<typeof permissionConfigSchema>;
