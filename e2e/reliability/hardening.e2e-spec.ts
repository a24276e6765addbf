import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, http, httpRefusedBeforeBody, Platform, type TestAccount } from '../support/platform.js';

/**
 * The gateway's hardening: security headers, CORS for configured origins only, rate limits per key
 * and per address, request size limits, and no secret in any log line of a whole run.
 */
const ALLOWED_ORIGIN = 'https://console.example.test';
const KEY_LIMIT = 8;
const ADDRESS_LIMIT = 30;

let platform: Platform;
let base: string;
let seller: TestAccount;
let buyer: TestAccount;

beforeAll(async () => {
  platform = await Platform.start('hardening', {
    CORS_ORIGINS: ALLOWED_ORIGIN,
    RATE_LIMIT_PER_KEY_PER_MINUTE: String(KEY_LIMIT),
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: String(ADDRESS_LIMIT),
    BODY_LIMIT_BYTES: String(64 * 1024),
  });
  base = platform.baseUrl;
  [seller, buyer] = await Promise.all([platform.createAccount(['seller']), platform.createAccount(['buyer'])]);
}, 90_000);

afterAll(async () => {
  await platform?.stop();
});

describe('hardening', () => {
  it('sends security headers on every answer, errors included', async () => {
    for (const res of [await fetch(`${base}/health`), await fetch(`${base}/v1/images/ami-00000000000000000`)]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(res.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });

  it('answers CORS for the configured origin only', async () => {
    const preflight = (origin: string) =>
      fetch(`${base}/v1/images`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
    const allowed = await preflight(ALLOWED_ORIGIN);
    expect(allowed.status).toBeLessThan(300);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    const other = await preflight('https://evil.example.test');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('limits requests per key: 429 with Retry-After once over, other keys unaffected', async () => {
    // The seller's own requests so far (account set-up used the admin key) are none.
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof http>> | undefined;
    for (let i = 0; i < KEY_LIMIT + 2; i++) {
      const res = await http(base, 'GET', '/v1/images?owner=self', { key: seller.key });
      statuses.push(res.status);
      if (res.status === 429) limited ??= res;
    }
    expect(statuses.slice(0, KEY_LIMIT).every((s) => s === 200), JSON.stringify(statuses)).toBe(true);
    expect(statuses.slice(KEY_LIMIT)).toEqual([429, 429]);
    expectProblem(limited!, 429, 'RequestLimitExceeded');
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another key still gets through; health is never limited.
    expect((await http(base, 'GET', '/v1/images', { key: buyer.key })).status).toBe(200);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('limits requests per address, so that forged keys buy an attacker nothing', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < ADDRESS_LIMIT + 5; i++) {
      const res = await http(base, 'GET', '/v1/images', { key: `imk_${randomBytes(32).toString('base64url')}` });
      statuses.push(res.status);
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('refuses a body over the limit with 413 before reading it all', async () => {
    const res = await httpRefusedBeforeBody(base, 'POST', '/v1/images', {
      key: buyer.key,
      rawBody: JSON.stringify({ name: 'big', architecture: 'x86_64', description: 'x'.repeat(128 * 1024) }),
    });
    // The address may be limited by now too: either way a clear 4xx, never a 5xx.
    expect([413, 429]).toContain(res.status);
    if (res.status === 413) expectProblem(res, 413, 'PayloadTooLarge');
  });

  it('never writes a secret to a log line', () => {
    const logs = platform.logs();
    expect(logs.length).toBeGreaterThan(1000);
    const secrets = [platform.adminKey, seller.key, buyer.key];
    for (const secret of secrets) {
      expect(logs.includes(secret), 'an API key in the logs').toBe(false);
      // Nor the part after the prefix, nor its hash as the key table stores it.
      expect(logs.includes(secret.slice(4))).toBe(false);
      expect(logs.includes(createHash('sha256').update(secret).digest('hex'))).toBe(false);
    }
    // No private key of the platform's, wherever the worker keeps them.
    expect(logs).not.toMatch(/-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----/);
    const keyDir = join(process.cwd(), '.data', 'keys');
    let pems: string[] = [];
    try {
      pems = readdirSync(keyDir).filter((f) => f.endsWith('.pem'));
    } catch {
      /* keys from the environment */
    }
    for (const pem of pems) {
      const body = readFileSync(join(keyDir, pem), 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
      if (body[1]) expect(logs.includes(body[1])).toBe(false);
    }
  });
});
