import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogPattern } from '@imagemart/contracts';
import { http, httpRefusedBeforeBody, Platform, type TestAccount } from '../support/platform.js';
import { ReliabilityRecorder } from './reliability-report.js';

/**
 * Hostile input over every route of the OpenAPI document: generated bodies, queries, path
 * parameters and headers (fast-check), sent by an account that owns nothing they name, by no one,
 * and with forged keys. Every answer must be a clear 4xx problem (never a 5xx, never a 2xx for a
 * change), and the victim's resources must read back exactly as they were.
 */
const RUNS_PER_OPERATION = Number(process.env['HOSTILE_RUNS_PER_OPERATION'] ?? 30);

let platform: Platform;
let base: string;
let victim: TestAccount;
let attacker: TestAccount;
const victimIds: Record<string, string> = {};
const report = new ReliabilityRecorder('hostile');

interface Operation {
  method: string;
  path: string;
  params: string[];
  hasBody: boolean;
}

beforeAll(async () => {
  platform = await Platform.start('hostile');
  base = platform.baseUrl;
  victim = await platform.createAccount(['seller', 'buyer'], 'Victim');
  attacker = await platform.createAccount(['seller', 'buyer'], 'Attacker');
  const image = await http(base, 'POST', '/v1/images', { key: victim.key, body: { name: 'victim-private', architecture: 'x86_64' } });
  expect(image.status, JSON.stringify(image.body)).toBe(201);
  victimIds['imageId'] = image.body.imageId as string;
  await platform.rpc('catalog', CatalogPattern.imageSetState, { imageId: victimIds['imageId'], state: 'available', imageSize: 1 << 20 });
  const data = randomBytes(4096);
  const upload = await http(base, 'POST', '/v1/uploads', {
    key: victim.key,
    body: { name: 'victim-upload', architecture: 'x86_64', size: data.length, sha256: createHash('sha256').update(data).digest('hex') },
  });
  expect(upload.status, JSON.stringify(upload.body)).toBe(201);
  victimIds['uploadId'] = upload.body.uploadId as string;
  victimIds['accountId'] = victim.id;
  victimIds['keyId'] = victim.keyId;
}, 90_000);

afterAll(async () => {
  await platform?.stop();
});

/** What the victim can read of its own resources: it must not change under attack. */
async function victimState(): Promise<string> {
  const reads = [
    `/v1/images/${victimIds['imageId']}`,
    `/v1/images/${victimIds['imageId']}/launch-permission`,
    `/v1/uploads/${victimIds['uploadId']}`,
    `/v1/accounts/${victim.id}/keys`,
    `/v1/images?owner=self`,
  ];
  const answers = await Promise.all(reads.map((path) => http(base, 'GET', path, { key: victim.key })));
  for (const [i, a] of answers.entries()) expect(a.status, `${reads[i]}: ${JSON.stringify(a.body)}`).toBe(200);
  return JSON.stringify(answers.map((a) => a.body));
}

async function operations(): Promise<Operation[]> {
  const doc = (await http(base, 'GET', '/docs-json')).body as {
    paths: Record<string, Record<string, { parameters?: { in: string; name: string }[]; requestBody?: unknown }>>;
  };
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      ops.push({ method: method.toUpperCase(), path, params, hasBody: op.requestBody !== undefined });
    }
  }
  return ops;
}

/** The id of the victim's that a path parameter names, where the victim has one. */
function victimValue(op: Operation, param: string): string | undefined {
  if (op.path.startsWith('/v1/sellers')) return undefined; // seller profiles are public
  if (param === 'id' && op.path.startsWith('/v1/accounts')) return victimIds['accountId'];
  if (param === 'id' && op.path.startsWith('/v1/uploads')) return victimIds['uploadId'];
  return victimIds[param];
}

/** Path segments a hostile client would try: traversal, encodings, odd characters, huge ones. */
const hostileSegment = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('..', '../..', '..%2f..%2fetc%2fpasswd', '%00', 'ami-0000000000000000', 'ami-00000000000000000', '*', "' OR 1=1 --", 'a'.repeat(5000)),
  fc.stringMatching(/^[a-z]{1,5}-[0-9a-f]{1,20}$/),
);

/** Bodies that no route accepts: not an object, or an object with a key no schema has. */
const hostileBody = fc.oneof(
  fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
  fc.constantFrom({ constructor: { prototype: { admin: true } } }, JSON.parse('{"__proto__":{"admin":true}}') as object),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.jsonValue({ maxDepth: 3 })).map((o) => ({ ...o, 'not-a-field': 1 })),
);
const rawBody = fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom('{', '{"a":', '[1,2', '\u0000', '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'));

