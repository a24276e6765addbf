import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedisPrefix, testDatabaseUrl, waitFor } from '@imagemart/testing';
import { freePort, http, ROOT, spawnNode, type RunningProcess } from './support/platform.js';

/**
 * `npm start` as a new user runs it (the built start command; `npm start` only builds first): on
 * a database that does not exist yet, with its own Redis prefix and port.
 */
const database = `imagemart_test_start_${randomBytes(5).toString('hex')}`;
const serverUrl = new URL(testDatabaseUrl());
const databaseUrl = (() => {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
})();
const redis = createTestRedisPrefix('start');
const running: RunningProcess[] = [];

afterAll(async () => {
  for (const p of running) await p.stop('SIGINT');
  await redis.cleanup();
  const admin = new pg.Client({ connectionString: serverUrl.toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
  await admin.end();
});

function startCommand(port: number): RunningProcess {
  const proc = spawnNode('start', 'dist/tools/start.js', {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    PORT: String(port),
  });
  running.push(proc);
  return proc;
}

describe('npm start', () => {
  it('brings up all five processes healthy within 60 s, seeds demo accounts (keys printed once) and a public demo image', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const started = Date.now();
    const first = startCommand(port);
    await waitFor(() => first.output.includes('ImageMart is running') || (first.exited ? Promise.reject(new Error(first.output)) : false), {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: 'npm start to report the platform running',
    });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(first.output).toContain('Applied migrations: 20261123000000_init');

    const keys = Object.fromEntries(
      [...first.output.matchAll(/^\s+(admin|seller|buyer)\s+(\d{12})\s+(imk_[A-Za-z0-9_-]{43})$/gm)].map((m) => [m[1], { id: m[2], key: m[3] }]),
    ) as Record<'admin' | 'seller' | 'buyer', { id: string; key: string }>;
    expect(Object.keys(keys).sort()).toEqual(['admin', 'buyer', 'seller']);

    const health = await http(base, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(Object.values(health.body.checks).every((c) => (c as { status: string }).status === 'up')).toBe(true);
    expect((await http(base, 'GET', '/docs-json')).status).toBe(200);
    expect((await http(base, 'GET', '/metrics', { key: keys.admin.key })).status).toBe(200);
    expect((await http(base, 'GET', '/metrics', { key: keys.buyer.key })).status).toBe(403);
    const bad = await http(base, 'GET', '/v1/me', { key: 'imk_wrong' });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/);

    // The demo image went through upload, bundle and verify, and anyone may browse it.
    const demo = /^Demo image (ami-[0-9a-f]{17}) \(imagemart-demo-linux\): available, public$/m.exec(first.output);
    expect(demo, first.output).not.toBeNull();
    const browsed = await http(base, 'GET', '/v1/images?name=imagemart-demo-linux');
    expect(browsed.body.items).toEqual([expect.objectContaining({ imageId: demo?.[1], state: 'available', visibility: 'public' })]);

    for (const role of ['admin', 'seller', 'buyer'] as const) {
      const me = await http(base, 'GET', '/v1/me', { key: keys[role].key });
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ id: keys[role].id, roles: [role] });
    }

    // The README: the admin creates a seller account and its key.
    const seller = await http(base, 'POST', '/v1/accounts', {
      key: keys.admin.key,
      body: { name: 'Acme Images', email: 'ops@acme.example', roles: ['seller'] },
    });
    expect(seller.status).toBe(201);
    const key = await http(base, 'POST', `/v1/accounts/${seller.body.id}/keys`, { key: keys.admin.key, body: { name: 'ci' } });
    expect(key.status).toBe(201);
    expect((await http(base, 'GET', '/v1/me', { key: key.body.key })).body.id).toBe(seller.body.id);

    // Each process reached Redis as its own ACL user, and none was refused anything on the way.
    const admin = new Redis(redis.url);
    try {
      const clients = (await admin.client('LIST')) as string;
      const users = new Set([...clients.matchAll(/ user=(\S+)/g)].map((m) => m[1] ?? '').filter((u) => u.startsWith(`${redis.prefix}.`)));
      expect([...users].sort()).toEqual(['billing', 'bundler-worker', 'catalog', 'permission', 'storefront-api'].map((p) => `${redis.prefix}.${p}`));
      const refused = ((await admin.call('ACL', 'LOG')) as unknown[][])
        .map((entry) => entry.map(String).join(' '))
        .filter((line) => line.includes(`${redis.prefix}.`));
      expect(refused).toEqual([]);
    } finally {
      admin.disconnect();
    }
    expect(statSync(join(ROOT, '.data/redis-users.json')).mode & 0o777).toBe(0o600);

    // Ctrl+C stops every process.
    expect(await first.stop('SIGINT')).toBe(0);
    expect(first.output).toContain('Stopping ImageMart');
    await waitFor(async () => (await fetch(`${base}/health`).then(() => false, () => true)) || undefined, {
      what: 'the port to close',
    });

    // A second start on the same database applies nothing and prints no keys.
    const second = startCommand(port);
    await waitFor(() => second.output.includes('ImageMart is running') || (second.exited ? Promise.reject(new Error(second.output)) : false), {
      timeoutMs: 60_000,
      what: 'the second start',
    });
    expect(second.output).toContain('Database is up to date.');
    expect(second.output).not.toMatch(/imk_/);
    expect(await second.stop('SIGINT')).toBe(0);
  }, 150_000);

  it('migrates with the built migrate command, as the compose migrate service runs it', async () => {
    const migrateDb = `${database}_m`;
    const url = new URL(serverUrl);
    url.pathname = `/${migrateDb}`;
    try {
      const first = spawnNode('migrate', 'dist/tools/migrate.js', { DATABASE_URL: url.toString() });
      running.push(first);
      await waitFor(() => first.exited, { timeoutMs: 30_000, what: 'migrate to finish' });
      expect(first.child.exitCode, first.output).toBe(0);
      expect(first.output).toContain(`Created database ${migrateDb}`);
      expect(first.output).toContain('Applied migration 20261123000000_init');
      const again = spawnNode('migrate', 'dist/tools/migrate.js', { DATABASE_URL: url.toString() });
      running.push(again);
      await waitFor(() => again.exited, { timeoutMs: 30_000, what: 'migrate to finish' });
      expect(again.child.exitCode).toBe(0);
      const migrations = readdirSync(join(ROOT, 'prisma/migrations'), { withFileTypes: true }).filter((d) => d.isDirectory()).length;
      expect(again.output).toContain(`Database is up to date (${migrations} migrations applied)`);
    } finally {
      const admin = new pg.Client({ connectionString: serverUrl.toString() });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(migrateDb)} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('says in one sentence what is missing when Redis cannot be reached, and exits non-zero', async () => {
    const proc = spawnNode('start', 'dist/tools/start.js', {
      DATABASE_URL: databaseUrl,
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_PREFIX: redis.prefix,
      PORT: String(await freePort()),
    });
    running.push(proc);
    await waitFor(() => proc.exited, { timeoutMs: 15_000, what: 'start to give up' });
    expect(proc.child.exitCode).toBe(1);
    expect(proc.output.trim()).toMatch(/^imagemart could not start: Cannot reach Redis at 127\.0\.0\.1:1 .*REDIS_URL\.$/);
    expect(proc.output).not.toMatch(/\n\s+at /);
  });

  it('says so when PostgreSQL cannot be reached', async () => {
    const proc = spawnNode('start', 'dist/tools/start.js', {
      DATABASE_URL: 'postgresql://postgres:secret@127.0.0.1:1/imagemart',
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      PORT: String(await freePort()),
    });
    running.push(proc);
    await waitFor(() => proc.exited, { timeoutMs: 15_000, what: 'start to give up' });
    expect(proc.child.exitCode).toBe(1);
    expect(proc.output.trim()).toMatch(/^imagemart could not start: Cannot reach PostgreSQL at 127\.0\.0\.1:1 .*DATABASE_URL\.$/);
    expect(proc.output).not.toContain('secret');
  });
});
