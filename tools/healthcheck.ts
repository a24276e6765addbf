/**
 * `node dist/tools/healthcheck.js SERVICE`: exits 0 when SERVICE answers (an RPC service its
 * health ping, the bundler-worker its heartbeat), 1 otherwise. For container health checks.
 */
import { Redis } from 'ioredis';
import { firstValueFrom, timeout } from 'rxjs';
import { baseConfigSchema, loadConfig } from '@imagemart/config';
import { RpcService, healthPattern, heartbeatKey, type HealthPong } from '@imagemart/contracts';
import { RedisStreamsClient, liveReplicas } from '@imagemart/messaging';

const name = process.argv[2] ?? '';
const config = loadConfig(baseConfigSchema);

async function probe(): Promise<boolean> {
  if (name === 'bundler-worker') {
    const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      return (await liveReplicas(redis, heartbeatKey(config.REDIS_PREFIX, name))) > 0;
    } finally {
      redis.disconnect();
    }
  }
  if (!(name in RpcService)) throw new Error(`unknown service '${name}'`);
  const service = name as RpcService;
  const client = new RedisStreamsClient({ connection: config.REDIS_URL, prefix: config.REDIS_PREFIX, service, timeoutMs: 3000 });
  await client.connect();
  try {
    const pong = await firstValueFrom(client.send<HealthPong>(healthPattern(service), {}).pipe(timeout(3000)));
    return pong.database;
  } finally {
    await client.close();
  }
}

probe().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : JSON.stringify(err)}\n`);
    process.exit(1);
  },
);