const who = fc.constantFrom<'attacker' | 'none' | 'forged' | 'revoked-shape'>('attacker', 'attacker', 'none', 'forged', 'revoked-shape');

function authHeader(kind: 'attacker' | 'none' | 'forged' | 'revoked-shape'): string | undefined {
  if (kind === 'attacker') return `Bearer ${attacker.key}`;
  if (kind === 'forged') return `Bearer imk_${randomBytes(32).toString('base64url')}`;
  if (kind === 'revoked-shape') return `Basic ${Buffer.from('admin:admin').toString('base64')}`;
  return undefined;
}

describe('hostile input', () => {
  it('gets a clear 4xx on every route, and changes nothing of another account', async () => {
    const ops = await operations();
    expect(ops.length).toBeGreaterThan(20);
    const before = await victimState();
    const violations: string[] = [];
    let sent = 0;

    for (const op of ops) {
      if (op.path === '/health' || op.path.startsWith('/metrics') || op.path.startsWith('/docs')) continue;
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            useVictim: fc.boolean(),
            segments: fc.array(hostileSegment, { minLength: op.params.length, maxLength: op.params.length }),
            query: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 30 }), { maxKeys: 3 }),
            body: fc.oneof(hostileBody.map((b) => ({ json: b })), rawBody.map((r) => ({ raw: r }))),
            who,
            requestId: fc.option(fc.string({ maxLength: 80 })),
          }),
          async (input) => {
            let victimNamed = false;
            let path = op.path;
            op.params.forEach((param, i) => {
              const own = input.useVictim ? victimValue(op, param) : undefined;
              if (own) victimNamed = true;
              path = path.replace(`{${param}}`, encodeURIComponent(own ?? input.segments[i]));
            });
            const qs = new URLSearchParams(input.query).toString();
            const headers: Record<string, string> = {};
            const auth = authHeader(input.who);
            if (auth) headers['authorization'] = auth;
            if (input.requestId !== null && /^[\x20-\x7e]*$/.test(input.requestId)) headers['x-request-id'] = input.requestId;
            const sendsBody = op.method !== 'GET' && op.method !== 'DELETE';
            if (sendsBody) headers['content-type'] = 'application/json';
            const body = sendsBody ? ('json' in input.body ? JSON.stringify(input.body.json) : input.body.raw) : undefined;
            sent++;
            const res = await fetch(`${base}${path}${qs ? `?${qs}` : ''}`, { method: op.method, headers, ...(body !== undefined ? { body } : {}) });
            const text = await res.text();
            const label = `${op.method} ${op.path} as ${input.who} → ${res.status}`;
            if (res.status >= 500) violations.push(`${label}: ${text.slice(0, 200)}`);
            else if (res.status >= 400) {
              if (!(res.headers.get('content-type') ?? '').startsWith('application/problem+json')) violations.push(`${label}: not problem+json`);
              else if (!/"code":"[A-Za-z.]+"/.test(text)) violations.push(`${label}: no stable code`);
            } else if (op.method !== 'GET') violations.push(`${label}: a change was accepted: ${text.slice(0, 200)}`);
            else if (victimNamed && input.who !== 'attacker') violations.push(`${label}: read without a key`);
            else if (victimNamed) violations.push(`${label}: another account's resource was readable: ${text.slice(0, 200)}`);
          },
        ),
        { numRuns: RUNS_PER_OPERATION, seed: Number(process.env['HOSTILE_SEED'] ?? Date.now() % 2 ** 31) },
      );
    }

    const after = await victimState();
    report.add({ hostile_inputs: sent, wrongly_accepted: violations.length + (after === before ? 0 : 1) });
    expect(violations.slice(0, 20)).toEqual([]);
    expect(after).toBe(before);
    expect(sent).toBeGreaterThanOrEqual(1000);
  }, 600_000);

  it('refuses the request ids, key shapes and sizes a hostile client sends', async () => {
    const huge = await httpRefusedBeforeBody(base, 'POST', '/v1/images', {
      key: attacker.key,
      rawBody: JSON.stringify({ name: 'x', architecture: 'x86_64', description: 'a'.repeat(2 << 20) }),
    });
    expect(huge.status).toBe(413);
    const badId = await http(base, 'GET', '/v1/images', { key: attacker.key, headers: { 'x-request-id': `../../${randomUUID()}\u0001` } }).catch(
      () => ({ status: 400, headers: new Headers() }),
    );
    expect(badId.status).toBeLessThan(500);
    report.add({ hostile_inputs: 2 });
  });
});
