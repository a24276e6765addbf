import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import type { TestingModule } from '@nestjs/testing';
import type { BaseConfig } from '@imagemart/config';
import { CatalogPattern, ErrorCode, type Caller } from '@imagemart/contracts';
import { PrismaClient } from '@imagemart/database';
import { createRpcClient, DomainException, RedisStreamsServer, type RedisStreamsClient } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { serviceTestingModule, TestIdentities } from '@imagemart/testing';
import { BillingModule } from '../billing.module.js';
import type { CatalogProduct } from '../catalog/catalog.client.js';

/**
 * What the billing integration tests run against: the billing module on a test database, its
 * calls to the catalog answered by a stand-in catalog on the real Redis Streams transport, and
 * (for the RPC tests) the billing module itself served on that transport with a client of it.
 */

/** The products the stand-in catalog knows, by code. */
const products = new Map<string, CatalogProduct>();

@Controller()
class StandInCatalogHandler {
  @MessagePattern(CatalogPattern.productGet)
  get(data: { productCode: string }): CatalogProduct {
    const product = products.get(data.productCode);
    if (!product) throw new DomainException(ErrorCode.InvalidProductCodeNotFound, `The product code '${data.productCode}' does not exist`);
    return product;
  }
}

@Module({ controllers: [StandInCatalogHandler] })
class StandInCatalogModule {}

export interface BillingTestEnvOptions {
  prisma: PrismaClient;
  redisUrl: string;
  prefix: string;
  /** Also serve billing on the transport, for tests that call it as other services do. */
  serveBilling?: boolean;
  /** Further settings of the billing config (Stripe's, say). */
  config?: Record<string, unknown>;
}

export interface BillingTestEnv {
  moduleRef: TestingModule;
  /** A client of the billing service (when `serveBilling`). */
  billing?: RedisStreamsClient;
  close(): Promise<void>;
}

export async function startBillingTestEnv(options: BillingTestEnvOptions): Promise<BillingTestEnv> {
  const connection = { connection: options.redisUrl, prefix: options.prefix };
  const ids = TestIdentities.shared();
  const catalog = await NestFactory.createMicroservice(StandInCatalogModule, {
    strategy: new RedisStreamsServer({ ...connection, service: 'catalog', trustedKeys: ids.trustedKeys('catalog') }),
    logger: ['error'],
  });
  await catalog.listen();

  const config: Partial<BaseConfig> = {
    REDIS_URL: options.redisUrl,
    REDIS_PREFIX: options.prefix,
    RPC_TIMEOUT_MS: 5000,
    CALLER_ASSERTION_TTL_MS: 30_000,
    ...ids.env('billing'),
    ...options.config,
  };
  const moduleRef = await serviceTestingModule({ prisma: options.prisma, config, imports: [BillingModule] })
    .setLogger({ log() {}, warn() {}, error() {} })
    .compile();

  let server: INestMicroservice | undefined;
  let billing: RedisStreamsClient | undefined;
  if (options.serveBilling) {
    server = moduleRef.createNestMicroservice({
      strategy: new RedisStreamsServer({ ...connection, service: 'billing', trustedKeys: ids.trustedKeys('billing') }),
    });
    await server.listen();
    billing = createRpcClient('billing', { ...connection, timeoutMs: 5000, signer: ids.asAllowedSender() });
    await billing.connect();
  } else {
    await moduleRef.init();
  }

  return {
    moduleRef,
    billing,
    async close() {
      await billing?.close();
      await server?.close();
      await moduleRef.close();
      await catalog.close();
    },
  };
}

/** Makes the stand-in catalog know a product. */
export function registerProduct(productCode: string, ownerId: string, title = 'Test product'): CatalogProduct {
  const product = { productCode, ownerId, listingId: `lst-${productCode.slice(5, 22)}`, title };
  products.set(productCode, product);
  return product;
}

let counter = 0;
/** A fresh product code, `prod-` + 20 lowercase letters and digits. */
export function newProductCode(): string {
  counter++;
  return `prod-${`${Date.now().toString(36)}${counter.toString(36)}${Math.random().toString(36).slice(2)}`.padEnd(20, '0').slice(0, 20)}`;
}

/** A fresh random 12-digit account id. */
export const newAccountId = (): string => String(Math.floor(Math.random() * 1e12)).padStart(12, '0');

export const buyer = (accountId = newAccountId()): Caller => ({ accountId, roles: ['buyer'] });
export const seller = (accountId = newAccountId()): Caller => ({ accountId, roles: ['seller'] });
export const admin = (accountId = newAccountId()): Caller => ({ accountId, roles: ['admin'] });

/** Runs `fn` as part of the request `requestId`, as an RPC handler runs. */
export function inRequest<T>(requestId: string, fn: () => Promise<T>): Promise<T> {
  return requestContext.run({ requestId }, fn);
}

/** The error code a promise rejects with, or 'resolved'. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    if (err instanceof DomainException) return err.code;
    if (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string') return (err as { code: string }).code;
    throw err;
  }
}
