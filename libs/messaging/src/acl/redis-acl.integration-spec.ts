import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import type { Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventQueue, QueueName, platformKeysKey } from '@imagemart/contracts';
import { createTestRedisPrefix, createTestRedisUser, waitFor, type TestRedisUser } from '@imagemart/testing';
import { createQueue, createWorker } from '../bullmq/index.js';
import {
  RedisStreamsServer,
  createRpcClient,
  rpcStreamKey,
  sendRpc,
  type RedisStreamsClient,
} from '../redis-streams/index.js';
import {
  REDIS_ACL_PROCESSES,
  redisAclRules,
  redisUserName,
  type RedisAclProcess,
} from '@imagemart/contracts';
import { redisPasswordHash, redisPasswordVariable, redisUrlWithUser } from './redis-acl.users.js';

@Controller()
class EchoHandler {
  @MessagePattern('acl.echo')
  echo(@Payload() data: { tag: string }) {
    echoed.push(data.tag);
    return { tag: data.tag };
  }
}

/** Every tag the echo handler saw, in order. */
const echoed: string[] = [];

@Module({ controllers: [EchoHandler] })
class EchoModule {}

const redisPrefix = createTestRedisPrefix('redis-acl');
const { prefix } = redisPrefix;
let admin: Redis;
const users = {} as Record<RedisAclProcess, TestRedisUser>;
const apps: INestMicroservice[] = [];
const clients: RedisStreamsClient[] = [];
const queues: Queue[] = [];
const workers: Worker[] = [];
const connections: Redis[] = [];

/** A plain connection signed in as a process's user. */
function as(process: RedisAclProcess): Redis {
  const redis = new Redis(users[process].url, { maxRetriesPerRequest: 0, lazyConnect: true });
  connections.push(redis);
  return redis;
}

async function serve(service: 'catalog' | 'permission' | 'billing', connection: string): Promise<void> {
  const app = await NestFactory.createMicroservice(EchoModule, {
    strategy: new RedisStreamsServer({ connection, prefix, service }),
    logger: false,
  });
  await app.listen();
  apps.push(app);
}

function client(service: string, connection: string): RedisStreamsClient {
  const c = createRpcClient(service, { connection, prefix, timeoutMs: 3000 });
  clients.push(c);
  return c;
}

/** What ACL LOG says our users were refused since the test began: must stay empty for allowed work. */
async function refusals(): Promise<string[]> {
  const log = (await admin.call('ACL', 'LOG')) as unknown[][];
  return log
    .map((entry) => {
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
      return `${String(fields.get('username'))} ${String(fields.get('reason'))} ${String(fields.get('object'))}`;
    })
    .filter((line) => line.startsWith(`${prefix}.`));
}

beforeAll(async () => {
  admin = new Redis(redisPrefix.url);
  for (const process of REDIS_ACL_PROCESSES) {
    users[process] = await createTestRedisUser(redisPrefix, process, redisAclRules(prefix, process));
    expect(users[process].user).toBe(redisUserName(prefix, process));
  }
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.close()));
  for (const c of connections) c.disconnect();
  await redisPrefix.cleanup();
  // cleanup() took the users with the keys.
  expect(((await admin.call('ACL', 'USERS')) as string[]).filter((u) => u.startsWith(`${prefix}.`))).toEqual(
    [],
  );
  admin.disconnect();
});

