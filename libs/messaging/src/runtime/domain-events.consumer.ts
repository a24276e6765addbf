import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import {
  AssertionRefused,
  DOMAIN_EVENT_SCHEMAS,
  verifyEventAssertion,
  type DomainEventJob,
  type DomainEventPayload,
  type DomainEventType,
  type EventQueue,
  type TrustedKeys,
} from '@imagemart/contracts';
import { requestContext, rpcCallerRefused, type Logger } from '@imagemart/observability';
import { createWorker, type BullConnectionOptions } from '../bullmq/index.js';

/** Applies one event. It must be idempotent: an event can arrive twice, or after a newer one. */
export type DomainEventHandler<T extends DomainEventType> = (
  payload: DomainEventPayload<T>,
  event: DomainEventJob,
) => Promise<void>;

export type DomainEventHandlers = { [T in DomainEventType]?: DomainEventHandler<T> };

/**
 * Injection token: a service that consumes events provides its handlers under it, and
 * `startRpcService({ eventQueue })` runs them on that queue.
 */
export const DOMAIN_EVENT_HANDLERS = Symbol('DOMAIN_EVENT_HANDLERS');

const isDomainEventType = (type: string): type is DomainEventType =>
  Object.hasOwn(DOMAIN_EVENT_SCHEMAS, type);

/**
 * The processor of a service's event queue: validates the payload against the event's schema and
 * runs the handler in the request context of the request that caused the event. An event type
 * the service has no handler for is completed without effect (a newer producer may publish types
 * an older consumer ignores); a payload that fails validation is failed for good, so it waits in
 * the failed set (the dead letters) for a person.
 */
export function createDomainEventProcessor(
  handlers: DomainEventHandlers,
  logger: Pick<Logger, 'warn'>,
  /** Set: only events signed by their producer for this queue are acted on (docs/messaging.md, "Signed events"). */
  verify?: { trustedKeys: TrustedKeys; queue: string },
) {
  return async (job: Job<DomainEventJob>): Promise<void> => {
    const event = job.data;
    const type = job.name;
    if (verify) {
      try {
        verifyEventAssertion(verify.trustedKeys, event, type, verify.queue);
      } catch (err) {
        if (!(err instanceof AssertionRefused)) throw err;
        rpcCallerRefused.inc({ service: verify.queue, reason: err.reason });
        logger.warn(
          { jobId: job.id, type, reason: err.reason, issuer: err.issuer },
          'refused an event whose assertion does not hold',
        );
        // Failed for good: it waits in the failed set (the dead letters) for a person.
        throw new UnrecoverableError(`The event's assertion was refused (${err.reason})`);
      }
    }
    const handler = isDomainEventType(type) ? handlers[type] : undefined;
    if (!isDomainEventType(type) || !handler) {
      logger.warn({ jobId: job.id, type }, 'no handler for this event type; ignored');
      return;
    }
    const parsed = DOMAIN_EVENT_SCHEMAS[type].safeParse(event.payload);
    if (!parsed.success) {
      throw new UnrecoverableError(
        `Invalid ${type} payload: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    await requestContext.run({ requestId: event.requestId ?? `event-${event.id}` }, () =>
      (handler as DomainEventHandler<DomainEventType>)(parsed.data, event),
    );
  };
}

export interface DomainEventConsumerOptions extends BullConnectionOptions {
  queue: EventQueue;
  handlers: DomainEventHandlers;
  logger: Logger;
  concurrency?: number;
  /** Set: events must carry their producer's assertion (docs/messaging.md, "Signed events"). */
  trustedKeys?: TrustedKeys;
}

/** Starts a BullMQ worker on a service's event queue. Close the worker to stop. */
export function startDomainEventConsumer(options: DomainEventConsumerOptions): Worker<DomainEventJob> {
  const worker = createWorker<DomainEventJob, void>(
    options.queue,
    createDomainEventProcessor(
      options.handlers,
      options.logger,
      options.trustedKeys ? { trustedKeys: options.trustedKeys, queue: options.queue } : undefined,
    ),
    {
      url: options.url,
      prefix: options.prefix,
      logger: options.logger,
      concurrency: options.concurrency ?? 4,
    },
  );
  worker.on('failed', (job, err) =>
    options.logger.warn(
      { jobId: job?.id, type: job?.name, attempt: job?.attemptsMade, err: err.message },
      'event handler failed',
    ),
  );
  return worker;
}
