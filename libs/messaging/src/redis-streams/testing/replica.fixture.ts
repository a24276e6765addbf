/**
 * One replica of a test service in its own process, for the tests that kill a replica. Run with
 * `node --import tsx`, which emits no decorator metadata: nothing here is injected by type.
 * Settings come from the environment: REDIS_URL, PREFIX, SERVICE, CLAIM_IDLE_MS.
 * Tells its parent `{ type: 'ready' }` once listening and `{ type: 'handling', tag }` when a
 * blocking request arrives.
 */
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { RedisStreamsServer } from '../index.js';

@Controller()
class FixtureHandler {
  @MessagePattern('fixture.block')
  block(data: { tag: string }): Promise<never> {
    process.send?.({ type: 'handling', tag: data.tag });
    return new Promise<never>(() => undefined); // never answers: the test kills this process
  }

  @MessagePattern('fixture.echo')
  echo(data: unknown): { data: unknown; pid: number } {
    return { data, pid: process.pid };
  }
}

@Module({ controllers: [FixtureHandler] })
class FixtureModule {}

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const app = await NestFactory.createMicroservice(FixtureModule, {
  strategy: new RedisStreamsServer({
    connection: env('REDIS_URL'),
    prefix: env('PREFIX'),
    service: env('SERVICE'),
    consumer: `fixture-${process.pid}`,
    claimIdleMs: Number(env('CLAIM_IDLE_MS')),
  }),
  logger: ['error', 'warn'],
});
await app.listen();
process.send?.({ type: 'ready' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
