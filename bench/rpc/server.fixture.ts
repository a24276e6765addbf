/**
 * The replica the RPC bench calls: a Nest microservice on the Redis Streams transport with one
 * handler that answers a small object, as a real lookup would. Run with `node --import tsx`
 * from the repository root (no decorator metadata there: nothing is injected by type).
 * Settings: REDIS_URL, PREFIX, SERVICE, PATTERN, and SERVICE_IDENTITY_KEY (the catalog's secret; set: every request
 * must carry a valid caller assertion, as in the platform). Tells its parent `{ type: 'ready' }`
 * once listening.
 */
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { RedisStreamsServer } from '@imagemart/messaging';
import { parseServiceIdentity, trustedKeysOf } from '@imagemart/contracts';

@Controller()
class BenchHandler {
  @MessagePattern(process.env.PATTERN ?? 'bench.image.get')
  get(data: { imageId: string }) {
    return { imageId: data.imageId, name: 'debian-12', architecture: 'x86_64', state: 'available' };
  }
}

@Module({ controllers: [BenchHandler] })
class BenchModule {}

const app = await NestFactory.createMicroservice(BenchModule, {
  strategy: new RedisStreamsServer({
    connection: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: process.env.PREFIX ?? 'bench',
    service: process.env.SERVICE ?? 'bench',
    ...(process.env.SERVICE_IDENTITY_KEY
      ? { trustedKeys: trustedKeysOf(parseServiceIdentity('catalog', process.env.SERVICE_IDENTITY_KEY)) }
      : {}),
  }),
  logger: ['error', 'warn'],
});
await app.listen();
process.send?.({ type: 'ready' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
