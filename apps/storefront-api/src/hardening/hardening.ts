import { createHash } from 'node:crypto';
import helmet from 'helmet';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { ErrorCode } from '@imagemart/contracts';
import type { Logger as PinoLogger } from '@imagemart/observability';
import { ApiProblem } from '../problem/api-problem.js';
import type { StorefrontConfig } from '../storefront.config.js';

/**
 * What the gateway does to every request before a route sees it: security headers, CORS, and rate
 * limits per API key and per client address.
 */

/** What an orchestrator calls: never limited (it asks no service about a key). */
const UNLIMITED = new Set(['/health']);
/** The scraper's route: a bucket of its own per client address (RATE_LIMIT_METRICS_PER_MINUTE). */
const METRICS = '/metrics';

/**
 * Headers that keep a browser from doing more with our answers than showing them; Swagger UI at
 * /docs still works. Helmet's middleware is built once and run on every request (the Fastify
 * plugin builds it again for each request, parsing the policy every time).
 */
function securityHeaders(fastify: FastifyInstance): void {
  const headers = helmet({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // Swagger UI's page at /docs uses inline script and style.
        scriptSrc: ["'self'", "'unsafe-inline'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        frameAncestors: ["'none'"],
      },
    },
    // An API answers JSON: no page of ours is framed, and nothing is cached by a shared cache.
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    hsts: { maxAge: 31_536_000, includeSubDomains: true },
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    headers(request.raw, reply.raw, (err?: unknown) => done(err instanceof Error ? err : undefined));
  });
}

function cors(app: NestFastifyApplication, config: StorefrontConfig): void {
  const origins = config.CORS_ORIGINS.split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  // No origin configured: no CORS headers at all, so browsers keep other sites' pages out.
  if (origins.length === 0) return;
  app.enableCors({
    origin: origins,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id', 'idempotency-key'],
    exposedHeaders: ['x-request-id', 'x-client-request-id', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining'],
    credentials: false,
    maxAge: 600,
  });
}

/** Who a request counts against: the presented API key (hashed: the key itself is a secret), else nothing. */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header?.startsWith('Bearer ')) return undefined;
  return createHash('sha256').update(header.slice(7)).digest('base64url').slice(0, 22);
}

function limiter(redis: Redis, prefix: string, perMinute: number): RateLimiterAbstract {
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: prefix,
    points: perMinute,
    duration: 60,
    // Redis away: each gateway limits on its own, from memory, rather than not at all.
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ points: perMinute, duration: 60 }),
  });
}

/**
 * Limits per client address (every request, so that forged keys cost an attacker the same) and per
 * API key (requests that present one), each a fixed window of one minute shared by every gateway
 * through Redis. `/metrics` counts in a bucket of its own per client address instead (a scraper's
 * few requests a minute; every one of them is authenticated by the permission service). A request
 * over a limit gets 429 `RequestLimitExceeded` with Retry-After.
 */
function rateLimits(fastify: FastifyInstance, config: StorefrontConfig, logger: PinoLogger): void {
  const perAddress = config.RATE_LIMIT_PER_ADDRESS_PER_MINUTE;
  const perKey = config.RATE_LIMIT_PER_KEY_PER_MINUTE;
  const metricsPerAddress = config.RATE_LIMIT_METRICS_PER_MINUTE;
  if (perAddress === 0 && perKey === 0 && metricsPerAddress === 0) return;
  // Auto-pipelining: the commands of concurrent requests go out in one write.
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true });
  redis.on('error', () => undefined); // /health reports Redis; the limits fall back to memory
  const prefix = `${config.REDIS_PREFIX}:ratelimit`;
  const byAddress = perAddress > 0 ? limiter(redis, `${prefix}:address`, perAddress) : undefined;
  const byKey = perKey > 0 ? limiter(redis, `${prefix}:key`, perKey) : undefined;
  const metricsByAddress = metricsPerAddress > 0 ? limiter(redis, `${prefix}:metrics`, metricsPerAddress) : undefined;

  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    if (UNLIMITED.has(path)) return;
    try {
      if (path === METRICS) {
        await metricsByAddress?.consume(request.ip);
        return;
      }
      const key = presentedKey(request);
      // Both windows at once: one Redis round trip's latency per request, not two.
      const [, keyed] = await Promise.all([byAddress?.consume(request.ip), byKey && key ? byKey.consume(key) : undefined]);
      if (keyed) void reply.header('ratelimit-limit', String(perKey)).header('ratelimit-remaining', String(keyed.remainingPoints));
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        logger.warn({ err: (err as Error).message }, 'rate limiter failed; request let through');
        return;
      }
      void reply.header('retry-after', String(Math.max(1, Math.ceil(err.msBeforeNext / 1000))));
      throw new ApiProblem(ErrorCode.RequestLimitExceeded, 'Too many requests; slow down and retry after the time in Retry-After.');
    }
  });
  fastify.addHook('onClose', (_instance, done) => {
    redis.disconnect();
    done();
  });
}

export function harden(app: NestFastifyApplication, config: StorefrontConfig, logger: PinoLogger): void {
  securityHeaders(app.getHttpAdapter().getInstance());
  cors(app, config);
  rateLimits(app.getHttpAdapter().getInstance(), config, logger);
}
