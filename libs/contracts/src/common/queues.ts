/**
 * BullMQ queue and job names. Do not rename one without a migration plan: jobs already waiting
 * under the old name would never run.
 */
export const QueueName = {
  /** Bundle, verify and delete jobs, processed by bundler-worker. */
  bundling: 'bundling',
  /** Domain events relayed from the services' outbox tables. */
  events: 'domain-events',
  /** Billing keeps Stripe in step with its records (only when Stripe is configured). */
  stripeSync: 'billing-stripe-sync',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

/** A domain event as the outbox relay puts it on a queue; the job id is the event id. */
export interface DomainEventJob<T = unknown> {
  id: string;
  type: string;
  payload: T;
  requestId?: string;
  occurredAt: string;
  /**
   * The producing service's signed assertion over the job (docs/messaging.md, "Signed events"):
   * a consumer acts only on an event its own producer signed for that queue.
   */
  assertion?: string;
}

/** Key of the heartbeat a worker process keeps fresh in Redis, for /health. */
export const heartbeatKey = (prefix: string, processName: string) => `${prefix}:heartbeat:${processName}`;
