import type { Redis } from 'ioredis';

/**
 * Liveness of processes that answer no requests (workers): each replica writes its instance id
 * with the time into one sorted set; a replica whose last beat is older than `ttlMs` counts as
 * gone.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly instance: string,
    private readonly intervalMs = 2000,
  ) {}

  start(): void {
    const beat = () => {
      this.redis.zadd(this.key, Date.now(), this.instance).catch(() => undefined);
    };
    beat();
    this.timer = setInterval(beat, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.zrem(this.key, this.instance).catch(() => undefined);
  }
}

/** How many replicas beat within the last `ttlMs`; also drops the ones long gone. */
export async function liveReplicas(redis: Redis, key: string, ttlMs = 6000): Promise<number> {
  const now = Date.now();
  const [, [, count]] = (await redis
    .multi()
    .zremrangebyscore(key, '-inf', now - 10 * ttlMs)
    .zcount(key, now - ttlMs, '+inf')
    .exec()) as [[Error | null, number], [Error | null, number]];
  return count;
}