describe('Redis ACL users per process', () => {
  it('lets the gateway, billing and the catalog itself call the catalog, each reading only its own replies', async () => {
    await serve('catalog', users.catalog.url);
    const gateway = client('catalog', users['storefront-api'].url);
    const billing = client('catalog', users.billing.url);
    const self = client('catalog', users.catalog.url);
    await expect(sendRpc(gateway, 'acl.echo', { tag: 'from the gateway' })).resolves.toEqual({
      tag: 'from the gateway',
    });
    await expect(sendRpc(billing, 'acl.echo', { tag: 'from billing' })).resolves.toEqual({
      tag: 'from billing',
    });
    await expect(sendRpc(self, 'acl.echo', { tag: 'health check' })).resolves.toEqual({
      tag: 'health check',
    });

    // Each client's reply list carries its process's name (taken from its Redis user).
    const replyKeyOf = (c: RedisStreamsClient) => (c as unknown as { replyKey: string }).replyKey;
    expect(replyKeyOf(gateway)).toMatch(new RegExp(`^${prefix}:rpc:reply:storefront-api:[0-9a-f-]{36}$`));
    expect(replyKeyOf(billing)).toMatch(new RegExp(`^${prefix}:rpc:reply:billing:[0-9a-f-]{36}$`));
    expect(await refusals()).toEqual([]);
  });

  it('finishes, once and unanswered, a request whose reply list the service may not write', async () => {
    // The gateway's user may put requests on the catalog's stream; this one names a list outside
    // every reply pattern, which the catalog's user may not push to.
    const gateway = new Redis(users['storefront-api'].url);
    connections.push(gateway);
    const stream = rpcStreamKey(prefix, 'catalog');
    await gateway.xadd(
      stream,
      '*',
      ...['id', 'stray-1', 'pattern', 'acl.echo', 'data', JSON.stringify({ tag: 'stray' }), 'replyTo', `${prefix}:not-a-reply-list`],
      ...['deadline', String(Date.now() + 4000), 'metadata', '{}'],
    );
    await waitFor(async () => ((await admin.xpending(stream, 'catalog')) as [number])[0] === 0 && echoed.includes('stray'), {
      what: 'the entry to be finished',
    });
    // Past the reclaim interval: handled once, not again and again.
    await new Promise((r) => setTimeout(r, 4000));
    expect(echoed.filter((t) => t === 'stray')).toHaveLength(1);
    expect(await admin.exists(`${prefix}:not-a-reply-list`)).toBe(0);
    expect(await refusals()).toEqual([`${prefix}.catalog key ${prefix}:not-a-reply-list`]);
    await admin.call('ACL', 'LOG', 'RESET'); // the refusal above was the point; later checks start clean
  }, 20_000);

  it('runs a BullMQ job from a producer user to a worker user', async () => {
    // The catalog's outbox relays catalog.instance.changed to billing's event queue.
    const producer = createQueue(EventQueue.billing, { url: users.catalog.url, prefix });
    queues.push(producer);
    const done: string[] = [];
    const worker = createWorker(
      EventQueue.billing,
      (job: Job<{ n: number }>) => {
        done.push(job.id ?? '');
        return Promise.resolve(job.data.n * 2);
      },
      { url: users.billing.url, prefix },
    );
    workers.push(worker);
    await producer.add('catalog.instance.changed', { n: 21 }, { jobId: 'event-1' });
    await waitFor(() => done.length === 1, { what: 'the worker to run the job' });
    await waitFor(async () => (await producer.getJobState('event-1')) === 'completed', {
      what: 'the job to complete',
    });
    expect((await producer.getJob('event-1'))?.returnvalue).toBe(42);

    // The gateway's dashboard and metrics read (and may retry) the queues they show.
    const dashboard = createQueue(QueueName.bundling, { url: users['storefront-api'].url, prefix });
    queues.push(dashboard);
    await expect(dashboard.getJobCounts('waiting', 'failed')).resolves.toEqual({ waiting: 0, failed: 0 });
    expect(await refusals()).toEqual([]);
  });

  it("refuses another process's reply list, a stream or queue it has no business with, and others' keys", async () => {
    const replyKey = `${prefix}:rpc:reply:storefront-api:00000000-0000-0000-0000-000000000000`;
    await admin.rpush(replyKey, '{"id":"r1","response":1}');
    const billing = as('billing');
    // Billing may not read (nor take, nor delete) the gateway's replies.
    await expect(billing.lrange(replyKey, 0, -1)).rejects.toThrow(/NOPERM/);
    await expect(billing.blpop(replyKey, 0.1)).rejects.toThrow(/NOPERM/);
    await expect(billing.unlink(replyKey)).rejects.toThrow(/NOPERM/);
    // The catalog answers the gateway, so it may push onto its reply lists, yet not read or delete them.
    const catalog = as('catalog');
    await expect(catalog.lpop(replyKey)).rejects.toThrow(/NOPERM/);
    await expect(catalog.del(replyKey)).rejects.toThrow(/NOPERM/);
    expect(await admin.lrange(replyKey, 0, -1)).toEqual(['{"id":"r1","response":1}']);

    // Billing never calls the permission service; the bundler-worker calls no one.
    await expect(billing.xadd(rpcStreamKey(prefix, 'permission'), '*', 'id', 'x')).rejects.toThrow(/NOPERM/);
    await expect(as('bundler-worker').xadd(rpcStreamKey(prefix, 'catalog'), '*', 'id', 'x')).rejects.toThrow(
      /NOPERM/,
    );
    // A caller may add requests to a service's stream, but not read the requests of others.
    const gateway = as('storefront-api');
    await expect(gateway.xrange(rpcStreamKey(prefix, 'catalog'), '-', '+')).rejects.toThrow(/NOPERM/);
    await expect(
      gateway.xreadgroup('GROUP', 'catalog', 'intruder', 'STREAMS', rpcStreamKey(prefix, 'catalog'), '>'),
    ).rejects.toThrow(/NOPERM/);
    expect(await admin.exists(rpcStreamKey(prefix, 'permission'))).toBe(0);

    // Queues: billing may not add a bundling job; the gateway may not touch a service's event queue.
    const intruder = createQueue(QueueName.bundling, { url: users.billing.url, prefix });
    queues.push(intruder);
    await expect(
      intruder.add('bundle', { imageId: 'ami-00000000000000000' }, { jobId: 'forged' }),
    ).rejects.toThrow(/NOPERM/);
    await expect(gateway.hgetall(`${prefix}:${EventQueue.permission}:meta`)).rejects.toThrow(/NOPERM/);
    expect(await admin.exists(`${prefix}:${QueueName.bundling}:forged`)).toBe(0);

    // Keys: only the permission service moves the API-key generation; only the bundler publishes platform keys.
    await expect(gateway.incr(`${prefix}:permission:apikey-generation`)).rejects.toThrow(/NOPERM/);
    // (The gateway's dashboard rights on the bundling queue cover that key: it lies in the queue's namespace.)
    await expect(catalog.set(platformKeysKey(prefix), '{}')).rejects.toThrow(/NOPERM/);
    await expect(billing.set(platformKeysKey(prefix), '{}')).rejects.toThrow(/NOPERM/);
    // No key listing, no server administration, no foreign channel.
    await expect(gateway.scan('0')).rejects.toThrow(/NOPERM/);
    await expect(gateway.keys('*')).rejects.toThrow(/NOPERM/);
    await expect(gateway.call('CONFIG', 'GET', 'maxmemory')).rejects.toThrow(/NOPERM/);
    await expect(gateway.flushall()).rejects.toThrow(/NOPERM/);
    await expect(gateway.publish(`${prefix}:permission:decision-invalidations`, 'x')).rejects.toThrow(
      /NOPERM/,
    );
    expect(await admin.exists(`${prefix}:permission:apikey-generation`, platformKeysKey(prefix))).toBe(0);
  });

  it('refuses a wrong password', async () => {
    const wrong = new Redis(redisUrlWithUser(redisPrefix.url, users.catalog.user, 'not-the-password'), {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    connections.push(wrong);
    let refused: Error | undefined;
    wrong.on('error', (err: Error) => (refused ??= err));
    await expect(wrong.connect().then(() => wrong.ping())).rejects.toThrow();
    expect(refused?.message).toMatch(/WRONGPASS|invalid username-password/);
  });
});

describe('the ACL file', () => {
  let server: ChildProcess | undefined;
  let dir: string;
  let url: string;
  let output = '';
  const passwords = Object.fromEntries(
    [...REDIS_ACL_PROCESSES, 'admin' as const].map((p) => [p, `${p}-${randomBytes(12).toString('hex')}`]),
  ) as Record<RedisAclProcess | 'admin', string>;

  beforeAll(async () => {
    // As docker-compose starts Redis: the start script renders the committed template with the
    // passwords in its environment. The template is for the prefix `imagemart`.
    dir = mkdtempSync(join(tmpdir(), 'imagemart-acl-'));
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      REDIS_ACL_TEMPLATE: fileURLToPath(
        new URL('../../../../deploy/redis/users.acl.template', import.meta.url),
      ),
      REDIS_ACL_FILE: join(dir, 'users.acl'),
    };
    for (const [p, password] of Object.entries(passwords))
      env[redisPasswordVariable(p as RedisAclProcess | 'admin')] = password;
    server = spawn(
      'sh',
      [
        fileURLToPath(new URL('../../../../deploy/redis/redis-acl-start.sh', import.meta.url)),
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(
      () =>
        output.includes('Ready to accept connections') ||
        (server?.exitCode != null ? Promise.reject(new Error(output)) : false),
      {
        what: 'redis-server with the ACL file',
        timeoutMs: 10_000,
      },
    );
  });

  afterAll(() => {
    for (const c of connections) c.disconnect();
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts Redis with every process user, no password in clear, and refuses a client without credentials', async () => {
    const rendered = readFileSync(join(dir, 'users.acl'), 'utf8');
    for (const password of Object.values(passwords)) expect(rendered).not.toContain(password);
    expect(rendered).toContain(`#${redisPasswordHash(passwords.catalog)}`);

    const anonymous = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableReadyCheck: false,
    });
    connections.push(anonymous);
    await anonymous.connect();
    await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    await expect(anonymous.set('imagemart:x', '1')).rejects.toThrow(/NOAUTH/);

    const adminHere = new Redis(redisUrlWithUser(url, 'admin', passwords.admin));
    connections.push(adminHere);
    const listed = (await adminHere.call('ACL', 'USERS')) as string[];
    expect(listed.sort()).toEqual(
      ['admin', 'default', ...REDIS_ACL_PROCESSES.map((p) => redisUserName('imagemart', p))].sort(),
    );
    // The file's rules are the ones `npm start` sets.
    const reference = new Redis(redisPrefix.url);
    connections.push(reference);
    for (const process of REDIS_ACL_PROCESSES) {
      await reference.call(
        'ACL',
        'SETUSER',
        `${prefix}.reference`,
        ...redisAclRules('imagemart', process),
        '>x',
      );
      const expected = (await reference.call('ACL', 'GETUSER', `${prefix}.reference`)) as unknown[];
      const actual = (await adminHere.call(
        'ACL',
        'GETUSER',
        redisUserName('imagemart', process),
      )) as unknown[];
      // Same flags, commands, keys, channels and selectors (Redis may list a set in another order);
      // only the password hash differs.
      const normal = (rules: unknown): unknown =>
        Array.isArray(rules)
          ? rules.filter((_, i) => rules[i - 1] !== 'passwords' && rules[i] !== 'passwords').map(normal)
          : typeof rules === 'string'
            ? rules.split(' ').sort().join(' ')
            : rules;
      expect(normal(actual), process).toEqual(normal(expected));
    }
    await reference.call('ACL', 'DELUSER', `${prefix}.reference`);

    // A process's user works there with its password, and only with it.
    const gateway = new Redis(
      redisUrlWithUser(url, redisUserName('imagemart', 'storefront-api'), passwords['storefront-api']),
    );
    connections.push(gateway);
    await expect(gateway.get('imagemart:permission:apikey-generation')).resolves.toBeNull();
    await expect(gateway.incr('imagemart:permission:apikey-generation')).rejects.toThrow(/NOPERM/);
    await expect(
      adminHere.call('AUTH', redisUserName('imagemart', 'catalog'), passwords.billing),
    ).rejects.toThrow(/WRONGPASS/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
