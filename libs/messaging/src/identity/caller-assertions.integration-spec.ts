import { randomUUID } from 'node:crypto';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@imagemart/contracts';
import { createTestRedisPrefix, TestIdentities, type TestRedisPrefix } from '@imagemart/testing';
import {
  RedisStreamsServer,
  createRpcClient,
  sendRpc,
  type RedisStreamsClient,
} from '../redis-streams/index.js';
import { CallerVerifier } from './caller-assertions.js';
import { AssertionRefused, payloadDigest } from '@imagemart/contracts';

/**
 * Signed callers over the real transport and the real Redis: a service acts only on what a
 * process allowed to send the pattern signed for it, for this payload, once.
 */
const ids = TestIdentities.shared();
const acted: unknown[] = [];

@Controller()
class AccountsStandIn {
  /** A gateway-only pattern that names a person. */
  @MessagePattern('permission.account.list')
  list(@Payload() data: { caller: { accountId: string }; limit: number }) {
    acted.push(data);
    return { items: [], caller: data.caller.accountId };
  }

  /** A pattern only the catalog may send. */
  @MessagePattern('permission.launch.decide')
  decide(@Payload() data: { accountId: string }) {
    acted.push(data);
    return { allowed: true, accountId: data.accountId };
  }
}

@Module({ controllers: [AccountsStandIn] })
class StandInModule {}

let redis: TestRedisPrefix;
let service: INestMicroservice;
const clients: RedisStreamsClient[] = [];

