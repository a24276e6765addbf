import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, http, Platform, type TestAccount } from '../support/platform.js';

/**
 * Input the database cannot store or a reader should never see: a NUL, another control character
 * or an unpaired surrogate in any free-text field is a 400 with the field named, never a 500, and
 * nothing is stored. Also over the real processes: /metrics has a rate limit of its own that keeps
 * a flood of bad keys away from the permission service, and answers under /v1 are never cached.
 */
const METRICS_LIMIT = 5;

let platform: Platform;
let base: string;
let seller: TestAccount;

beforeAll(async () => {
  platform = await Platform.start('gateway-input', { RATE_LIMIT_METRICS_PER_MINUTE: String(METRICS_LIMIT) });
  base = platform.baseUrl;
  seller = await platform.createAccount(['seller', 'buyer']);
}, 90_000);

afterAll(async () => {
  await platform?.stop();
});

/** Every way a text can be unstorable or unsafe: as JSON escapes, which JSON.stringify writes. */
const BAD_TEXTS = ['nul\u0000here', 'escape\u001b[31m', 'del\u007f', 'lone \ud800 surrogate'];

function expectRefused(res: Awaited<ReturnType<typeof http>>, field: string): void {
  const problem = expectProblem(res, 400, 'InvalidParameterValue');
  expect(problem.errors?.map((e) => e.path)).toContain(field);
}

describe('free text', () => {
  it('refuses control characters and unpaired surrogates in every free-text field, and stores nothing', async () => {
    const image = await http(base, 'POST', '/v1/images', {
      key: seller.key,
      body: { name: 'text-fields', architecture: 'x86_64', description: 'Plain.' },
    });
    expect(image.status, JSON.stringify(image.body)).toBe(201);
    const imageId = image.body.imageId as string;
    const before = {
      images: (await http(base, 'GET', '/v1/images?owner=self', { key: seller.key })).body,
      keys: (await http(base, 'GET', `/v1/accounts/${seller.id}/keys`, { key: seller.key })).body,
      accounts: (await http(base, 'GET', '/v1/accounts?limit=100', { key: platform.adminKey })).body,
      listings: (await http(base, 'GET', `/v1/listings?seller=${seller.id}`)).body,
      profile: (await http(base, 'GET', `/v1/sellers/${seller.id}`)).status,
    };

    for (const bad of BAD_TEXTS) {
      expectRefused(
        await http(base, 'POST', '/v1/images', {
          key: seller.key,
          body: { name: 'text-bad', architecture: 'x86_64', description: bad },
        }),
        'description',
      );
      expectRefused(
        await http(base, 'POST', '/v1/images', {
          key: seller.key,
          body: { name: 'text-bad', architecture: 'x86_64', version: bad },
        }),
        'version',
      );
      expectRefused(
        await http(base, 'PATCH', `/v1/images/${imageId}`, { key: seller.key, body: { description: bad } }),
        'description',
      );
      expectRefused(
        await http(base, 'POST', '/v1/accounts', {
          key: platform.adminKey,
          body: { name: bad, email: `${randomBytes(6).toString('hex')}@example.test`, roles: ['buyer'] },
        }),
        'name',
      );
      expectRefused(
        await http(base, 'POST', `/v1/accounts/${seller.id}/keys`, { key: seller.key, body: { name: bad } }),
        'name',
      );
      for (const field of ['title', 'summary', 'description']) {
        const listing = {
          title: 'A listing',
          summary: 'One line.',
          description: 'Text.',
          categories: ['security'],
          pricingType: 'free',
          [field]: bad,
        };
        expectRefused(await http(base, 'POST', '/v1/listings', { key: seller.key, body: listing }), field);
      }
      expectRefused(
        await http(base, 'PUT', `/v1/sellers/${seller.id}`, { key: seller.key, body: { displayName: bad } }),
        'displayName',
      );
      // A query string is UTF-8 bytes: an unpaired surrogate has none (encodeURIComponent throws).
      if (!/[\ud800-\udfff]/u.test(bad))
        expectRefused(await http(base, 'GET', `/v1/images?q=${encodeURIComponent(bad)}`), 'q');
    }
    // Tabs and line breaks are text in a description, not in a one-line field.
    const multiLine = await http(base, 'PATCH', `/v1/images/${imageId}`, {
      key: seller.key,
      body: { description: 'Line one.\n\tLine two.' },
    });
    expect(multiLine.status, JSON.stringify(multiLine.body)).toBe(200);
    expect(multiLine.body.description).toBe('Line one.\n\tLine two.');
    expectRefused(
      await http(base, 'POST', `/v1/accounts/${seller.id}/keys`, {
        key: seller.key,
        body: { name: 'two\nlines' },
      }),
      'name',
    );

    // Nothing was stored: every list reads as it did (the image's description apart, changed above).
    const after = {
      images: (await http(base, 'GET', '/v1/images?owner=self', { key: seller.key })).body,
      keys: (await http(base, 'GET', `/v1/accounts/${seller.id}/keys`, { key: seller.key })).body,
      accounts: (await http(base, 'GET', '/v1/accounts?limit=100', { key: platform.adminKey })).body,
      listings: (await http(base, 'GET', `/v1/listings?seller=${seller.id}`)).body,
      profile: (await http(base, 'GET', `/v1/sellers/${seller.id}`)).status,
    };
    expect(after.images.items.map((i: { name: string }) => i.name)).toEqual(
      before.images.items.map((i: { name: string }) => i.name),
    );
    expect(after.keys).toEqual(before.keys);
    expect(after.accounts).toEqual(before.accounts);
    expect(after.listings).toEqual(before.listings);
    expect(after.profile).toBe(before.profile);
    expect(platform.logs()).not.toMatch(/invalid byte sequence|22021/);
  });
});

describe('/metrics', () => {
  it('limits a burst of bad keys with 429 problem+json, and the permission service never hears of the limited ones', async () => {
    const answers: Awaited<ReturnType<typeof http>>[] = [];
    for (let i = 0; i < METRICS_LIMIT + 3; i++) {
      answers.push(
        await http(base, 'GET', '/metrics', { key: `imk_${randomBytes(32).toString('base64url')}` }),
      );
    }
    expect(answers.map((a) => a.status)).toEqual([...Array<number>(METRICS_LIMIT).fill(401), 429, 429, 429]);
    for (const limited of answers.slice(METRICS_LIMIT)) {
      expectProblem(limited, 429, 'RequestLimitExceeded');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // Each key checked was one authenticate call on the permission service's log; the limited were none.
    const permissionLog = platform.process('permission').output;
    for (const checked of answers.slice(0, METRICS_LIMIT))
      expect(permissionLog).toContain(checked.headers.get('x-request-id'));
    for (const limited of answers.slice(METRICS_LIMIT))
      expect(permissionLog).not.toContain(limited.headers.get('x-request-id'));
    // The API's own limits are another bucket: it still answers.
    expect((await http(base, 'GET', '/v1/images', { key: seller.key })).status).toBe(200);
  });
});

describe('caching', () => {
  it('marks every answer under /v1 no-store, successes and errors alike; /docs keeps its own', async () => {
    for (const res of [
      await http(base, 'GET', '/v1/images'),
      await http(base, 'GET', '/v1/images', { key: seller.key }),
      await http(base, 'GET', '/v1/images/ami-00000000000000000'),
      await http(base, 'GET', '/v1/accounts', { key: seller.key }),
    ]) {
      expect(res.headers.get('cache-control'), `${res.status}`).toBe('no-store');
    }
    expect((await http(base, 'GET', '/docs-json')).headers.get('cache-control')).not.toBe('no-store');
  });
});
