import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import { APP_CONFIG } from '@imagemart/config';
import { healthPattern, heartbeatKey, type HealthPong, type RpcService } from '@imagemart/contracts';
import { liveReplicas } from '@imagemart/messaging';
import { Public } from '../auth/public.decorator.js';
import { ServiceClients } from '../rpc/service-clients.js';
import type { StorefrontConfig } from '../storefront.config.js';

/** The gateway owns no tables: this pool only answers the PostgreSQL probe. */
export const HEALTH_DB_POOL = Symbol.for('imagemart.health-db-pool');

const CACHE_MS = 1000;

export interface CheckResult {
  status: 'up' | 'down';
  latencyMs: number;
  detail?: string;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  checks: Record<string, CheckResult>;
}

async function check(timeoutMs: number, probe: () => Promise<string | undefined>): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const detail = await Promise.race([probe(), timedOut]);
    return { status: 'up', latencyMs: Math.round(performance.now() - started), ...(detail ? { detail } : {}) };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { status: 'down', latencyMs: Math.round(performance.now() - started), detail };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * GET /health: PostgreSQL, Redis and each of the other four processes, probed in parallel, each
 * bounded by HEALTH_TIMEOUT_MS, so a process that is down shows as down within that time.
 */
@ApiTags('operations')
@Controller()
export class HealthController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: StorefrontConfig,
    private readonly services: ServiceClients,
    private readonly redis: Redis,
    @Inject(HEALTH_DB_POOL) private readonly db: pg.Pool,
  ) {}

  /** The report being made, and the last one: every caller within a second shares one probe. */
  private probing?: Promise<HealthReport>;
  private last?: { at: number; report: HealthReport };

  @Public()
  @Get('health')
  @ApiOperation({ summary: 'Health of the platform: 200 when every part is up, 503 otherwise (at most 1 s old).' })
  async health(@Res() reply: FastifyReply): Promise<void> {
    let report = this.last && Date.now() - this.last.at < CACHE_MS ? this.last.report : undefined;
    if (!report) {
      this.probing ??= this.probe().finally(() => (this.probing = undefined));
      report = await this.probing;
      this.last = { at: Date.now(), report };
    }
    await reply
      .status(report.status === 'ok' ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(report);
  }

  private async probe(): Promise<HealthReport> {
    const t = this.config.HEALTH_TIMEOUT_MS;
    const service = (name: RpcService) =>
      check(t, async () => {
        const pong = await this.services.call<HealthPong>(name, healthPattern(name), {}, t);
        if (!pong.database) throw new Error('the service cannot reach PostgreSQL');
        return undefined;
      });
    const [postgres, redis, permission, catalog, billing, worker] = await Promise.all([
      check(t, async () => {
        await this.db.query('SELECT 1');
        return undefined;
      }),
      check(t, async () => {
        await this.redis.ping();
        return undefined;
      }),
      service('permission'),
      service('catalog'),
      service('billing'),
      check(t, async () => {
        const n = await liveReplicas(this.redis, heartbeatKey(this.config.REDIS_PREFIX, 'bundler-worker'));
        if (n === 0) throw new Error('no bundler-worker replica has beaten its heartbeat lately');
        return `${n} replica(s)`;
      }),
    ]);
    const checks = { postgres, redis, permission, catalog, billing, 'bundler-worker': worker };
    const ok = Object.values(checks).every((c) => c.status === 'up');
    return { status: ok ? 'ok' : 'degraded', checks };
  }
}
