import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@imagemart/config';
import { createLogger } from '@imagemart/observability';
import {
  createTestDatabase,
  createTestRedisPrefix,
  type TestDatabase,
  type TestRedisPrefix,
  TestIdentities,
} from '@imagemart/testing';
import { createStorefrontApp } from '../storefront.app.js';
import { storefrontConfigSchema } from '../storefront.config.js';

/**
 * The gateway's HTTP layer, on a real socket: every error it sends is problem+json with a stable
 * code (those Node's parser raises before Fastify included), JSON bodies are strict UTF-8, answers
 * under /v1 are never cached, silent and slow clients lose their connection, the platform makes
 * its own request ids, and /metrics has a rate limit of its own. No service runs behind this
 * gateway: everything here is answered before a request would reach one.
 */
const HEADERS_TIMEOUT_MS = 1000;
const IDLE_TIMEOUT_MS = 2000;
const KEEP_ALIVE_TIMEOUT_MS = 500;
const METRICS_LIMIT = 3;
const BODY_LIMIT = 64 * 1024;

let db: TestDatabase;
let redis: TestRedisPrefix;
let app: NestFastifyApplication;
let port: number;
let base: string;

beforeAll(async () => {
  db = await createTestDatabase('gateway-http');
  redis = createTestRedisPrefix('gateway-http');
  const config = loadConfig(storefrontConfigSchema, {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    BODY_LIMIT_BYTES: String(BODY_LIMIT),
    RPC_TIMEOUT_MS: '300',
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    HTTP_REQUEST_TIMEOUT_MS: '5000',
    HTTP_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
    HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_TIMEOUT_MS),
    RATE_LIMIT_METRICS_PER_MINUTE: String(METRICS_LIMIT),
    ...TestIdentities.shared().env('storefront-api'),
  });
  app = await createStorefrontApp(config, createLogger({ service: 'storefront-api', level: 'silent' }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address();
  port = typeof address === 'object' && address ? address.port : 0;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
  await redis?.cleanup();
});

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Milliseconds from connecting until the gateway closed the connection. */
  closedAfterMs: number;
}

/**
 * Writes `chunks` on a fresh connection (each after `gapMs`) and reads until the gateway closes
 * it: the answer as it came over the wire. Fails if the connection is still open after `maxMs`.
 */
async function raw(chunks: (string | Buffer)[], { gapMs = 0, maxMs = 10_000 } = {}): Promise<RawAnswer> {
  const started = Date.now();
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const received: Buffer[] = [];
  socket.on('data', (b: Buffer) => received.push(b));
  socket.on('error', () => undefined); // a reset after the answer is a close too
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const writer = (async () => {
    for (const chunk of chunks) {
      if (socket.destroyed) return;
      socket.write(chunk);
      if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
    }
  })();
  const timer = setTimeout(() => socket.destroy(new Error('still open')), maxMs);
  await closed;
  clearTimeout(timer);
  await writer;
  const closedAfterMs = Date.now() - started;
  expect(closedAfterMs, 'the gateway closed the connection').toBeLessThan(maxMs);
  const text = Buffer.concat(received).toString('utf8');
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers = Object.fromEntries(
    headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body, closedAfterMs };
}

/** A problem+json answer with this status and code, its request id in header and body, never cached. */
function expectProblem(
  answer: { status: number; headers: Record<string, string>; body: string },
  status: number,
  code: string,
) {
  expect(answer.status, answer.body).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(answer.headers['cache-control']).toBe('no-store');
  const problem = JSON.parse(answer.body) as Record<string, unknown>;
  expect(problem).toMatchObject({ status, code, type: `urn:imagemart:problem:${code}` });
  expect(problem['detail']).toEqual(expect.any(String));
  expect(problem['requestId']).toBe(answer.headers['x-request-id']);
  return problem;
}

