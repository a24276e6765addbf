import { z } from 'zod';
import { text } from '../common/text.schemas.js';
import { imageIdSchema } from '../events/domain-events.js';
import { accountIdSchema, callerSchema } from './permission.schemas.js';

const auditFilters = {
  /** Events about one image (its launch permissions and shares). Owners may read these. */
  imageId: imageIdSchema.optional(),
  actorId: accountIdSchema.optional(),
  action: z.string().regex(/^[a-z][a-z0-9.-]{0,63}$/, 'must be an action name such as launch-permission.modify').optional(),
  resourceType: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a resource type such as image').optional(),
  resourceId: text().min(1).max(64).optional(),
};

/** GET /v1/audit-events: newest first; pass nextCursor back as cursor. */
export const listAuditEventsQuerySchema = z.strictObject({
  ...auditFilters,
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
});
export type ListAuditEventsQuery = z.infer<typeof listAuditEventsQuerySchema>;

export const listAuditEventsRequestSchema = z.strictObject({
  caller: callerSchema,
  ...auditFilters,
  limit: z.number().int().min(1).max(100),
  cursor: z.string().max(200).optional(),
});
export type ListAuditEventsRequest = z.infer<typeof listAuditEventsRequestSchema>;

export interface AuditEventView {
  id: string;
  /** The account that acted; null for the platform itself. */
  actorId: string | null;
  action: string;
  resourceType: string;
  resourceId: string;
  /** The platform's id of the request that made the change (the gateway's, never a client's). */
  requestId: string | null;
  /** The `X-Request-Id` the client sent with that request, when it sent a usable one. */
  clientRequestId: string | null;
  details: unknown;
  createdAt: string;
}
