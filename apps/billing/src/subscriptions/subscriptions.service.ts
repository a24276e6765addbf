import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { PrismaClient, UniqueViolation, publishDomainEvent, type Prisma } from '@imagemart/database';
import {
  DomainEventType,
  ErrorCode,
  type Caller,
  type Page,
  type SubscriptionChanged,
  type SubscriptionStatus,
  type SubscriptionView,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { CatalogClient } from '../catalog/catalog.client.js';
import { PricingService } from '../pricing/pricing.service.js';
import { StripeSyncQueue } from '../stripe/stripe-sync.queue.js';
import { currentPeriodAfter, firstPeriod } from './billing-period.js';
import { isEntitled } from './subscription.entitlement.js';
import {
  SubscriptionsRepository,
  type Subscription,
  type SubscriptionChange,
  type SubscriptionCursor,
} from './subscriptions.repository.js';


/**
 * One sweep batch is one transaction of a few statements per subscription: on a busy database
 * that can take longer than Prisma's default of 5 s.
 */
const SWEEP_BATCH = { maxWait: 10_000, timeout: 60_000 };
/** `sub-` followed by 17 lowercase hex digits. */
export const generateSubscriptionId = (): string => `sub-${randomBytes(9).toString('hex').slice(0, 17)}`;

export function toSubscriptionView(s: Subscription): SubscriptionView {
  return {
    id: s.id,
    accountId: s.accountId,
    productCode: s.productCode,
    status: s.status,
    entitled: isEntitled(s.status),
    cancelAtPeriodEnd: s.cancelAtPeriodEnd,
    currentPeriodStart: s.currentPeriodStart.toISOString(),
    currentPeriodEnd: s.currentPeriodEnd.toISOString(),
    canceledAt: s.canceledAt?.toISOString() ?? null,
    endedAt: s.endedAt?.toISOString() ?? null,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  };
}

export function subscriptionChanged(s: Subscription): SubscriptionChanged {
  return {
    subscriptionId: s.id,
    accountId: s.accountId,
    productCode: s.productCode,
    status: s.status,
    entitled: isEntitled(s.status),
    revision: s.revision,
  };
}

const notFound = (id: string) =>
  new DomainException(ErrorCode.InvalidSubscriptionIDNotFound, `The subscription ID '${id}' does not exist`);

const encodeCursor = (s: Subscription) => Buffer.from(`${s.createdAt.toISOString()}|${s.id}`).toString('base64url');

function decodeCursor(token: string): SubscriptionCursor {
  const [iso, id] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || !/^sub-[0-9a-f]{17}$/.test(id) || Number.isNaN(createdAt.getTime())) {
    throw new DomainException(ErrorCode.InvalidPaginationToken, 'The page cursor is not valid.', [
      { path: 'cursor', message: 'not a cursor this API returned' },
    ]);
  }
  return { createdAt, id };
}

export interface SweepResult {
  ended: number;
  renewed: number;
}

/**
 * Subscriptions and their state machine: active → (cancel) active with cancelAtPeriodEnd →
 * (period end, the sweep) canceled; past_due is set by charging (later) and behaves as active
 * here. Every change writes `billing.subscription.changed` in its transaction.
 */
