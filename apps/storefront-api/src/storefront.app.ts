import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  PinoNestLogger,
  acceptClientRequestId,
  createRequestId,
  httpRequestDuration,
  requestContext,
  type Logger as PinoLogger,
} from '@imagemart/observability';
import { loadConfig } from '@imagemart/config';
import { checkRedis, connectDatabase, processIdentity } from '@imagemart/messaging';
import { createLogger } from '@imagemart/observability';
import { ApiKeyAuthenticator } from './auth/api-key.authenticator.js';
import { clientErrorHandler } from './hardening/client-errors.js';
import { harden } from './hardening/hardening.js';
import { sendProblem } from './problem/problem.filter.js';
import { mountQueueDashboard } from './queues/queue-dashboard.js';
import { StorefrontModule } from './storefront.module.js';
import { storefrontConfigSchema, type StorefrontConfig } from './storefront.config.js';

const REQUEST_ID_HEADER = 'x-request-id';
const CLIENT_REQUEST_ID_HEADER = 'x-client-request-id';

/**
 * The platform's id of a request, made here and never taken from the client (see
 * `createRequestId`): the client's `X-Request-Id`, when usable, is kept beside it. A retry with the
 * same `X-Request-Id` and the same Authorization gets the same id (the services' idempotency).
 */
function requestIdOf(req: IncomingMessage): string {
  const clientRequestId = acceptClientRequestId(req.headers[REQUEST_ID_HEADER]);
  const authorization = req.headers.authorization;
  if (clientRequestId === undefined || !authorization) return createRequestId();
  // The key's digest, not the key: nothing derived here may leak it.
  return createRequestId(clientRequestId, createHash('sha256').update(authorization).digest('base64url'));
}

/** Answers under /v1 are the caller's own and current: no cache keeps them (errors included). */
const isApiPath = (url: string) => url === '/v1' || url.startsWith('/v1/') || url.startsWith('/v1?');

/** Request ids, request context, access log and HTTP metrics, for every request. */
function instrument(fastify: FastifyInstance, logger: PinoLogger, rpcTimeoutMs: number): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    const clientRequestId = acceptClientRequestId(request.headers[REQUEST_ID_HEADER]);
    // One budget for the whole request: however many services it calls, it answers (or gets
    // 504) within RPC_TIMEOUT_MS.
    requestContext.run(
      { requestId: String(request.id), ...(clientRequestId ? { clientRequestId } : {}), deadline: Date.now() + rpcTimeoutMs },
      done,
    );
  });
  fastify.addHook('onSend', async (request, reply) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    const clientRequestId = acceptClientRequestId(request.headers[REQUEST_ID_HEADER]);
    if (clientRequestId) void reply.header(CLIENT_REQUEST_ID_HEADER, clientRequestId);
    if (isApiPath(request.url)) void reply.header('cache-control', 'no-store');
  });
  fastify.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    httpRequestDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, seconds);
    const clientRequestId = acceptClientRequestId(request.headers[REQUEST_ID_HEADER]);
    logger.info(
      {
        requestId: request.id,
        ...(clientRequestId ? { clientRequestId } : {}),
        method: request.method,
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });
}

export async function createStorefrontApp(config: StorefrontConfig, logger: PinoLogger): Promise<NestFastifyApplication> {
  const problemLogger = new Logger('Http');
  const adapter = new FastifyAdapter({
    bodyLimit: config.BODY_LIMIT_BYTES,
    logger: false,
    genReqId: requestIdOf,
    // The router's own errors (a bad URL, an over-long path parameter) as problems too.
    frameworkErrors: (err: Error, request: FastifyRequest, reply: FastifyReply) => sendProblem(reply, request, err, problemLogger),
    // What Node's parser refuses (a bad Content-Length, headers over 16 KiB, a timeout) as well.
    clientErrorHandler,
    // While the gateway drains at shutdown it still answers (with Connection: close) rather than
    // send Fastify's own 503 body, which is not a problem.
    return503OnClosing: false,
    // Slow or silent clients do not hold connections (docs/operations.md, "HTTP timeouts").
    connectionTimeout: config.HTTP_IDLE_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      // How often Node looks for requests past those timeouts (its default, 30 s, would let a
      // silent connection stay that much longer).
      connectionsCheckingInterval: Math.min(1000, config.HTTP_HEADERS_TIMEOUT_MS),
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(StorefrontModule.forRoot(config), adapter, {
    logger: new PinoNestLogger(logger),
  });
  const fastify = app.getHttpAdapter().getInstance();
  instrument(fastify, logger, config.RPC_TIMEOUT_MS);
  const authenticator = app.get(ApiKeyAuthenticator);
  fastify.addHook('onRequest', (request, _reply, done) => {
    authenticator.prefetch(request.raw, request.headers.authorization);
    done();
  });
  harden(app, config, logger);
  // JSON is the only body this API reads; a text/plain body gets 415 rather than a string.
  fastify.removeContentTypeParser('text/plain');
  // Errors Fastify raises before a route runs (bad JSON, too large, wrong media type).
  fastify.setErrorHandler((err, request, reply) => sendProblem(reply, request, err, problemLogger));

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('ImageMart API')
      .setDescription('Marketplace of machine images. Errors are application/problem+json with a stable `code`.')
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API key: imk_…' })
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  await mountQueueDashboard(app);
  return app;
}

export interface RunningStorefront {
  app: NestFastifyApplication;
  logger: PinoLogger;
  url: string;
  stop: () => Promise<void>;
}

/** Boots the gateway: validated config, preflight of PostgreSQL and Redis, then HTTP. */
export async function startStorefront(env: Record<string, string | undefined> = process.env): Promise<RunningStorefront> {
  const config = loadConfig(storefrontConfigSchema, env);
  processIdentity(config, 'storefront-api'); // no identity, no start: the services would refuse every call
  const logger = createLogger({ service: 'storefront-api', level: config.LOG_LEVEL });
  await checkRedis(config.REDIS_URL);
  await (await connectDatabase(config.DATABASE_URL, 1)).$disconnect();
  const app = await createStorefrontApp(config, logger);
  await app.listen({ port: config.PORT, host: config.HOST });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST}:${port}`;
  logger.info({ url }, `storefront-api listening on ${url}`);
  return { app, logger, url, stop: () => app.close() };
}
