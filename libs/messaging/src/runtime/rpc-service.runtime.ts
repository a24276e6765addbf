import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Module, type DynamicModule, type INestMicroservice, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { z } from 'zod';
import { APP_CONFIG, loadConfig, type BaseConfig } from '@imagemart/config';
import type { EventQueue, RpcService } from '@imagemart/contracts';
import { OutboxRelay, PrismaClient, type OutboxSchema } from '@imagemart/database';
import { createLogger, PinoNestLogger, startMetricsServer, type Logger } from '@imagemart/observability';
import { QueueRegistry } from './queue-registry.js';
import { RedisStreamsServer } from '../redis-streams/index.js';
import { createHealthHandler } from './health.handler.js';
import { DOMAIN_EVENT_HANDLERS, startDomainEventConsumer, type DomainEventHandlers } from './domain-events.consumer.js';
import { checkRedis, connectDatabase } from './preflight.js';
import { processIdentity } from '../identity/identity.config.js';

@Module({})
class RuntimeModule {}

@Module({})
class RootModule {}

export interface RpcServiceOptions<C extends BaseConfig> {
  service: RpcService;
  configSchema: z.ZodType<C>;
  /** The service's feature modules. `PrismaClient`, `APP_CONFIG` and `QueueRegistry` are injectable in them. */
  imports: Type[];
  /** The schema whose outbox this service relays. */
  outboxSchema: OutboxSchema;
  /**
   * The queue of domain events this service consumes; its feature modules then provide the
   * handlers under `DOMAIN_EVENT_HANDLERS`.
   */
  eventQueue?: EventQueue;
  /** Events handled at once from that queue (default 4), from the loaded config. */
  eventConcurrency?: (config: C) => number;
  /** Work to do once the service listens (bootstrap data, say). */
  afterStart?: (app: INestMicroservice, config: C) => Promise<void>;
  /** Settings to use instead of the environment (tests). */
  env?: Record<string, string | undefined>;
}

export interface RunningRpcService {
  app: INestMicroservice;
  logger: Logger;
  instance: string;
  stop: () => Promise<void>;
}

/**
 * Boots one replica of an RPC service: validated config, a preflight of PostgreSQL and Redis,
 * the Nest microservice on the Redis Streams transport, a health handler, and the relay of its
 * outbox. Every service's main.ts is a call to this.
 */
export async function startRpcService<C extends BaseConfig>(options: RpcServiceOptions<C>): Promise<RunningRpcService> {
  const config = loadConfig(options.configSchema, options.env);
  const identity = processIdentity(config, options.service);
  const logger = createLogger({ service: options.service, level: config.LOG_LEVEL });
  const instance = `${options.service}-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

  await checkRedis(config.REDIS_URL);
  const prisma = await connectDatabase(config.DATABASE_URL);
  const queues = new QueueRegistry({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX });

  const runtime: DynamicModule = {
    module: RuntimeModule,
    global: true,
    providers: [
      { provide: APP_CONFIG, useValue: config },
      { provide: PrismaClient, useValue: prisma },
      { provide: QueueRegistry, useValue: queues },
    ],
    exports: [APP_CONFIG, PrismaClient, QueueRegistry],
  };
  const root: DynamicModule = {
    module: RootModule,
    imports: [runtime, ...options.imports],
    controllers: [createHealthHandler(options.service, instance)],
  };

  const app = await NestFactory.createMicroservice(root, {
    strategy: new RedisStreamsServer({
      connection: config.REDIS_URL,
      prefix: config.REDIS_PREFIX,
      service: options.service,
      consumer: instance,
      trustedKeys: identity.trustedKeys,
    }),
    logger: new PinoNestLogger(logger),
  });
  await app.listen();

  const relay = new OutboxRelay({
    prisma,
    schema: options.outboxSchema,
    queues: (name) => queues.get(name),
    logger,
    intervalMs: config.OUTBOX_RELAY_INTERVAL_MS,
    sign: identity.signEvent,
  });
  relay.start();
  const events = options.eventQueue
    ? startDomainEventConsumer({
        queue: options.eventQueue,
        handlers: app.get<DomainEventHandlers>(DOMAIN_EVENT_HANDLERS),
        url: config.REDIS_URL,
        prefix: config.REDIS_PREFIX,
        logger,
        concurrency: options.eventConcurrency?.(config),
        trustedKeys: identity.trustedKeys,
      })
    : undefined;
  const metrics = config.METRICS_PORT !== undefined ? await startMetricsServer(config.METRICS_PORT, config.METRICS_HOST) : undefined;
  await options.afterStart?.(app, config);
  logger.info({ instance }, `${options.service} is listening on its Redis stream`);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await metrics?.close();
      await events?.close();
      await relay.stop();
      await app.close();
      await queues.close();
      await prisma.$disconnect();
    })());
  return { app, logger, instance, stop };
}
