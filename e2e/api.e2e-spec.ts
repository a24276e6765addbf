import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@imagemart/testing';
import { freePort, http, httpRefusedBeforeBody, Platform, expectProblem } from './support/platform.js';

/**
 * The five real processes over HTTP: authentication, accounts and keys, bad input, request ids
 * across hops, health and timeouts when a process stops.
 */
let platform: Platform;
let base: string;
let permissionMetricsPort: number;

const createAccount = (roles: string[]) => platform.createAccount(roles);

beforeAll(async () => {
  permissionMetricsPort = await freePort();
  platform = await Platform.start('api', {}, { permission: { METRICS_PORT: String(permissionMetricsPort) } });
  base = platform.baseUrl;
}, 60_000);

afterAll(async () => {
  await platform?.stop();
});

describe('operations routes', () => {
  it('reports every part healthy', async () => {
    const res = await http(base, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(Object.keys(res.body.checks).sort()).toEqual(
      ['billing', 'bundler-worker', 'catalog', 'permission', 'postgres', 'redis'].sort(),
    );
    for (const check of Object.values(res.body.checks as Record<string, { status: string }>)) expect(check.status).toBe('up');
  });

  it('serves the OpenAPI document and Prometheus metrics', async () => {
    const docs = await http(base, 'GET', '/docs-json');
    expect(docs.status).toBe(200);
    expect(docs.body.openapi).toMatch(/^3\./);
    expect(Object.keys(docs.body.paths)).toEqual(expect.arrayContaining(['/v1/accounts', '/v1/accounts/{accountId}/keys']));
    const ui = await http(base, 'GET', '/docs');
    expect(ui.status).toBe(200);

    await http(base, 'GET', '/v1/me', { key: platform.adminKey });
    // Admins only: anonymous is 401, a buyer's or a seller's key 403.
    expect((await http(base, 'GET', '/metrics')).status).toBe(401);
    const buyer = await platform.createAccount(['buyer']);
    expectProblem(await http(base, 'GET', '/metrics', { key: buyer.key }), 403, 'UnauthorizedOperation');
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${platform.adminKey}` } });
    const text = await metrics.text();
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(text).toMatch(/imagemart_http_request_duration_seconds_count\{method="GET",route="\/v1\/me",status="200"\} \d+/);
    expect(text).toMatch(/imagemart_rpc_client_duration_seconds_count\{service="permission",pattern="permission.apikey.authenticate",outcome="ok"\} \d+/);
    expect(text).toMatch(/imagemart_queue_jobs\{queue="bundling",state="failed"\} 0/);

    // The service behind the gateway counts the requests it handled on its own port.
    const service = await (await fetch(`http://127.0.0.1:${permissionMetricsPort}/metrics`)).text();
    expect(service).toMatch(/imagemart_rpc_server_duration_seconds_count\{pattern="permission.apikey.authenticate",outcome="ok"\} \d+/);
  });
});

describe('queue dashboard', () => {
  const basic = (key: string) => `Basic ${Buffer.from(`admin:${key}`).toString('base64')}`;

  it('asks a browser to sign in, refuses non-admins, and shows every queue to an admin', async () => {
    const anonymous = await http(base, 'GET', '/admin/queues');
    expectProblem(anonymous, 401, 'AuthFailure');
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm=/);

    const seller = await createAccount(['seller']);
    expectProblem(await http(base, 'GET', '/admin/queues', { headers: { authorization: basic(seller.key) } }), 403, 'UnauthorizedOperation');
    expectProblem(await http(base, 'GET', '/admin/queues/api/queues', { key: seller.key }), 403, 'UnauthorizedOperation');

    const page = await http(base, 'GET', '/admin/queues', { headers: { authorization: basic(platform.adminKey) } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const api = await http(base, 'GET', '/admin/queues/api/queues', { headers: { authorization: basic(platform.adminKey) } });
    expect(api.status).toBe(200);
    expect(api.body.queues.map((q: { name: string }) => q.name).sort()).toEqual(['billing-stripe-sync', 'bundling', 'domain-events']);
  });
});

describe('authentication', () => {
  it('refuses a missing, malformed or unknown key with 401 problem+json', async () => {
    expectProblem(await http(base, 'GET', '/v1/me'), 401, 'AuthFailure');
    expectProblem(await http(base, 'GET', '/v1/me', { headers: { authorization: 'Basic abc' } }), 401, 'AuthFailure');
    const bad = await http(base, 'GET', '/v1/me', { key: 'imk_not-a-real-key' });
    expectProblem(bad, 401, 'AuthFailure');
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('guards every route in the OpenAPI document except the public and browsing ones', async () => {
    const docs = await http(base, 'GET', '/docs-json');
    const routes: [string, string][] = [];
    for (const [path, ops] of Object.entries(docs.body.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) routes.push([method.toUpperCase(), path]);
    }
    const publicRoutes = new Set(['GET /health', 'GET /v1/platform/keys']);
    // Anyone may browse; a key, when given, must be valid.
    const browsingRoutes = new Set([
      'GET /v1/images',
      'GET /v1/images/{imageId}',
      'GET /v1/listings',
      'GET /v1/listings/{listingId}',
      'GET /v1/sellers/{accountId}',
      'GET /v1/pricing/instance-types',
      'GET /v1/products/{code}/pricing',
    ]);
    const placeholders: Record<string, string> = {
      accountId: '123456789012',
      keyId: 'key-0123456789abcdef',
      imageId: 'ami-0123456789abcdef0',
      listingId: 'lst-0123456789abcdef0',
      code: 'prod-0123456789abcdefghij',
      id: 'sub-0123456789abcdef0',
      subscriptionId: 'sub-0123456789abcdef0',
      uploadId: 'upl-0123456789abcdef0',
      partNumber: '1',
      instanceId: 'i-0123456789abcdef0',
      invoiceId: 'in-0123456789abcdef0',
    };
    expect(routes.length).toBeGreaterThan(20);
    for (const [method, path] of routes) {
      const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) => {
        const value = placeholders[name];
        if (!value) throw new Error(`no sample value for {${name}} in ${path}`);
        return value;
      });
      const route = `${method} ${path}`;
      const res = await http(base, method, concrete, ['POST', 'PUT', 'PATCH'].includes(method) ? { body: {} } : {});
      if (publicRoutes.has(route)) expect(res.status, route).toBe(200);
      else if (browsingRoutes.has(route)) {
        expect(res.status, `${route} without a key`).not.toBe(401);
        const bad = await http(base, method, concrete, { key: 'imk_not-a-key' });
        expectProblem(bad, 401, 'AuthFailure');
      } else expect(res.status, `${route} without a key`).toBe(401);
    }
    expect([...browsingRoutes].filter((r) => !routes.some(([m, p]) => `${m} ${p}` === r))).toEqual([]);
  });

  it('a revoked key stops working at once, though the gateway remembers valid keys; revoking twice answers the same', async () => {
    const authentications = async () => {
      const text = await (await fetch(`http://127.0.0.1:${permissionMetricsPort}/metrics`)).text();
      const line = /imagemart_rpc_server_duration_seconds_count\{pattern="permission.apikey.authenticate",outcome="ok"\} (\d+)/.exec(text);
      return Number(line?.[1] ?? 0);
    };
    const seller = await createAccount(['seller']);
    expect((await http(base, 'GET', '/v1/me', { key: seller.key })).status).toBe(200);
    // Known now: the next requests with the key do not ask the permission service again.
    const asked = await authentications();
    for (let i = 0; i < 5; i++) expect((await http(base, 'GET', '/v1/me', { key: seller.key })).status).toBe(200);
    expect(await authentications()).toBe(asked);
    const revoked = await http(base, 'DELETE', `/v1/accounts/${seller.id}/keys/${seller.keyId}`, { key: seller.key });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    expectProblem(await http(base, 'GET', '/v1/me', { key: seller.key }), 401, 'AuthFailure');
    const again = await http(base, 'DELETE', `/v1/accounts/${seller.id}/keys/${seller.keyId}`, { key: platform.adminKey });
    expect(again.status).toBe(200);
    expect(again.body.revokedAt).toBe(revoked.body.revokedAt);
  });
});

describe('accounts and keys', () => {
  it('lets an admin create a seller and its key, and the key works (the README flow)', async () => {
    const created = await http(base, 'POST', '/v1/accounts', {
      key: platform.adminKey,
      body: { name: '  Acme Images ', email: 'OPS@acme.example', roles: ['seller'] },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Acme Images', email: 'ops@acme.example', roles: ['seller'], status: 'active' });
    expect(created.body.id).toMatch(/^\d{12}$/);

    const issued = await http(base, 'POST', `/v1/accounts/${created.body.id}/keys`, { key: platform.adminKey, body: { name: 'ci' } });
    expect(issued.status).toBe(201);
    expect(issued.body.key).toMatch(/^imk_[A-Za-z0-9_-]{43}$/);
    expect(issued.body.prefix).toBe(issued.body.key.slice(0, 12));

    const me = await http(base, 'GET', '/v1/me', { key: issued.body.key });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(created.body.id);

    const keys = await http(base, 'GET', `/v1/accounts/${created.body.id}/keys`, { key: issued.body.key });
    expect(keys.status).toBe(200);
    expect(keys.body).toHaveLength(1);
    expect(JSON.stringify(keys.body)).not.toContain(issued.body.key);

    expectProblem(
      await http(base, 'POST', '/v1/accounts', { key: platform.adminKey, body: { name: 'Dup', email: 'ops@acme.example', roles: ['buyer'] } }),
      409,
      'AccountAlreadyExists',
    );
  });

  it('keeps accounts apart: no creating, listing or reading others without admin', async () => {
    const seller = await createAccount(['seller']);
    const buyer = await createAccount(['buyer']);
    expectProblem(
      await http(base, 'POST', '/v1/accounts', { key: seller.key, body: { name: 'x', email: 'x@example.test', roles: ['admin'] } }),
      403,
      'UnauthorizedOperation',
    );
    expectProblem(await http(base, 'GET', '/v1/accounts', { key: buyer.key }), 403, 'UnauthorizedOperation');
    // Another account answers exactly like one that does not exist.
    const other = expectProblem(await http(base, 'GET', `/v1/accounts/${seller.id}`, { key: buyer.key }), 404, 'InvalidAccountID.NotFound');
    const none = expectProblem(await http(base, 'GET', '/v1/accounts/000000000001', { key: buyer.key }), 404, 'InvalidAccountID.NotFound');
    expect(other.detail.replace(seller.id, 'ID')).toBe(none.detail.replace('000000000001', 'ID'));
    expectProblem(await http(base, 'POST', `/v1/accounts/${seller.id}/keys`, { key: buyer.key, body: {} }), 404, 'InvalidAccountID.NotFound');
    expectProblem(
      await http(base, 'DELETE', `/v1/accounts/${seller.id}/keys/${seller.keyId}`, { key: buyer.key }),
      404,
      'InvalidAccountID.NotFound',
    );
    // The seller's key still works: nothing changed.
    expect((await http(base, 'GET', '/v1/me', { key: seller.key })).status).toBe(200);
    // A buyer manages its own keys.
    const own = await http(base, 'POST', `/v1/accounts/${buyer.id}/keys`, { key: buyer.key });
    expect(own.status).toBe(201);
    expect(own.body.name).toBe('default');
  });

  it('pages through accounts with a stable cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const page = await http(base, 'GET', `/v1/accounts${query}`, { key: platform.adminKey });
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((a: { id: string }) => a.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    const all = await http(base, 'GET', '/v1/accounts?limit=100', { key: platform.adminKey });
    expect(seen).toEqual(all.body.items.map((a: { id: string }) => a.id));
    expectProblem(await http(base, 'GET', '/v1/accounts?cursor=bm9wZQ', { key: platform.adminKey }), 400, 'InvalidParameterValue');
    expectProblem(await http(base, 'GET', '/v1/accounts?limit=0', { key: platform.adminKey }), 400, 'InvalidParameterValue');
    expectProblem(await http(base, 'GET', '/v1/accounts?sort=name', { key: platform.adminKey }), 400, 'InvalidParameterValue');
  });
});

describe('bad input', () => {
  it('answers each kind with its status and code, and changes nothing', async () => {
    const key = platform.adminKey;
    const before = (await http(base, 'GET', '/v1/accounts?limit=100', { key })).body.items.length;
    expectProblem(await http(base, 'GET', '/v1/nowhere', { key }), 404, 'RouteNotFound');
    expectProblem(await http(base, 'POST', '/v1/accounts', { key, rawBody: '{"name":' }), 400, 'MalformedRequest');
    expectProblem(await http(base, 'POST', '/v1/accounts', { key, rawBody: 'name=x', contentType: 'text/plain' }), 415, 'UnsupportedMediaType');
    expectProblem(
      await http(base, 'POST', '/v1/accounts', { key, rawBody: '<a/>', contentType: 'application/xml' }),
      415,
      'UnsupportedMediaType',
    );
    const huge = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024), email: 'a@b.test', roles: ['buyer'] });
    expectProblem(await httpRefusedBeforeBody(base, 'POST', '/v1/accounts', { key, rawBody: huge }), 413, 'PayloadTooLarge');
    const invalid = expectProblem(
      await http(base, 'POST', '/v1/accounts', { key, body: { name: '', email: 'nope', roles: ['god'], extra: 1 } }),
      400,
      'InvalidParameterValue',
    );
    expect(invalid.errors?.map((e) => e.path).sort()).toEqual(['(body)', 'email', 'name', 'roles.0']);
    expectProblem(await http(base, 'GET', '/v1/accounts/12345', { key }), 400, 'InvalidAccountID.Malformed');
    expectProblem(await http(base, 'DELETE', `/v1/accounts/123456789012/keys/nope`, { key }), 400, 'InvalidParameterValue');
    const after = (await http(base, 'GET', '/v1/accounts?limit=100', { key })).body.items.length;
    expect(after).toBe(before);
  });
});

describe('request ids', () => {
  it("carries the platform's own request id through the gateway into the service and its audit log, the caller's beside it", async () => {
    const clientRequestId = `e2e-${Date.now()}`;
    const res = await http(base, 'POST', '/v1/accounts', {
      key: platform.adminKey,
      headers: { 'x-request-id': clientRequestId },
      body: { name: 'Traced', email: `traced-${Date.now()}@example.test`, roles: ['buyer'] },
    });
    expect(res.status).toBe(201);
    // The platform makes its own id; the caller's comes back beside it.
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(res.headers.get('x-client-request-id')).toBe(clientRequestId);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const db = new pg.Client({ connectionString: platform.env['DATABASE_URL'] });
    await db.connect();
    try {
      const { rows } = await db.query(
        'SELECT action, actor_id, request_id, client_request_id FROM permission.audit_event WHERE resource_id = $1',
        [res.body.id],
      );
      expect(rows).toEqual([
        { action: 'account.create', actor_id: expect.stringMatching(/^\d{12}$/), request_id: requestId, client_request_id: clientRequestId },
      ]);
    } finally {
      await db.end();
    }
    // GET /v1/audit-events shows both.
    const audit = await http(base, 'GET', `/v1/audit-events?resourceType=account&resourceId=${res.body.id as string}`, { key: platform.adminKey });
    expect(audit.body.items).toEqual([expect.objectContaining({ requestId, clientRequestId })]);
    // The platform's id is on the log lines of both processes the request passed through.
    await waitFor(() => platform.process('permission').output.includes(requestId!) || undefined, { what: 'permission log line' });
    expect(platform.process('storefront-api').output).toContain(requestId);
    // An unsafe id is ignored: neither echoed nor kept.
    const odd = await http(base, 'GET', '/health', { headers: { 'x-request-id': 'bad id\twith tabs' } });
    expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(odd.headers.get('x-client-request-id')).toBeNull();
  });

  it('never writes an API key to any log', () => {
    expect(platform.logs()).not.toContain(platform.adminKey);
    expect(platform.logs()).not.toMatch(/imk_[A-Za-z0-9_-]{43}/);
  });
});

describe('when a process stops', () => {
  it('health shows it down within the health timeout, and calls to it fail with 504, not a hang', async () => {
    await platform.process('catalog').stop('SIGKILL');
    await sleep(1100); // /health may answer from a report up to 1 s old
    const started = Date.now();
    const health = await http(base, 'GET', '/health');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(health.status).toBe(503);
    expect(health.body.status).toBe('degraded');
    expect(health.body.checks.catalog.status).toBe('down');
    expect(health.body.checks.permission.status).toBe('up');

    await platform.process('permission').stop('SIGKILL');
    const t0 = Date.now();
    const res = await http(base, 'GET', '/v1/me', { key: platform.adminKey });
    const waited = Date.now() - t0;
    expectProblem(res, 504, 'ServiceTimeout');
    expect(waited).toBeGreaterThanOrEqual(1900);
    expect(waited).toBeLessThan(5000);

    // Restarted, they serve again, and health turns green by itself.
    platform.startProcess('catalog');
    platform.startProcess('permission');
    await platform.waitHealthy();
    expect((await http(base, 'GET', '/v1/me', { key: platform.adminKey })).status).toBe(200);
  });
});
