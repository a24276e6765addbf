/**
 * `npm start`: the whole platform on this machine. Checks PostgreSQL and Redis, creates the
 * database and applies the migrations, starts the five processes, waits for /health to be green,
 * and on a fresh install seeds a demo admin, seller and buyer (printing their API keys once) and a
 * public demo image that the seller uploads and the bundler bundles and verifies.
 * Ctrl+C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { z } from 'zod';
import { baseConfigSchema, loadConfig } from '@imagemart/config';
import { describeConnectionError, ensureDatabase, migrate } from '@imagemart/database';
import { checkRedis, redisUrlWithUser, runMain, setRedisAclUser, StartupError } from '@imagemart/messaging';
import {
  callerKeysSetting,
  generateIdentitySecret,
  redisUserName,
  type RedisAclProcess,
} from '@imagemart/contracts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PROCESSES = [
  'permission',
  'catalog',
  'billing',
  'bundler-worker',
  'storefront-api',
] as const satisfies readonly RedisAclProcess[];
/** The passwords of the processes' Redis users, by user name: readable by this account only. */
const REDIS_PASSWORDS_FILE = join(root, '.data/redis-users.json');

const configSchema = baseConfigSchema.extend({
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  /** `inherit` shows every process's JSON log lines on this terminal as well. */
  START_LOGS: z.enum(['files', 'inherit']).default('files'),
  /**
   * `on`: each process reaches Redis as its own ACL user (docs/operations.md, "Redis as a
   * boundary"), created through REDIS_URL's user, which must be allowed ACL SETUSER. `off`: every
   * process uses REDIS_URL as it is.
   */
  START_REDIS_USERS: z.enum(['on', 'off']).default('on'),
});

const say = (line: string) => process.stdout.write(`${line}\n`);

/**
 * Each process's signing identity (docs/messaging.md, "Signed callers"): a secret per process,
 * made on the first start and kept under .data/identity/ (readable by this user only); every
 * process is given its own secret and its keys for the others (derived from their secrets).
 */
function serviceIdentities(): (name: (typeof PROCESSES)[number]) => {
  SERVICE_IDENTITY_KEY: string;
  SERVICE_CALLER_KEYS: string;
} {
  const dir = join(root, '.data/identity');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secrets = new Map<(typeof PROCESSES)[number], string>();
  for (const name of PROCESSES) {
    const file = join(dir, `${name}.secret`);
    if (!existsSync(file)) writeFileSync(file, `${generateIdentitySecret()}\n`, { mode: 0o600 });
    secrets.set(name, readFileSync(file, 'utf8').trim());
  }
  return (name) => ({
    SERVICE_IDENTITY_KEY: secrets.get(name)!,
    SERVICE_CALLER_KEYS: callerKeysSetting(name, secrets),
  });
}

