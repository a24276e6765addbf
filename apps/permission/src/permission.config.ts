import { z } from 'zod';
import { baseConfigSchema } from '@imagemart/config';

export const permissionConfigSchema = baseConfigSchema.extend({
  /** The first admin's API key, used only while no admin account exists (a fresh install). */
  ADMIN_BOOTSTRAP_KEY: z.string().min(32).max(256).optional(),
  ADMIN_BOOTSTRAP_EMAIL: z.email().default('admin@imagemart.local'),
  /**
   * How long the launch decision keeps what it learnt about an image or an account when no
   * invalidation arrives: the backstop should one be lost. Changes invalidate at once.
   */
  DECISION_CACHE_TTL_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
  /** Most images (and, separately, accounts) the decision cache holds; the oldest go first. */
  DECISION_CACHE_MAX_ENTRIES: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
});
export type PermissionConfig = z.infer<typeof permissionConfigSchema>;
