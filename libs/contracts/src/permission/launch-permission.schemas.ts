import { z } from 'zod';
import { imageIdSchema, shareStateSchema, type ShareState } from '../events/domain-events.js';
import { accountIdSchema, callerSchema } from './permission.schemas.js';

/**
 * Launch permissions, modelled on EC2's launchPermission image attribute. An item names an
 * account (`userId`) or the group `all` (the image is public). The shape is checked here; the
 * values (a 12-digit id, the group `all`) are checked by the permission service, which refuses a
 * whole request with `InvalidAMIAttributeItemValue` when one item is wrong.
 */
export const launchPermissionItemInputSchema = z.union([
  z.strictObject({ userId: z.string().max(64) }),
  z.strictObject({ group: z.string().max(64) }),
]);
export type LaunchPermissionItemInput = z.infer<typeof launchPermissionItemInputSchema>;

/** A launch permission as the API shows it. */
export type LaunchPermissionItem = { userId: string } | { group: 'all' };

export const LAUNCH_PERMISSION_GROUPS = ['all'] as const;

const items = z.array(launchPermissionItemInputSchema).max(100);

/** PATCH /v1/images/{imageId}/launch-permission: one request, applied all or nothing. */
export const modifyLaunchPermissionBodySchema = z
  .strictObject({ add: items.optional(), remove: items.optional() })
  .refine((b) => (b.add?.length ?? 0) + (b.remove?.length ?? 0) > 0, {
    message: 'name at least one launch permission to add or remove',
  });
export type ModifyLaunchPermissionBody = z.infer<typeof modifyLaunchPermissionBodySchema>;

export const getLaunchPermissionRequestSchema = z.strictObject({ caller: callerSchema, imageId: imageIdSchema });
export type GetLaunchPermissionRequest = z.infer<typeof getLaunchPermissionRequestSchema>;

export const modifyLaunchPermissionRequestSchema = z.strictObject({
  caller: callerSchema,
  imageId: imageIdSchema,
  add: items.default([]),
  remove: items.default([]),
});
export type ModifyLaunchPermissionRequest = z.infer<typeof modifyLaunchPermissionRequestSchema>;

export const resetLaunchPermissionRequestSchema = getLaunchPermissionRequestSchema;
export type ResetLaunchPermissionRequest = GetLaunchPermissionRequest;

export interface LaunchPermissionView {
  imageId: string;
  /** The group `all` first when present, then accounts in id order. */
  launchPermissions: LaunchPermissionItem[];
}

// Shares: an image shared with an account, as that account sees it (Glance's image members).

export const listSharedImagesQuerySchema = z.strictObject({
  state: shareStateSchema.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
});
export type ListSharedImagesQuery = z.infer<typeof listSharedImagesQuerySchema>;

export const listSharedImagesRequestSchema = z.strictObject({
  caller: callerSchema,
  state: shareStateSchema.optional(),
  limit: z.number().int().min(1).max(100),
  cursor: z.string().max(200).optional(),
});
export type ListSharedImagesRequest = z.infer<typeof listSharedImagesRequestSchema>;

export const respondToShareBodySchema = z.strictObject({ state: z.enum(['accepted', 'rejected']) });
export type RespondToShareBody = z.infer<typeof respondToShareBodySchema>;

export const respondToShareRequestSchema = z.strictObject({
  caller: callerSchema,
  imageId: imageIdSchema,
  state: z.enum(['accepted', 'rejected']),
});
export type RespondToShareRequest = z.infer<typeof respondToShareRequestSchema>;

export interface SharedImageView {
  imageId: string;
  ownerId: string;
  /** The image's lifecycle state in the catalog. */
  imageState: string;
  productCodes: string[];
  state: ShareState;
  sharedAt: string;
  updatedAt: string;
}

// The launch decision.

export const launchDecisionRequestSchema = z.strictObject({ accountId: accountIdSchema, imageId: imageIdSchema });
export type LaunchDecisionRequest = z.infer<typeof launchDecisionRequestSchema>;

export const LAUNCH_DECISION_REASONS = [
  'owner',
  'public',
  'launch-permission',
  'subscription',
  'no-launch-permission',
  'no-subscription',
  'image-not-available',
  'image-not-found',
] as const;
export type LaunchDecisionReason = (typeof LAUNCH_DECISION_REASONS)[number];

export interface LaunchDecision {
  allowed: boolean;
  reason: LaunchDecisionReason;
}