async function countAdmins(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM permission.account WHERE 'admin' = ANY(roles)`,
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

async function waitForHealth(
  baseUrl: string,
  children: Map<string, ChildProcess>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    for (const [name, child] of children) {
      if (child.exitCode !== null)
        throw new StartupError(`${name} exited with code ${child.exitCode}; see .data/logs/${name}.log`);
    }
    try {
      const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5000) });
      const body = (await res.json()) as { checks?: Record<string, { status: string }> };
      if (res.status === 200) return;
      last = Object.entries(body.checks ?? {})
        .filter(([, c]) => c.status !== 'up')
        .map(([n]) => n)
        .join(', ');
    } catch {
      last = 'storefront-api';
    }
    await sleep(500);
  }
  throw new StartupError(
    `the platform was not healthy within ${timeoutMs / 1000} s (still down: ${last}); see .data/logs/`,
  );
}

async function api<T>(
  baseUrl: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok)
    throw new StartupError(`seeding failed: ${method} ${path} answered ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function seedDemo(baseUrl: string, adminKey: string): Promise<void> {
  const me = await api<{ id: string }>(baseUrl, adminKey, 'GET', '/v1/me');
  const lines = [`  admin   ${me.id}  ${adminKey}`];
  const keys: Record<string, string> = {};
  for (const role of ['seller', 'buyer'] as const) {
    const account = await api<{ id: string }>(baseUrl, adminKey, 'POST', '/v1/accounts', {
      name: `Demo ${role}`,
      email: `${role}@demo.imagemart.local`,
      roles: [role],
    });
    const issued = await api<{ key: string }>(baseUrl, adminKey, 'POST', `/v1/accounts/${account.id}/keys`, {
      name: 'demo',
    });
    keys[role] = issued.key;
    lines.push(`  ${role.padEnd(7)} ${account.id}  ${issued.key}`);
  }
  say('');
  say('Demo accounts (their keys are shown this once; they are stored hashed):');
  for (const line of lines) say(line);
  const image = await publishDemoImage(baseUrl, keys['seller']);
  say(`Demo image ${image.imageId} (${image.name}): ${image.state}`);
}

/**
 * The demo seller publishes a small image the way a seller does: a free listing, an upload of the
 * raw image in one part, and a public launch permission. The bundler-worker bundles and verifies
 * it; start-up waits (up to 30 s) until it is available and public.
 */
async function publishDemoImage(
  baseUrl: string,
  sellerKey: string,
): Promise<{ imageId: string; name: string; state: string }> {
  const listing = await api<{ listingId: string }>(baseUrl, sellerKey, 'POST', '/v1/listings', {
    title: 'ImageMart demo Linux',
    summary: 'A tiny demo image, bundled and verified on this machine at start-up.',
    categories: ['operating-systems'],
    pricingType: 'free',
  });
  // 4 MiB: a random half (incompressible) and a half of zeros (as free disk space is).
  const raw = Buffer.concat([randomBytes(2 * 1024 * 1024), Buffer.alloc(2 * 1024 * 1024)]);
  const name = 'imagemart-demo-linux';
  const upload = await api<{ uploadId: string; imageId: string }>(baseUrl, sellerKey, 'POST', '/v1/uploads', {
    name,
    version: '1.0',
    description: 'Demo image seeded by npm start',
    architecture: 'x86_64',
    listingId: listing.listingId,
    size: raw.length,
    sha256: createHash('sha256').update(raw).digest('hex'),
  });
  const put = await fetch(`${baseUrl}/v1/uploads/${upload.uploadId}/parts/1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${sellerKey}`, 'content-type': 'application/octet-stream' },
    body: raw,
  });
  if (!put.ok)
    throw new StartupError(
      `seeding failed: uploading the demo image answered ${put.status} ${await put.text()}`,
    );
  await api(baseUrl, sellerKey, 'POST', `/v1/uploads/${upload.uploadId}/complete`);
  await api(baseUrl, sellerKey, 'PATCH', `/v1/images/${upload.imageId}/launch-permission`, {
    add: [{ group: 'all' }],
  });
  // Available once verified; public in the catalog once the permission service's event is in.
  let image = { state: 'pending', visibility: 'private' };
  for (
    const deadline = Date.now() + 30_000;
    (image.state === 'pending' || image.visibility !== 'public') && Date.now() < deadline;
    await sleep(250)
  ) {
    image = await api<{ state: string; visibility: string }>(
      baseUrl,
      sellerKey,
      'GET',
      `/v1/images/${upload.imageId}`,
    );
  }
  return { imageId: upload.imageId, name, state: `${image.state}, ${image.visibility}` };
}

/** The kept passwords, by user name; a missing or unreadable file is an empty one. */
function readRedisPasswords(): Record<string, string> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(REDIS_PASSWORDS_FILE, 'utf8'));
    return z.record(z.string(), z.string().min(32)).parse(parsed);
  } catch {
    return {};
  }
}

/**
 * Creates (or resets to the rules of this version) each process's Redis ACL user, with the
 * password kept in .data/redis-users.json (made on first use, mode 0600), and answers each
 * process's REDIS_URL signed in as its user. The default user is left as it is.
 */
async function provisionRedisUsers(
  redisUrl: string,
  prefix: string,
): Promise<Record<RedisAclProcess, string>> {
  const passwords = readRedisPasswords();
  const urls = {} as Record<RedisAclProcess, string>;
  const admin = new Redis(redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await admin.connect();
    for (const name of PROCESSES) {
      const user = redisUserName(prefix, name);
      const password = (passwords[user] ??= randomBytes(32).toString('hex'));
      await setRedisAclUser(admin, prefix, name, password);
      urls[name] = redisUrlWithUser(redisUrl, user, password);
    }
  } catch (err) {
    throw new StartupError(
      `could not create the processes' Redis users (${(err as Error).message}): give REDIS_URL a user allowed ACL SETUSER, or set START_REDIS_USERS=off`,
      { cause: err },
    );
  } finally {
    admin.disconnect();
  }
  mkdirSync(dirname(REDIS_PASSWORDS_FILE), { recursive: true });
  writeFileSync(REDIS_PASSWORDS_FILE, `${JSON.stringify(passwords, null, 2)}\n`, { mode: 0o600 });
  chmodSync(REDIS_PASSWORDS_FILE, 0o600); // an older file keeps its mode on write
  return urls;
}