@Injectable()
export class SubscriptionsService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly subscriptions: SubscriptionsRepository,
    private readonly pricing: PricingService,
    private readonly catalog: CatalogClient,
    private readonly stripeSync: StripeSyncQueue,
  ) {}

  /**
   * Subscribes the caller to a product that exists and is priced. A second subscribe while one is
   * live is a conflict, unless it is the same request again (a reclaimed RPC, a client retrying
   * with its X-Request-Id): that gets the subscription it made.
   */
  async create(caller: Caller, productCode: string, now = new Date()): Promise<SubscriptionView> {
    if (!caller.roles.includes('buyer')) {
      throw new DomainException(ErrorCode.UnauthorizedOperation, 'Only a buyer account can subscribe to products.');
    }
    const requestId = requestContext.requestId() ?? null;
    if (requestId) {
      const replay = await this.subscriptions.findCreatedBy(caller.accountId, productCode, requestId);
      if (replay) return toSubscriptionView(replay);
    }
    const product = await this.catalog.getProduct(productCode);
    if ((await this.pricing.offeredInstanceTypes(productCode)).length === 0) {
      throw new DomainException(ErrorCode.IncorrectState, `The product '${productCode}' has no pricing yet, so it cannot be subscribed to.`);
    }
    const conflict = (existing: Subscription | null) =>
      new DomainException(
        ErrorCode.SubscriptionAlreadyExists,
        `You already have a subscription to '${productCode}'${existing ? ` (${existing.id}, ${existing.status})` : ''}.`,
      );

    const period = firstPeriod(now);
    for (let attempt = 1; ; attempt++) {
      try {
        const created = await this.prisma.$transaction(async (tx) => {
          const existing = await this.subscriptions.findLive(caller.accountId, productCode, tx);
          // The same request's other run committed first: its subscription is this request's answer.
          if (existing && requestId && existing.requestId === requestId) return existing;
          if (existing) throw conflict(existing);
          const row = await this.subscriptions.create(tx, {
            id: generateSubscriptionId(),
            accountId: caller.accountId,
            productCode,
            sellerId: product.ownerId,
            currentPeriodStart: period.start,
            currentPeriodEnd: period.end,
            requestId,
            createdAt: now,
          });
          await this.publish(tx, row);
          return row;
        });
        return toSubscriptionView(created);
      } catch (err) {
        if (!(err instanceof UniqueViolation)) throw err;
        // A random id already taken: draw another.
        if ((err.fields.includes('id') || err.constraint === 'subscription_pkey') && attempt < 3) continue;
        // Two subscribes at once: the partial unique index let one through. The same request
        // running twice gets that one; another request is told.
        const live = await this.subscriptions.findLive(caller.accountId, productCode);
        if (live && requestId && live.requestId === requestId) return toSubscriptionView(live);
        throw conflict(live);
      }
    }
  }

  async list(caller: Caller, limit: number, cursor?: string, status?: SubscriptionStatus): Promise<Page<SubscriptionView>> {
    const rows = await this.subscriptions.listByAccount(caller.accountId, limit + 1, cursor ? decodeCursor(cursor) : undefined, status);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { items: page.map(toSubscriptionView), nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }

  /** The caller's own subscription; anyone else's answers as one that does not exist. */
  async get(caller: Caller, id: string): Promise<SubscriptionView> {
    const row = await this.subscriptions.findById(id);
    if (!row || row.accountId !== caller.accountId) throw notFound(id);
    return toSubscriptionView(row);
  }

  /**
   * Cancels at the end of the paid period: the subscription stays active (and entitled) until
   * currentPeriodEnd, then the sweep ends it. Cancelling again, or the same request twice,
   * answers the same state and changes nothing; cancelling one that is not active is a conflict.
   */
  async cancel(caller: Caller, id: string, now = new Date()): Promise<SubscriptionView> {
    const requestId = requestContext.requestId() ?? null;
    const row = await this.prisma.$transaction(async (tx) => {
      const current = await this.subscriptions.lockById(tx, id);
      if (!current || current.accountId !== caller.accountId) throw notFound(id);
      if (requestId && current.cancelRequestId === requestId) return current;
      if (current.status !== 'active') {
        throw new DomainException(ErrorCode.IncorrectState, `The subscription '${id}' is ${current.status}; only an active subscription can be cancelled.`);
      }
      if (current.cancelAtPeriodEnd) return current;
      return this.change(tx, id, { cancelAtPeriodEnd: true, canceledAt: now, cancelRequestId: requestId });
    });
    return toSubscriptionView(row);
  }

  /**
   * One pass over the subscriptions whose period has ended by `now`: a cancelled one becomes
   * canceled at its period end; any other moves to the calendar month that contains `now`.
   * Replicas run it at once without meeting (SKIP LOCKED); batches of `batchSize` per transaction.
   */
  async sweep(now = new Date(), batchSize = 100): Promise<SweepResult> {
    const result: SweepResult = { ended: 0, renewed: 0 };
    for (;;) {
      const handled = await this.prisma.$transaction(async (tx) => {
        const ids = await this.subscriptions.lockDue(tx, now, batchSize);
        for (const id of ids) {
          const due = await this.subscriptions.findById(id, tx);
          if (!due) continue;
          if (due.cancelAtPeriodEnd) {
            await this.change(tx, id, { status: 'canceled', endedAt: due.currentPeriodEnd });
            result.ended++;
          } else {
            const next = currentPeriodAfter(due.currentPeriodEnd, now);
            await this.change(tx, id, { currentPeriodStart: next.start, currentPeriodEnd: next.end });
            result.renewed++;
          }
        }
        return ids.length;
      }, SWEEP_BATCH);
      if (handled < batchSize) return result;
    }
  }

  /**
   * A change the payment provider reported (Stripe webhooks, docs/stripe.md), in the caller's
   * transaction: a status (past_due when a payment failed, active when paid, canceled when it
   * ended) or a cancel at period end. A canceled subscription never changes again. Returns the
   * subscription, changed or not, or null when there is none.
   */
  async applyProviderChange(
    tx: Prisma.TransactionClient,
    id: string,
    change: { status?: SubscriptionStatus; cancelAtPeriodEnd?: boolean; canceledAt?: Date | null; endedAt?: Date | null },
  ): Promise<Subscription | null> {
    const current = await this.subscriptions.lockById(tx, id);
    if (!current || current.status === 'canceled') return current;
    const next: SubscriptionChange = {};
    if (change.status && change.status !== current.status) next.status = change.status;
    if (change.status === 'canceled') next.endedAt = change.endedAt ?? new Date();
    if (change.cancelAtPeriodEnd !== undefined && change.cancelAtPeriodEnd !== current.cancelAtPeriodEnd) {
      next.cancelAtPeriodEnd = change.cancelAtPeriodEnd;
      next.canceledAt = change.cancelAtPeriodEnd ? (change.canceledAt ?? new Date()) : null;
    }
    if (Object.keys(next).length === 0) return current;
    return this.change(tx, id, next);
  }

  private async change(tx: Prisma.TransactionClient, id: string, change: SubscriptionChange): Promise<Subscription> {
    const row = await this.subscriptions.update(tx, id, change);
    await this.publish(tx, row);
    return row;
  }

  private async publish(tx: Prisma.TransactionClient, row: Subscription): Promise<void> {
    await publishDomainEvent(tx, 'billing', {
      type: DomainEventType.subscriptionChanged,
      payload: subscriptionChanged(row),
      requestId: requestContext.requestId(),
    });
    // With Stripe configured, the change also goes there (a job in this same transaction).
    await this.stripeSync.subscriptionChanged(tx, row);
  }
}