async function fetched(path: string, init: RequestInit = {}) {
  const res = await fetch(`${base}${path}`, init);
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

const json = (bytes: Buffer, contentType = 'application/json') =>
  fetched('/v1/images', { method: 'POST', headers: { 'content-type': contentType }, body: bytes });

describe('errors raised before a route runs', () => {
  it('are problem+json: a bad Content-Length, an over-long query string, a malformed URL, a body over the limit', async () => {
    expectProblem(
      await raw(['POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n']),
      400,
      'MalformedRequest',
    );
    expectProblem(
      await raw([
        'POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
      ]),
      400,
      'MalformedRequest',
    );
    expectProblem(
      await raw([`GET /v1/images?q=${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`]),
      431,
      'RequestHeaderFieldsTooLarge',
    );
    expectProblem(
      await raw(['GET /v1/images HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n']),
      400,
      'MalformedRequest',
    );
    expectProblem(await fetched('/v1/images/%E0%A4%A'), 400, 'MalformedRequest');
    const tooLarge = await raw([
      `POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${BODY_LIMIT * 4}\r\nConnection: close\r\n\r\n`,
    ]);
    expectProblem(tooLarge, 413, 'PayloadTooLarge');
  });

  it('answer under /v1 with Cache-Control: no-store, errors and successes alike; /docs-json keeps its own', async () => {
    expectProblem(await fetched('/v1/no-such-route'), 404, 'RouteNotFound');
    const refused = expectProblem(await fetched('/v1/images?q=%00'), 400, 'InvalidParameterValue');
    expect(refused['errors']).toEqual([{ path: 'q', message: expect.stringMatching(/control characters/) }]);
    const keys = await fetched('/v1/platform/keys'); // 503 until a bundler-worker has started
    expect(keys.headers['cache-control']).toBe('no-store');
    expect((await fetched('/docs-json')).headers['cache-control']).not.toBe('no-store');
  });
});

describe('JSON bodies', () => {
  const body = (inner: Buffer) =>
    Buffer.concat([Buffer.from('{"name":"'), inner, Buffer.from('","architecture":"x86_64"}')]);

  it('are refused with 400 MalformedRequest when they are not valid UTF-8', async () => {
    for (const bad of [
      Buffer.from([0xc0, 0xaf]), // overlong '/'
      Buffer.from([0xe0, 0x80, 0xaf]), // overlong, three bytes
      Buffer.from([0xed, 0xa0, 0x80]), // U+D800 encoded as UTF-8
      Buffer.from([0xe2, 0x82]), // cut short
      Buffer.from([0x80]), // a stray continuation byte
      Buffer.from([0xf4, 0x90, 0x80, 0x80]), // beyond U+10FFFF
    ]) {
      const problem = expectProblem(await json(body(bad)), 400, 'MalformedRequest');
      expect(problem['detail']).toMatch(/UTF-8/);
    }
  });

  it('are refused when declared in another charset than UTF-8, and read when they are UTF-8', async () => {
    for (const type of [
      'application/json; charset=latin1',
      'application/json;charset=ISO-8859-1',
      'application/json; charset="utf-16"',
    ]) {
      expectProblem(await json(body(Buffer.from('caf\u00e9', 'latin1')), type), 400, 'MalformedRequest');
    }
    // Valid UTF-8 (and a declared utf-8) reaches the route, which wants a key first.
    for (const type of [
      'application/json',
      'application/json; charset=utf-8',
      'application/json; charset=UTF8',
    ]) {
      expectProblem(await json(body(Buffer.from('café 😀')), type), 401, 'AuthFailure');
    }
  });
});

describe('connections', () => {
  it('that send nothing are closed (the headers or the idle timeout, whichever Node applies first)', async () => {
    const answer = await raw([], { maxMs: IDLE_TIMEOUT_MS + 3000 });
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
    if (answer.status) expectProblem(answer, 408, 'RequestTimeout');
  });

  it('that send their headers slowly get 408 and are closed', async () => {
    const trickle = [
      'GET /v1/images HTTP/1.1\r\n',
      'Host: x\r\n',
      ...Array.from({ length: 40 }, (_, i) => `X-Slow-${i}: 1\r\n`),
    ];
    const answer = await raw(trickle, { gapMs: 200, maxMs: HEADERS_TIMEOUT_MS + 4000 });
    expectProblem(answer, 408, 'RequestTimeout');
    expect(answer.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + 3000);
  });

  it('that sit idle after an answer are closed after the keep-alive timeout', async () => {
    const answer = await raw(['GET /v1/no-such-route HTTP/1.1\r\nHost: x\r\n\r\n'], {
      maxMs: KEEP_ALIVE_TIMEOUT_MS + 4000,
    });
    expect(answer.status).toBe(404);
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(KEEP_ALIVE_TIMEOUT_MS - 100);
  });
});

describe('request ids', () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const get = (headers: Record<string, string>) => fetched('/v1/no-such-route', { headers });

  it("are the platform's own; the client's X-Request-Id is kept beside it and echoed as X-Client-Request-Id", async () => {
    const answer = await get({ 'x-request-id': 'client-abc.1' });
    expect(answer.headers['x-request-id']).toMatch(UUID);
    expect(answer.headers['x-client-request-id']).toBe('client-abc.1');
    const problem = expectProblem(answer, 404, 'RouteNotFound');
    expect(problem['clientRequestId']).toBe('client-abc.1');
    // Without one, or with one the platform does not keep, only the platform's.
    const ignored: Record<string, string>[] = [
      {},
      { 'x-request-id': 'bad id' },
      { 'x-request-id': 'x'.repeat(65) },
    ];
    for (const headers of ignored) {
      const other = await get(headers);
      expect(other.headers['x-request-id']).toMatch(UUID);
      expect(other.headers['x-client-request-id']).toBeUndefined();
    }
  });

  it('are the same for a retry with the same X-Request-Id and key, and differ otherwise', async () => {
    const id = async (headers: Record<string, string>) => (await get(headers)).headers['x-request-id'];
    const key = { authorization: 'Bearer imk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' };
    const first = await id({ ...key, 'x-request-id': 'retry-1' });
    expect(await id({ ...key, 'x-request-id': 'retry-1' })).toBe(first);
    expect(await id({ ...key, 'x-request-id': 'retry-2' })).not.toBe(first);
    expect(
      await id({
        authorization: 'Bearer imk_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
        'x-request-id': 'retry-1',
      }),
    ).not.toBe(first);
    // Without a key nothing ties two requests together: each gets a fresh id.
    expect(await id({ 'x-request-id': 'retry-1' })).not.toBe(await id({ 'x-request-id': 'retry-1' }));
  });
});

describe('/metrics', () => {
  it('has a rate limit of its own: a burst of bad keys gets 429 problem+json once over it', async () => {
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof fetched>> | undefined;
    for (let i = 0; i < METRICS_LIMIT + 3; i++) {
      const answer = await fetched('/metrics', {
        headers: { authorization: `Bearer imk_${String(i).padStart(43, 'x')}` },
      });
      statuses.push(answer.status);
      if (answer.status === 429) limited ??= answer;
    }
    // No permission service behind this gateway: the keys it asks about time out (504).
    expect(statuses.slice(METRICS_LIMIT)).toEqual([429, 429, 429]);
    expect(statuses.slice(0, METRICS_LIMIT).every((s) => s !== 429)).toBe(true);
    expectProblem(limited!, 429, 'RequestLimitExceeded');
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0);
    // The API's own buckets are another's: it still answers.
    expect((await fetched('/v1/no-such-route')).status).toBe(404);
  });
});
