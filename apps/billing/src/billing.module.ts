import { Module } from '@nestjs/common';

/**
 * The billing service. It answers its health probe over the Redis Streams transport and relays its
 * outbox; its domain handlers come with their features.
 */
@Module({})
export class BillingModule {}
