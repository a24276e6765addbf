import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@imagemart/contracts';
import { requestContext } from '@imagemart/observability';
import { createTestRedisPrefix, waitFor } from '@imagemart/testing';
import {
  RedisStreamsContext,
  RedisStreamsServer,
  createRpcClient,
  rpcStreamKey,
  sendRpc,
  type RedisStreamsClient,
  type RedisStreamsServerOptions,
} from './index.js';

/** Every request a handler of this process saw. */
interface Handled {
  pattern: string;
  tag: string;
  consumer: string;
  reclaimed: boolean;
  requestId?: string;
}
const handled: Handled[] = [];

function record(pattern: string, data: { tag: string }, ctx: RedisStreamsContext): Handled {
  const entry = {
    pattern,
    tag: data.tag,
    consumer: ctx.getDelivery().consumer,
    reclaimed: ctx.getDelivery().reclaimed,
    requestId: requestContext.requestId(),
  };
  handled.push(entry);
  return entry;
}

@Controller()
class TestHandler {
  @MessagePattern('test.echo')
  echo(@Payload() data: { tag: string }, @Ctx() ctx: RedisStreamsContext) {
    const seen = record('test.echo', data, ctx);
    return { tag: data.tag, requestId: seen.requestId, metadata: ctx.getMetadata(), consumer: seen.consumer };
  }

  @MessagePattern('test.slow')
  async slow(@Payload() data: { tag: string; ms: number }, @Ctx() ctx: RedisStreamsContext) {
    const seen = record('test.slow', data, ctx);
    await sleep(data.ms);
    return { tag: data.tag, consumer: seen.consumer };
  }

  @MessagePattern('test.domain-error')
  domainError() {
    throw new RpcException({ code: ErrorCode.InvalidParameterValue, detail: 'size must be positive' });
  }

  @MessagePattern('test.crash')
  crash() {
    throw new Error('connection string postgres://admin:hunter2@db failed');
  }

  @EventPattern<string>('test.happened')
  happened(@Payload() data: { tag: string }, @Ctx() ctx: RedisStreamsContext) {
    record('test.happened', data, ctx);
  }

  /** The survivor's side of the killed-replica test: the fixture's handler never answers. */
  @MessagePattern('fixture.block')
  block(@Payload() data: { tag: string }, @Ctx() ctx: RedisStreamsContext) {
    const seen = record('fixture.block', data, ctx);
    return { tag: data.tag, consumer: seen.consumer, reclaimed: seen.reclaimed };
  }
}

@Module({ controllers: [TestHandler] })
class TestModule {}

const redisPrefix = createTestRedisPrefix('redis-streams');
const { prefix, url } = redisPrefix;
let redis: Redis;
const apps: INestMicroservice[] = [];
const clients: RedisStreamsClient[] = [];
const children: ChildProcess[] = [];

async function startReplica(service: string, options: Partial<RedisStreamsServerOptions> = {}) {
  const app = await NestFactory.createMicroservice(TestModule, {
    strategy: new RedisStreamsServer({ connection: url, prefix, service, claimIdleMs: 600, ...options }),
    logger: false,
  });
  await app.listen();
  apps.push(app);
  return app;
}

function client(service: string, timeoutMs = 3000, connection = url): RedisStreamsClient {
  const c = createRpcClient(service, { connection, prefix, timeoutMs });
  clients.push(c);
  return c;
}