/** Something already answering on the port would answer /health in our place. */
async function assertPortFree(port: number): Promise<void> {
  const inUse = await new Promise<boolean>((done) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
  if (inUse)
    throw new StartupError(
      `port ${port} is in use (is ImageMart already running?): stop that process or set PORT.`,
    );
}

runMain('imagemart', async () => {
  const config = loadConfig(configSchema);
  const baseUrl = `http://127.0.0.1:${config.PORT}`;
  await assertPortFree(config.PORT);

  await checkRedis(config.REDIS_URL);
  const migrated = await (async () => {
    try {
      await ensureDatabase(config.DATABASE_URL);
    } catch (err) {
      throw new StartupError(describeConnectionError(err, 'PostgreSQL', config.DATABASE_URL), { cause: err });
    }
    return migrate(config.DATABASE_URL, join(root, 'prisma/migrations'));
  })();
  say(
    migrated.applied.length
      ? `Applied migrations: ${migrated.applied.join(', ')}`
      : 'Database is up to date.',
  );

  const fresh = (await countAdmins(config.DATABASE_URL)) === 0;
  const adminKey = fresh ? `imk_${randomBytes(32).toString('base64url')}` : undefined;
  if (adminKey) {
    // Said before anything can fail: the permission service makes this the admin's key as it
    // starts, and from then on it is the only way in.
    say('');
    say(
      'A fresh database: the first admin account gets this API key (shown this once; it is stored hashed):',
    );
    say(`  ${adminKey}`);
  }

  const redisUrls =
    config.START_REDIS_USERS === 'on'
      ? await provisionRedisUsers(config.REDIS_URL, config.REDIS_PREFIX)
      : undefined;

  // Logs may hold ids and request details: readable by this user only (0700 directory, 0600 files),
  // also when they were made before with wider modes.
  const logDir = join(root, '.data/logs');
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  chmodSync(logDir, 0o700);
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const identities = serviceIdentities();
  for (const name of PROCESSES) {
    const env = {
      ...process.env,
      ...identities(name),
      ...(redisUrls ? { REDIS_URL: redisUrls[name] } : {}),
      ...(name === 'permission' && adminKey ? { ADMIN_BOOTSTRAP_KEY: adminKey } : {}),
    };
    const child = spawn(
      process.execPath,
      ['--enable-source-maps', join(root, `dist/apps/${name}/src/main.js`)],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const logFile = join(logDir, `${name}.log`);
    const file = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
    file.on('open', () => chmodSync(logFile, 0o600));
    child.stdout?.pipe(file);
    child.stderr?.pipe(file);
    if (config.START_LOGS === 'inherit') {
      child.stdout?.pipe(process.stdout);
      child.stderr?.pipe(process.stderr);
    }
    child.on('exit', (code, signal) => {
      if (!stopping) say(`${name} stopped (${signal ?? `exit code ${code}`}); see .data/logs/${name}.log`);
    });
    children.set(name, child);
  }

  const stopAll = async () => {
    stopping = true;
    for (const child of children.values())
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const running = [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(running.map((c) => new Promise((done) => c.once('exit', done))));
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say('Stopping ImageMart…');
      void stopAll().then(() => process.exit(0));
    });
  }

  try {
    await waitForHealth(baseUrl, children, 60_000);
    if (adminKey) await seedDemo(baseUrl, adminKey);
  } catch (err) {
    await stopAll();
    throw err;
  }
  say('');
  say(`ImageMart is running at ${baseUrl}`);
  say(`  API docs ${baseUrl}/docs · health ${baseUrl}/health · metrics ${baseUrl}/metrics (admin key)`);
  say(`  logs in .data/logs/ · Ctrl+C stops every process`);
});
