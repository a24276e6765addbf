import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { APP_CONFIG } from '@imagemart/config';
import { PrismaClient } from '@imagemart/database';

@Module({})
class ServiceTestRuntimeModule {}

export interface ServiceTestingModuleOptions {
  /** The test's own database client (from `createTestDatabase`). */
  prisma: PrismaClient;
  /** The service's validated settings, as `startRpcService` would provide them. */
  config: unknown;
  /** The service's feature modules. */
  imports: (Type | DynamicModule)[];
}

/**
 * A service's feature modules with what the service runtime gives them in production
 * (`PrismaClient` and `APP_CONFIG`, injectable everywhere), ready to `.compile()` — for tests
 * that call a service's providers directly, against the real database.
 */
export function serviceTestingModule(options: ServiceTestingModuleOptions): TestingModuleBuilder {
  const runtime: DynamicModule = {
    module: ServiceTestRuntimeModule,
    global: true,
    providers: [
      { provide: PrismaClient, useValue: options.prisma },
      { provide: APP_CONFIG, useValue: options.config },
    ],
    exports: [PrismaClient, APP_CONFIG],
  };
  return Test.createTestingModule({ imports: [runtime, ...options.imports] });
}