function client(signer?: ReturnType<TestIdentities['signer']>): RedisStreamsClient {
  const made = createRpcClient('permission', {
    connection: redis.url,
    prefix: redis.prefix,
    timeoutMs: 3000,
    ...(signer ? { signer } : {}),
  });
  clients.push(made);
  return made;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

beforeAll(async () => {
  redis = createTestRedisPrefix('caller-assertions');
  service = await NestFactory.createMicroservice(StandInModule, {
    strategy: new RedisStreamsServer({
      connection: redis.url,
      prefix: redis.prefix,
      service: 'permission',
      trustedKeys: ids.trustedKeys('permission'),
    }),
    logger: false,
  });
  await service.listen();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await service?.close();
  await redis?.cleanup();
});

describe('a service with trusted keys', () => {
  const caller = { accountId: '111122223333', roles: ['admin'] };

  it('acts on a request the gateway signed for this payload', async () => {
    const gateway = client(ids.signer('storefront-api'));
    await gateway.connect();
    await expect(sendRpc(gateway, 'permission.account.list', { caller, limit: 5 })).resolves.toEqual({
      items: [],
      caller: caller.accountId,
    });
    const catalog = client(ids.signer('catalog'));
    await catalog.connect();
    await expect(
      sendRpc(catalog, 'permission.launch.decide', { accountId: caller.accountId }),
    ).resolves.toMatchObject({ allowed: true });
  });

  it('refuses unsigned requests, senders the pattern does not allow, and services speaking for a person', async () => {
    const before = acted.length;
    const unsigned = client();
    const catalog = client(ids.signer('catalog'));
    const gateway = client(ids.signer('storefront-api'));
    await Promise.all([unsigned.connect(), catalog.connect(), gateway.connect()]);
    expect(await codeOf(sendRpc(unsigned, 'permission.account.list', { caller, limit: 5 }))).toBe(
      ErrorCode.InvalidCallerAssertion,
    );
    // The catalog may ask for launch decisions, not list accounts (with or without a person).
    expect(await codeOf(sendRpc(catalog, 'permission.account.list', { caller, limit: 5 }))).toBe(
      ErrorCode.InvalidCallerAssertion,
    );
    // The gateway may not send what only the catalog sends.
    expect(await codeOf(sendRpc(gateway, 'permission.launch.decide', { accountId: caller.accountId }))).toBe(
      ErrorCode.InvalidCallerAssertion,
    );
    expect(acted.length).toBe(before);
  });

  it('refuses a copy of a request already acted on, and a request whose payload was changed after signing', async () => {
    const raw = new Redis(redis.url);
    try {
      const send = async (data: unknown, signedData: unknown, id = randomUUID(), assertion?: string) => {
        const replyTo = `${redis.prefix}:rpc:reply:${randomUUID()}`;
        const made =
          assertion ??
          ids.signer('storefront-api').assertion({
            service: 'permission',
            id,
            pattern: 'permission.account.list',
            data: signedData,
            dataJson: JSON.stringify(signedData),
          });
        await raw.xadd(
          `${redis.prefix}:rpc:permission`,
          '*',
          ...[
            'id',
            id,
            'pattern',
            'permission.account.list',
            'data',
            JSON.stringify(data),
            'replyTo',
            replyTo,
          ],
          ...['deadline', String(Date.now() + 3000), 'metadata', '{}', 'assertion', made],
        );
        const reply = await raw.blpop(replyTo, 3);
        return {
          id,
          assertion: made,
          reply: JSON.parse(reply![1]) as { err?: { code: string }; response?: unknown },
        };
      };
      const honest = { caller, limit: 5 };
      const first = await send(honest, honest);
      expect(first.reply.response).toBeDefined();
      const before = acted.length;
      const replay = await send(honest, honest, first.id, first.assertion);
      expect(replay.reply.err?.code).toBe(ErrorCode.InvalidCallerAssertion);
      const swapped = await send(
        { caller: { accountId: '999988887777', roles: ['admin'] }, limit: 5 },
        honest,
      );
      expect(swapped.reply.err?.code).toBe(ErrorCode.InvalidCallerAssertion);
      expect(acted.length).toBe(before);
    } finally {
      raw.disconnect();
    }
  });
});

describe('CallerVerifier', () => {
  it('takes the same stream entry again (a reclaim after a replica died) but not the same request in another entry', async () => {
    const conn = new Redis(redis.url);
    try {
      const verifier = new CallerVerifier({
        service: 'permission',
        trusted: ids.trustedKeys('permission'),
        redis: conn,
        prefix: redis.prefix,
      });
      const id = randomUUID();
      const data = { caller: { accountId: '111122223333', roles: ['buyer'] }, limit: 1 };
      const dataJson = JSON.stringify(data);
      const assertion = ids
        .signer('storefront-api')
        .assertion({ service: 'permission', id, pattern: 'permission.account.list', data, dataJson });
      const request = { entryId: '1-0', id, pattern: 'permission.account.list', data, dataJson, assertion };
      await expect(verifier.verify(request)).resolves.toMatchObject({
        iss: 'storefront-api',
        sub: '111122223333',
        dig: payloadDigest(dataJson),
      });
      await expect(verifier.verify(request)).resolves.toBeDefined();
      await expect(verifier.verify({ ...request, entryId: '2-0' })).rejects.toMatchObject({
        reason: 'replayed',
      });
      const expired = ids.signClaims('storefront-api', {
        aud: 'permission',
        rid: 'r-old',
        pat: 'permission.account.list',
        dataJson,
        sub: '111122223333',
        iat: Date.now() - 120_000,
        exp: Date.now() - 90_000,
      });
      const refusal = await verifier
        .verify({ ...request, id: 'r-old', assertion: expired })
        .catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(AssertionRefused);
      expect((refusal as AssertionRefused).reason).toBe('expired');
    } finally {
      conn.disconnect();
    }
  });
});

describe('a service whose handler no process may send to', () => {
  it('does not start', async () => {
    @Controller()
    class Unguarded {
      @MessagePattern('permission.nobody.may-send')
      handle() {
        return 1;
      }
    }
    @Module({ controllers: [Unguarded] })
    class UnguardedModule {}
    const app = await NestFactory.createMicroservice(UnguardedModule, {
      strategy: new RedisStreamsServer({
        connection: redis.url,
        prefix: redis.prefix,
        service: 'permission',
        trustedKeys: ids.trustedKeys('permission'),
      }),
      logger: false,
    });
    await expect(app.listen()).rejects.toThrow(/permission\.nobody\.may-send/);
    await app.close().catch(() => undefined);
  });
});
