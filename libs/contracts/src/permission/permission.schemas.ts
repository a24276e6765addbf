import { z } from 'zod';
import { text } from '../common/text.schemas.js';

export const ROLES = ['buyer', 'seller', 'admin'] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

/** Account ids are 12 decimal digits, as AWS account ids are. */
export const accountIdSchema = z.string().regex(/^\d{12}$/, 'must be 12 digits');
export const apiKeyIdSchema = z.string().regex(/^key-[0-9a-f]{16}$/, 'must be key- followed by 16 hex digits');

/** Who is calling: what the gateway passes to a service with each request that needs it. */
export const callerSchema = z.object({
  accountId: accountIdSchema,
  roles: z.array(roleSchema),
});
export type Caller = z.infer<typeof callerSchema>;

/** A name (of an account, of a key): one line of free text. */
const trimmed = (max: number) => text().min(1).max(max);

export const createAccountBodySchema = z.strictObject({
  name: trimmed(128),
  email: z.email().max(254).transform((e) => e.toLowerCase()),
  roles: z.array(roleSchema).min(1).max(3).transform((r) => [...new Set(r)]),
});
export type CreateAccountBody = z.infer<typeof createAccountBodySchema>;

export const createAccountRequestSchema = z.strictObject({
  caller: callerSchema,
  account: createAccountBodySchema,
});
export type CreateAccountRequest = z.infer<typeof createAccountRequestSchema>;

export const getAccountRequestSchema = z.strictObject({ caller: callerSchema, accountId: accountIdSchema });
export type GetAccountRequest = z.infer<typeof getAccountRequestSchema>;

export const listAccountsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
});
export const listAccountsRequestSchema = z.strictObject({
  caller: callerSchema,
  limit: z.number().int().min(1).max(100),
  cursor: z.string().max(200).optional(),
});
export type ListAccountsRequest = z.infer<typeof listAccountsRequestSchema>;

export const issueApiKeyBodySchema = z.strictObject({ name: trimmed(128).default('default') });
/** SHA-256 of an API key, lowercase hex: all the services ever see of a key. */
export const apiKeyHashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

/** The gateway makes the key and sends only its hash and the prefix lists show (docs/api.md). */
export const issueApiKeyRequestSchema = z.strictObject({
  caller: callerSchema,
  accountId: accountIdSchema,
  name: trimmed(128),
  keyHash: apiKeyHashSchema,
  prefix: z.string().regex(/^imk_[A-Za-z0-9_-]{8}$/, 'must be the first 12 characters of the key'),
});
export type IssueApiKeyRequest = z.infer<typeof issueApiKeyRequestSchema>;

export const listApiKeysRequestSchema = z.strictObject({ caller: callerSchema, accountId: accountIdSchema });
export type ListApiKeysRequest = z.infer<typeof listApiKeysRequestSchema>;

export const revokeApiKeyRequestSchema = z.strictObject({
  caller: callerSchema,
  accountId: accountIdSchema,
  keyId: apiKeyIdSchema,
});
export type RevokeApiKeyRequest = z.infer<typeof revokeApiKeyRequestSchema>;

export const authenticateRequestSchema = z.strictObject({ keyHash: apiKeyHashSchema });
export type AuthenticateRequest = z.infer<typeof authenticateRequestSchema>;

// Responses (what the service returns, and what the gateway serialises as JSON).

export interface AccountView {
  id: string;
  name: string;
  email: string;
  roles: Role[];
  status: 'active' | 'suspended';
  createdAt: string;
}

export interface ApiKeyView {
  id: string;
  accountId: string;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** Returned once, when a key is issued: the only time the secret is seen. */
export interface IssuedApiKey extends ApiKeyView {
  key: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** The answer to authenticate: the caller, or null for a key that is unknown or revoked. */
export type AuthenticateResponse = { caller: Caller } | { caller: null };
