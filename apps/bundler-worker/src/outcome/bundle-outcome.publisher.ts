import { DomainEventType, type BundleFailed, type BundleVerified } from '@imagemart/contracts';
import { publishDomainEvent, type PrismaClient } from '@imagemart/database';
import { clampFailure } from '../jobs/bundling.failure.js';

/**
 * Tells the other services how an image's bundling ended, through the bundling schema's outbox
 * (the worker's relay delivers it to the catalog). The events are facts about one image:
 * publishing one twice (a job that ran twice) is harmless to their consumers.
 */
export class BundleOutcomePublisher {
  constructor(private readonly prisma: PrismaClient) {}

  async verified(payload: BundleVerified, requestId?: string): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      await publishDomainEvent(tx, 'bundling', { type: DomainEventType.bundleVerified, payload, requestId });
    });
  }

  async failed(imageId: string, failure: { code: string; reason: string }, requestId?: string): Promise<void> {
    const payload: BundleFailed = { imageId, ...clampFailure(failure) };
    await this.prisma.$transaction(async (tx) => {
      await publishDomainEvent(tx, 'bundling', { type: DomainEventType.bundleFailed, payload, requestId });
    });
  }
}
