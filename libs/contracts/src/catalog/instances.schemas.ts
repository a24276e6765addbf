import { z } from 'zod';
import { instanceTypeSchema } from '../billing/billing.schemas.js';
import {
  imageIdSchema,
  instanceIdSchema,
  instanceStateSchema,
  type InstanceState,
} from '../events/domain-events.js';
import { callerSchema } from '../permission/permission.schemas.js';

/** The most instances one launch request may ask for. */
export const MAX_LAUNCH_COUNT = 100;

export const reservationIdSchema = z.string().regex(/^r-[0-9a-f]{17}$/, 'must be r- followed by 17 lowercase hex digits');

/** EC2's client token: up to 64 printable ASCII characters. */
export const clientTokenSchema = z
  .string()
  .min(1)
  .max(64, 'must be at most 64 characters')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

export const launchInstancesBodySchema = z.strictObject({
  imageId: imageIdSchema,
  instanceType: instanceTypeSchema,
  count: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(MAX_LAUNCH_COUNT, `must be at most ${MAX_LAUNCH_COUNT}`)
    .default(1),
  clientToken: clientTokenSchema.optional(),
});
export type LaunchInstancesBody = z.infer<typeof launchInstancesBodySchema>;

export const launchInstancesRequestSchema = z.strictObject({ caller: callerSchema, launch: launchInstancesBodySchema });
export type LaunchInstancesRequest = z.infer<typeof launchInstancesRequestSchema>;

export const instanceFiltersSchema = z.strictObject({
  state: z.array(instanceStateSchema).min(1).max(4).optional(),
  imageId: z.array(imageIdSchema).min(1).max(50).optional(),
  instanceType: z.array(instanceTypeSchema).min(1).max(50).optional(),
});
export type InstanceFilters = z.infer<typeof instanceFiltersSchema>;

export const listInstancesRequestSchema = z.strictObject({
  caller: callerSchema,
  filters: instanceFiltersSchema.default({}),
  limit: z.number().int().min(1).max(100).default(50),
  cursor: z.string().min(1).max(512).optional(),
});
export type ListInstancesRequest = z.infer<typeof listInstancesRequestSchema>;

/** Values of one filter may repeat or be listed with commas; they are alternatives. */
const queryList = <T extends z.ZodType<unknown, string>>(value: T, max: number) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) => [...new Set((Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()))])
    .pipe(z.array(value).min(1).max(max));

/** The query string of `GET /v1/instances`. */
export const listInstancesQuerySchema = z.strictObject({
  state: queryList(instanceStateSchema, 4).optional(),
  'image-id': queryList(imageIdSchema, 50).optional(),
  'instance-type': queryList(instanceTypeSchema, 50).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().min(1).max(512).optional(),
});
export type ListInstancesQuery = z.infer<typeof listInstancesQuerySchema>;

export const instanceRequestSchema = z.strictObject({ caller: callerSchema, instanceId: instanceIdSchema });
export type InstanceRequest = z.infer<typeof instanceRequestSchema>;

export const internalGetInstanceRequestSchema = z.strictObject({ instanceId: instanceIdSchema });
export type InternalGetInstanceRequest = z.infer<typeof internalGetInstanceRequestSchema>;

/** Why an instance is in its state: a stable code and a sentence (EC2's StateReason). */
export interface InstanceStateReason {
  code: string;
  message: string;
}

export interface InstanceView {
  instanceId: string;
  reservationId: string;
  /** 0 … count-1 within its launch request. */
  launchIndex: number;
  ownerId: string;
  imageId: string;
  instanceType: string;
  /** The paid product it is billed under; null for a free image. */
  productCode: string | null;
  state: InstanceState;
  stateReason: InstanceStateReason;
  stateChangedAt: string;
  /** When the launch was accepted. */
  launchTime: string;
  /** When it reached running (usage starts); null before. */
  runningAt: string | null;
  /** When it began shutting down (usage stops); null before. */
  stoppedAt: string | null;
  clientToken: string | null;
}

export interface LaunchResult {
  reservationId: string;
  ownerId: string;
  clientToken: string | null;
  /** In launch index order. */
  instances: InstanceView[];
}

export interface InstancePage {
  items: InstanceView[];
  nextCursor: string | null;
}
