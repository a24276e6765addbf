import { createHash } from 'node:crypto';
import { ErrorCode, imageIdSchema, type ImageSort } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';

/** Where the next page starts: the sort key and id of the last row of this one. */
export interface PageKey {
  /** relevance: the rank (a float8); name: the name; newest: created_at as PostgreSQL text; popularity: launches. */
  key: number | string;
  id: string;
}

interface Token {
  v: 1;
  s: ImageSort;
  k: number | string;
  id: string;
  /** Which query the token belongs to. */
  h: string;
}

/** A short digest of everything that decides a list's rows and order, apart from the page. */
export function queryDigest(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 16);
}

export function encodePageToken(sort: ImageSort, digest: string, page: PageKey): string {
  const token: Token = { v: 1, s: sort, k: page.key, id: page.id, h: digest };
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

const invalid = (why: string) =>
  new DomainException(ErrorCode.InvalidPaginationToken, `The page token is not valid: ${why}.`, [{ path: 'cursor', message: why }]);

const KEY_CHECKS: Record<ImageSort, (k: unknown) => boolean> = {
  relevance: (k) => typeof k === 'number' && Number.isFinite(k) && k >= 0,
  name: (k) => typeof k === 'string' && k.length <= 128,
  // PostgreSQL's text form of a timestamptz: 2026-11-23 10:00:00.123456+00
  newest: (k) => typeof k === 'string' && /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/.test(k),
  popularity: (k) => typeof k === 'string' && /^\d{1,19}$/.test(k),
};

export function decodePageToken(token: string, sort: ImageSort, digest: string): PageKey {
  let parsed: Partial<Token>;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Token>;
  } catch {
    throw invalid('not a token this API returned');
  }
  if (typeof parsed !== 'object' || parsed === null || parsed.v !== 1 || typeof parsed.id !== 'string') {
    throw invalid('not a token this API returned');
  }
  if (parsed.s !== sort || parsed.h !== digest) throw invalid('it belongs to a list with other filters, text or sort order');
  if (!imageIdSchema.safeParse(parsed.id).success || !KEY_CHECKS[sort](parsed.k)) throw invalid('not a token this API returned');
  return { key: parsed.k as number | string, id: parsed.id };
}
