import { setTimeout as sleep } from 'node:timers/promises';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import type { TestingModule } from '@nestjs/testing';
import { loadConfig } from '@imagemart/config';
import {
  BillingPattern,
  CatalogPattern,
  ErrorCode,
  type EntitlementCheckResponse,
  type ImageChanged,
} from '@imagemart/contracts';
import { PrismaClient } from '@imagemart/database';
import { DomainException, RedisStreamsServer } from '@imagemart/messaging';
import { serviceTestingModule, TestIdentities } from '@imagemart/testing';
import { DecisionInvalidationBus } from './decision/decision-invalidation.bus.js';
import { PermissionModule } from './permission.module.js';
import { permissionConfigSchema } from './permission.config.js';

/**
 * Test support for the permission service: an instance of its module on a test database and
 * Redis prefix (two of them on one prefix are two replicas), and stand-ins for the catalog and
 * billing services that answer the patterns the permission service calls, over the real
 * Redis Streams transport.
 */
export interface PermissionInstanceOptions {
  prisma: PrismaClient;
  redisUrl: string;
  prefix: string;
  env?: Record<string, string>;
}

export async function startPermissionInstance(options: PermissionInstanceOptions): Promise<TestingModule> {
  const config = loadConfig(permissionConfigSchema, {
    REDIS_URL: options.redisUrl,
    REDIS_PREFIX: options.prefix,
    RPC_TIMEOUT_MS: '2000',
    ...TestIdentities.shared().env('permission'),
    ...options.env,
  });
  const moduleRef = await serviceTestingModule({ prisma: options.prisma, config, imports: [PermissionModule] }).compile();
  await moduleRef.init();
  const bus = moduleRef.get(DecisionInvalidationBus);
  for (const deadline = Date.now() + 5000; !bus.listening; await sleep(20)) {
    if (Date.now() > deadline) throw new Error('The invalidation subscription did not come up within 5 s');
  }
  return moduleRef;
}

/** What the stand-ins answer; tests change it as they go. */
export class UpstreamState {
  readonly images = new Map<string, ImageChanged>();
  /** `accountId|productCode` pairs billing says are entitled. */
  readonly entitlements = new Set<string>();
  readonly calls: { pattern: string; data: unknown }[] = [];
}

export async function startUpstreamStandIns(redisUrl: string, prefix: string, state: UpstreamState): Promise<() => Promise<void>> {
  @Controller()
  class CatalogStandIn {
    @MessagePattern(CatalogPattern.imageInternalGet)
    get(@Payload() data: { imageId: string }): ImageChanged {
      state.calls.push({ pattern: CatalogPattern.imageInternalGet, data });
      const image = state.images.get(data.imageId);
      if (!image) throw new DomainException(ErrorCode.InvalidAMIIDNotFound, `The image id '[${data.imageId}]' does not exist`);
      return image;
    }
  }

  @Controller()
  class BillingStandIn {
    @MessagePattern(BillingPattern.entitlementCheck)
    check(@Payload() data: { accountId: string; productCodes: string[] }): EntitlementCheckResponse {
      state.calls.push({ pattern: BillingPattern.entitlementCheck, data });
      const entitled = data.productCodes.every((code) => state.entitlements.has(`${data.accountId}|${code}`));
      return { entitled, subscriptionId: entitled ? 'sub-from-billing' : null };
    }
  }

  @Module({ controllers: [CatalogStandIn] })
  class CatalogModule {}
  @Module({ controllers: [BillingStandIn] })
  class BillingModule {}

  const apps: INestMicroservice[] = [];
  for (const [service, module] of [
    ['catalog', CatalogModule],
    ['billing', BillingModule],
  ] as const) {
    const app = await NestFactory.createMicroservice(module, {
      strategy: new RedisStreamsServer({ connection: redisUrl, prefix, service, trustedKeys: TestIdentities.shared().trustedKeys(service) }),
      logger: ['error'],
    });
    await app.listen();
    apps.push(app);
  }
  return async () => {
    await Promise.all(apps.map((a) => a.close()));
  };
}

let sequence = 0;
const run = Math.floor(Math.random() * 0xfffff);

/** A fresh image id: `ami-` and 17 hex digits. */
export const newImageId = () => `ami-${run.toString(16).padStart(5, '0')}${(++sequence).toString(16).padStart(12, '0')}`;

/** A fresh 12-digit account id (no account row: launch permissions accept any well-formed id). */
export const newAccountId = () => String(Math.floor(Math.random() * 1e6)).padStart(6, '0') + String(++sequence).padStart(6, '0');

/** The error code a call fails with, or 'resolved'. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    if (err instanceof DomainException) return err.code;
    throw err;
  }
}

export const image = (overrides: Partial<ImageChanged> & Pick<ImageChanged, 'ownerId'>): ImageChanged => ({
  imageId: newImageId(),
  state: 'available',
  productCodes: [],
  revision: 1,
  ...overrides,
});
