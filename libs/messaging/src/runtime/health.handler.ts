import { Controller, type Type } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import { healthPattern, type HealthPong, type RpcService } from '@imagemart/contracts';
import { PrismaClient } from '@imagemart/database';

/** The handler every RPC service mounts to answer the gateway's /health probe. */
export function createHealthHandler(service: RpcService, instance: string): Type {
  @Controller()
  class HealthHandler {
    constructor(private readonly prisma: PrismaClient) {}

    @MessagePattern(healthPattern(service))
    async ping(): Promise<HealthPong> {
      const database = await this.prisma.$queryRaw`SELECT 1`.then(
        () => true,
        () => false,
      );
      return { service, instance, database };
    }
  }
  return HealthHandler;
}