/** The rejection of a promise that must reject. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${JSON.stringify(value)}`);
    },
    (err: unknown) => err,
  );
}

beforeAll(() => {
  redis = new Redis(url);
});

afterEach(async () => {
  handled.length = 0;
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await redisPrefix.cleanup();
  redis.disconnect();
});

describe('RedisStreams transport', () => {
  it('answers a request through a Nest microservice and carries the request id', async () => {
    await startReplica('echo');
    const c = client('echo');
    c.setOnDispatchHook((packet) => {
      packet.metadata = { tenant: 't-1' };
    });

    const reply = await requestContext.run({ requestId: 'req-abc-123' }, () =>
      sendRpc<{ tag: string; requestId: string; metadata: Record<string, string> }>(c, 'test.echo', {
        tag: 'a',
      }),
    );
    expect(reply).toMatchObject({ tag: 'a', requestId: 'req-abc-123' });
    expect(reply.metadata).toEqual({ tenant: 't-1', requestId: 'req-abc-123' });

    // Outside a request context the handler still runs under a (fresh) request id.
    const bare = await sendRpc<{ requestId: string }>(c, 'test.echo', { tag: 'b' });
    expect(bare.requestId).toMatch(/^[A-Za-z0-9._:-]+$/);

    // Answered entries are acked and deleted: the stream stays empty.
    expect(await redis.xlen(rpcStreamKey(prefix, 'echo'))).toBe(0);
  });

  it('delivers an event (emit) to one replica, with the request id', async () => {
    await startReplica('events', { consumer: 'ev-a' });
    await startReplica('events', { consumer: 'ev-b' });
    const c = client('events');
    await requestContext.run({ requestId: 'req-ev-1' }, () =>
      firstValueFrom(c.emit('test.happened', { tag: 'e1' }), { defaultValue: undefined }),
    );
    await waitFor(() => handled.length > 0, { what: 'the event' });
    await sleep(100);
    expect(handled).toEqual([
      expect.objectContaining({ pattern: 'test.happened', tag: 'e1', requestId: 'req-ev-1' }),
    ]);
    await waitFor(async () => (await redis.xlen(rpcStreamKey(prefix, 'events'))) === 0, { what: 'the ack' });
  });

  it('serves a request sent before any replica was listening', async () => {
    const c = client('late', 5000);
    const started = Date.now();
    const reply = sendRpc<{ tag: string }>(c, 'test.echo', { tag: 'early' });
    await sleep(300);
    await startReplica('late');
    await expect(reply).resolves.toMatchObject({ tag: 'early' });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('hands each request to exactly one of two replicas', async () => {
    const a = await startReplica('pair', { concurrency: 8, consumer: 'replica-a' });
    const b = await startReplica('pair', { concurrency: 8, consumer: 'replica-b' });
    const c = client('pair', 10_000);

    const tags = Array.from({ length: 200 }, (_, i) => `r${i}`);
    const replies = await Promise.all(
      tags.map((tag) => sendRpc<{ tag: string }>(c, 'test.slow', { tag, ms: 5 })),
    );
    expect(replies.map((r) => r.tag)).toEqual(tags);

    const counts = new Map<string, number>();
    for (const h of handled) counts.set(h.tag, (counts.get(h.tag) ?? 0) + 1);
    expect(counts.size).toBe(200);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(handled.every((h) => !h.reclaimed)).toBe(true);
    const byReplica = (name: string) => handled.filter((h) => h.consumer === name).length;
    expect(byReplica('replica-a')).toBeGreaterThan(0);
    expect(byReplica('replica-b')).toBeGreaterThan(0);
    expect(byReplica('replica-a') + byReplica('replica-b')).toBe(200);
    expect(a).toBeDefined();
    expect(b).toBeDefined();
  });

  it('lets a live replica reclaim the request of a replica killed mid-request', async () => {
    const service = 'killed';
    const fixture = fileURLToPath(new URL('./testing/replica.fixture.ts', import.meta.url));
    const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
    const child = fork(fixture, [], {
      cwd: repoRoot, // tsx reads the path aliases from the root tsconfig
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, REDIS_URL: url, PREFIX: prefix, SERVICE: service, CLAIM_IDLE_MS: '600' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(child);
    const messages: Array<{ type: string; tag?: string }> = [];
    child.on('message', (m) => messages.push(m as { type: string }));
    await waitFor(() => messages.some((m) => m.type === 'ready'), {
      timeoutMs: 20_000,
      what: 'the fixture replica',
    });

    const c = client(service, 8000);
    const started = Date.now();
    const reply = sendRpc<{ tag: string; consumer: string; reclaimed: boolean }>(c, 'fixture.block', {
      tag: 'k1',
    });
    await waitFor(() => messages.some((m) => m.type === 'handling' && m.tag === 'k1'), {
      what: 'the fixture to take the request',
    });

    // A live sibling leaves the request alone while its replica is alive (the refresh works)...
    await startReplica(service, { claimIdleMs: 600, claimIntervalMs: 100, consumer: 'survivor' });
    await sleep(1500);
    expect(handled).toHaveLength(0);

    // ...and takes it over once that replica is dead.
    child.kill('SIGKILL');
    await expect(reply).resolves.toEqual({ tag: 'k1', consumer: 'survivor', reclaimed: true });
    expect(Date.now() - started).toBeLessThan(8000);
    expect(handled.filter((h) => h.tag === 'k1')).toHaveLength(1);
  });

  it('times out, and reports unknown patterns, domain errors, crashes and a missing Redis', async () => {
    // No replica at all: ServiceTimeout after timeoutMs, not a hang.
    let started = Date.now();
    const timeout = await failure(sendRpc(client('nobody', 500), 'test.echo', { tag: 'x' }));
    expect(timeout).toMatchObject({ code: ErrorCode.ServiceTimeout });
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(Date.now() - started).toBeLessThan(1500);

    await startReplica('errors');
    const c = client('errors', 3000);

    started = Date.now();
    const unknown = await failure(sendRpc(c, 'test.nope', { tag: 'x' }));
    expect(unknown).toEqual({
      code: ErrorCode.ServiceUnavailable,
      detail: 'errors has no handler for test.nope',
    });
    expect(Date.now() - started).toBeLessThan(1000);

    expect(await failure(sendRpc(c, 'test.domain-error', {}))).toEqual({
      code: ErrorCode.InvalidParameterValue,
      detail: 'size must be positive',
    });
    // Exactly this: no message, no stack, nothing from the thrown Error.
    expect(await failure(sendRpc(c, 'test.crash', {}))).toEqual({
      code: ErrorCode.InternalError,
      detail: 'Internal error',
    });

    // A reply after the caller gave up is dropped; the client goes on working.
    const impatient = client('errors', 200);
    expect(await failure(sendRpc(impatient, 'test.slow', { tag: 'late', ms: 400 }))).toMatchObject({
      code: ErrorCode.ServiceTimeout,
    });
    await sleep(400);
    await expect(sendRpc(impatient, 'test.echo', { tag: 'after' })).resolves.toMatchObject({ tag: 'after' });

    // Nothing listens on port 1: the call fails at once, it does not wait for its timeout.
    started = Date.now();
    const down = await failure(
      sendRpc(client('errors', 5000, 'redis://127.0.0.1:1'), 'test.echo', { tag: 'x' }),
    );
    expect(down).toMatchObject({ code: ErrorCode.ServiceUnavailable });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('skips a request whose caller has already given up', async () => {
    const stream = rpcStreamKey(prefix, 'expired');
    await redis.xadd(
      stream,
      '*',
      'id',
      'old-1',
      'pattern',
      'test.echo',
      'data',
      '{"tag":"old"}',
      'replyTo',
      `${prefix}:rpc:reply:gone`,
      'deadline',
      String(Date.now() - 1000),
      'metadata',
      '{}',
    );
    await startReplica('expired');
    await waitFor(async () => (await redis.xlen(stream)) === 0, { what: 'the expired entry to be dropped' });
    expect(handled).toHaveLength(0);
    expect(await redis.exists(`${prefix}:rpc:reply:gone`)).toBe(0);
  });

  it('closes gracefully: finishes requests in flight, reads no more, leaves no consumer', async () => {
    const app = await startReplica('closing', { consumer: 'closer' });
    const c = client('closing', 3000);
    const reply = sendRpc<{ tag: string }>(c, 'test.slow', { tag: 'inflight', ms: 400 });
    await waitFor(() => handled.some((h) => h.tag === 'inflight'), { what: 'the handler to start' });

    const started = Date.now();
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    // close() waited for the handler, and did not wait out a blocking read (blockMs is 5 s).
    await expect(reply).resolves.toEqual({ tag: 'inflight', consumer: 'closer' });
    expect(Date.now() - started).toBeLessThan(2000);

    const stream = rpcStreamKey(prefix, 'closing');
    expect(await redis.xinfo('CONSUMERS', stream, 'closing')).toEqual([]);
    // A request after close stays in the stream for the next replica.
    expect(await failure(sendRpc(client('closing', 300), 'test.echo', { tag: 'after' }))).toMatchObject({
      code: ErrorCode.ServiceTimeout,
    });
    expect(await redis.xlen(stream)).toBe(1);
  });
});
