import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  createListingBodySchema,
  listImagesQuerySchema,
  registerImageBodySchema,
  sellerProfileBodySchema,
  updateImageBodySchema,
  updateListingBodySchema,
} from '../catalog/catalog.schemas.js';
import { listAuditEventsQuerySchema } from '../permission/audit.schemas.js';
import { createAccountBodySchema, issueApiKeyBodySchema } from '../permission/permission.schemas.js';
import { registerSigningKeyBodySchema } from '../permission/signing-key.schemas.js';
import { text } from './text.schemas.js';

const SINGLE_LINE_REFUSED = [
  '\u0000',
  '\u0001',
  '\u0008',
  '\t',
  '\n',
  '\r',
  '\u000b',
  '\u001b',
  '\u001f',
  '\u007f',
];
const MULTI_LINE_REFUSED = ['\u0000', '\u0001', '\u0008', '\u000b', '\u000c', '\u001b', '\u001f', '\u007f'];

describe('text()', () => {
  it('refuses every C0 control and DEL in single-line text', () => {
    for (const c of SINGLE_LINE_REFUSED)
      expect(text().safeParse(`a${c}b`).success, JSON.stringify(c)).toBe(false);
  });

  it('allows tab, CR and LF in multi-line text, and no other control', () => {
    expect(text({ multiline: true }).parse('one\ttwo\r\nthree\nfour')).toBe('one\ttwo\r\nthree\nfour');
    for (const c of MULTI_LINE_REFUSED)
      expect(text({ multiline: true }).safeParse(`a${c}b`).success, JSON.stringify(c)).toBe(false);
  });

  it('refuses an unpaired surrogate and keeps paired ones, trimming the ends', () => {
    expect(text().safeParse('a\ud800b').success).toBe(false);
    expect(text().safeParse('a\udc00').success).toBe(false);
    expect(text().parse('  Debian 😀 é  ')).toBe('Debian 😀 é');
    // A line break at an end is trimmed away, not refused.
    expect(text().parse('name\n')).toBe('name');
  });

  it('keeps the length rules callers add after it', () => {
    expect(text().min(2).max(3).safeParse('abcd').success).toBe(false);
    expect(text().min(2).max(3).parse(' ab ')).toBe('ab');
  });
});

/** Every free-text field of the API, with a valid body around it, as a function of the field's value. */
const FIELDS: [string, z.ZodType, (v: string) => unknown][] = [
  ['account name', createAccountBodySchema, (v) => ({ name: v, email: 'a@example.test', roles: ['buyer'] })],
  ['API key name', issueApiKeyBodySchema, (v) => ({ name: v })],
  [
    'signing key name',
    registerSigningKeyBodySchema,
    (v) => ({
      name: v,
      publicKeyPem: `-----BEGIN PUBLIC KEY-----\n${'A'.repeat(64)}\n-----END PUBLIC KEY-----`,
    }),
  ],
  [
    'image description',
    registerImageBodySchema,
    (v) => ({ name: 'image-1', architecture: 'x86_64', description: v }),
  ],
  [
    'image version',
    registerImageBodySchema,
    (v) => ({ name: 'image-1', architecture: 'x86_64', version: v }),
  ],
  [
    'image platformDetails',
    registerImageBodySchema,
    (v) => ({ name: 'image-1', architecture: 'x86_64', platformDetails: v }),
  ],
  ['image description (PATCH)', updateImageBodySchema, (v) => ({ description: v })],
  ['search q', listImagesQuerySchema, (v) => ({ q: v })],
  [
    'listing title',
    createListingBodySchema,
    (v) => ({ title: v, summary: 'S', categories: ['security'], pricingType: 'free' }),
  ],
  [
    'listing summary',
    createListingBodySchema,
    (v) => ({ title: 'Title', summary: v, categories: ['security'], pricingType: 'free' }),
  ],
  ['listing description', updateListingBodySchema, (v) => ({ description: v })],
  ['seller display name', sellerProfileBodySchema, (v) => ({ displayName: v })],
  ['seller about', sellerProfileBodySchema, (v) => ({ displayName: 'Seller', about: v })],
  ['audit resourceId filter', listAuditEventsQuerySchema, (v) => ({ resourceId: v })],
];

describe('the free-text fields of the contracts', () => {
  it.each(FIELDS)('%s: accepts text, refuses a NUL, DEL or an unpaired surrogate', (_name, schema, body) => {
    expect(schema.safeParse(body('Plain text 1.0')).success).toBe(true);
    for (const bad of ['Plain\u0000text', 'Plain text\u007f1', 'Plain \ud800 text', 'Plain\u001btext']) {
      expect(schema.safeParse(body(bad)).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
