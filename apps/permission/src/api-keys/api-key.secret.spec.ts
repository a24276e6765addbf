import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateApiKey, generateApiKeyId, hashApiKey } from './api-key.secret.js';
import { generateAccountId } from '../accounts/account-id.js';

describe('API key secrets', () => {
  it('makes unguessable keys, stores only their SHA-256, and shows a short prefix', () => {
    const keys = Array.from({ length: 200 }, () => generateApiKey());
    expect(new Set(keys.map((k) => k.key)).size).toBe(200);
    for (const k of keys) {
      expect(k.key).toMatch(/^imk_[A-Za-z0-9_-]{43}$/);
      expect(k.hash).toBe(createHash('sha256').update(k.key).digest('hex'));
      expect(k.prefix).toBe(k.key.slice(0, 12));
      expect(k.hash).not.toContain(k.key.slice(4));
    }
    expect(hashApiKey('a')).not.toBe(hashApiKey('b'));
  });

  it('makes key ids and 12-digit account ids', () => {
    expect(generateApiKeyId()).toMatch(/^key-[0-9a-f]{16}$/);
    const ids = Array.from({ length: 1000 }, generateAccountId);
    for (const id of ids) expect(id).toMatch(/^\d{12}$/);
    expect(new Set(ids).size).toBe(1000);
  });
});
