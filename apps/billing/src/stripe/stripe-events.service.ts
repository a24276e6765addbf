import { Injectable, Logger } from '@nestjs/common';
import { PrismaClient, type Prisma } from '@imagemart/database';
import type { StripeEventRequest, StripeEventResult, SubscriptionStatus } from '@imagemart/contracts';
import { requestContext } from '@imagemart/observability';
import { SubscriptionsService } from '../subscriptions/subscriptions.service.js';
import { stripeCentsToDecimal } from './stripe.client.js';
import { StripeRepository, type StripeSubscription } from './stripe.repository.js';

type StripeEvent = StripeEventRequest['event'];
type Outcome = Exclude<StripeEventResult['outcome'], 'duplicate'>;
type Obj = Record<string, unknown>;

const SUBSCRIPTION_EVENTS = new Set([
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
]);
const INVOICE_EVENTS = new Set([
  'invoice.created',
  'invoice.finalized',
  'invoice.paid',
  'invoice.payment_succeeded',
  'invoice.payment_failed',
  'invoice.voided',
  'invoice.marked_uncollectible',
]);

/** Invoice states no later event undoes: a paid invoice stays paid whatever arrives after. */
const FINAL_INVOICE_STATES = new Set(['paid', 'void', 'uncollectible']);

const str = (o: Obj, k: string): string | null => (typeof o[k] === 'string' ? o[k] : null);
const num = (o: Obj, k: string): number | null => (typeof o[k] === 'number' ? o[k] : null);
const idOf = (v: unknown): string | null =>
  typeof v === 'string'
    ? v
    : typeof v === 'object' && v !== null && typeof (v as Obj).id === 'string'
      ? ((v as Obj).id as string)
      : null;
const fromUnix = (s: number | null): Date | null => (s === null ? null : new Date(s * 1000));

/** Our status for a Stripe subscription status; null for the ones that change nothing here. */
function statusOf(stripeStatus: string | null): SubscriptionStatus | null {
  switch (stripeStatus) {
    case 'active':
    case 'trialing':
      return 'active';
    case 'past_due':
    case 'unpaid':
      return 'past_due';
    case 'canceled':
    case 'incomplete_expired':
      return 'canceled';
    default:
      return null; // incomplete, paused: wait for the next event
  }
}

/** The Stripe subscription an invoice belongs to (`parent.subscription_details` since 2025; `subscription` before). */
function invoiceSubscription(invoice: Obj): string | null {
  const parent = invoice.parent as Obj | null | undefined;
  const details =
    parent && typeof parent === 'object' ? (parent.subscription_details as Obj | null | undefined) : null;
  return (details && idOf(details.subscription)) ?? idOf(invoice.subscription);
}

/**
 * Applies Stripe's webhook events to billing's records.
 *
 * - **Idempotent by event id**: the id is claimed in the same transaction as the change it makes,
 *   so the same event twice (Stripe redelivers, two gateway replicas) changes nothing the second time.
 * - **Out of order**: Stripe does not deliver in order. Each Stripe subscription remembers the
 *   `created` time of the newest event that set its state; an older event arriving later does not
 *   set it back. An invoice that is paid stays paid: a `invoice.payment_failed` arriving after
 *   `invoice.paid` (or after a newer event) leaves the invoice paid and the subscription as it is.
 *   A canceled subscription never comes back.
 */
@Injectable()
export class StripeEventsService {
  private readonly logger = new Logger(StripeEventsService.name);

  constructor(
    private readonly prisma: PrismaClient,
    private readonly links: StripeRepository,
    private readonly subscriptions: SubscriptionsService,
  ) {}

  async handle(event: StripeEvent): Promise<StripeEventResult> {
    const created = new Date(event.created * 1000);
    const outcome = await this.prisma.$transaction(async (tx): Promise<StripeEventResult['outcome']> => {
      if (!(await this.links.claimEvent(tx, { id: event.id, type: event.type, created }))) return 'duplicate';
      const result = await this.apply(tx, event, created);
      await this.links.recordEventOutcome(tx, event.id, result);
      return result;
    });
    this.logger.log(`Stripe event ${event.id} (${event.type}): ${outcome}`);
    return { eventId: event.id, outcome };
  }

  private apply(tx: Prisma.TransactionClient, event: StripeEvent, created: Date): Promise<Outcome> {
    const object = event.data.object;
    if (SUBSCRIPTION_EVENTS.has(event.type)) return this.applySubscription(tx, event.type, object, created);
    if (INVOICE_EVENTS.has(event.type)) return this.applyInvoice(tx, event.type, object, created);
    return Promise.resolve('ignored');
  }

  /** customer.subscription.*: Stripe's subscription state becomes ours, unless it is older. */
  private async applySubscription(
    tx: Prisma.TransactionClient,
    type: string,
    sub: Obj,
    created: Date,
  ): Promise<Outcome> {
    const stripeId = str(sub, 'id');
    if (!stripeId) return 'ignored';
    const link = await this.linkOf(tx, stripeId, sub);
    if (!link) return 'stale';
    if (link.lastEventAt && created < link.lastEventAt) return 'stale';

    const stripeStatus =
      type === 'customer.subscription.deleted' ? 'canceled' : (str(sub, 'status') ?? link.stripeStatus);
    const cancelAtPeriodEnd = sub.cancel_at_period_end === true;
    await this.subscriptions.applyProviderChange(tx, link.id, {
      ...(statusOf(stripeStatus) ? { status: statusOf(stripeStatus)! } : {}),
      cancelAtPeriodEnd,
      canceledAt: fromUnix(num(sub, 'canceled_at')),
      endedAt: fromUnix(num(sub, 'ended_at')),
    });
    await this.links.updateSubscriptionLink(
      link.id,
      { stripeStatus, cancelAtPeriodEnd, lastEventAt: created },
      tx,
    );
    return 'applied';
  }

  /** invoice.*: the invoice's payment state, and past_due / active for its subscription. */
  private async applyInvoice(
    tx: Prisma.TransactionClient,
    type: string,
    invoice: Obj,
    created: Date,
  ): Promise<Outcome> {
    const stripeId = str(invoice, 'id');
    if (!stripeId) return 'ignored';
    const current = await this.links.lockInvoice(tx, stripeId);
    const reported =
      type === 'invoice.payment_failed'
        ? 'payment_failed'
        : type === 'invoice.paid' || type === 'invoice.payment_succeeded'
          ? 'paid'
          : (str(invoice, 'status') ?? 'open');
    // A final state stays, and beats any state that is not; otherwise the newer event wins.
    const keep =
      current &&
      (FINAL_INVOICE_STATES.has(current.status) ||
        (!FINAL_INVOICE_STATES.has(reported) && created < current.lastEventAt));
    const status = keep ? current.status : reported;
    const stripeSubscriptionId = invoiceSubscription(invoice);
    const transitions = (invoice.status_transitions as Obj | undefined) ?? {};
    await this.links.saveInvoice(tx, {
      stripeId,
      stripeSubscriptionId,
      stripeCustomerId: idOf(invoice.customer),
      status,
      currency: (str(invoice, 'currency') ?? 'usd').toUpperCase().slice(0, 3),
      amountDue: stripeCentsToDecimal(num(invoice, 'amount_due') ?? 0),
      amountPaid: stripeCentsToDecimal(num(invoice, 'amount_paid') ?? 0),
      paidAt:
        status === 'paid' ? (current?.paidAt ?? fromUnix(num(transitions, 'paid_at')) ?? created) : null,
      lastEventAt: current && current.lastEventAt > created ? current.lastEventAt : created,
    });
    if (keep) return 'stale';
    if (!stripeSubscriptionId || (status !== 'paid' && status !== 'payment_failed')) return 'applied';

    const link = await this.links.lockSubscriptionLinkByStripeId(tx, stripeSubscriptionId);
    if (!link || (link.lastEventAt && created < link.lastEventAt)) return 'applied';
    if (status === 'payment_failed') {
      await this.subscriptions.applyProviderChange(tx, link.id, { status: 'past_due' });
    } else if ((await this.links.unpaidFailedInvoices(tx, stripeSubscriptionId)) === 0) {
      // Paid, and no other invoice of it is waiting on a failed payment: back to active.
      const sub = await tx.subscription.findUnique({ where: { id: link.id } });
      if (sub?.status === 'past_due')
        await this.subscriptions.applyProviderChange(tx, link.id, { status: 'active' });
    }
    await this.links.updateSubscriptionLink(link.id, { lastEventAt: created }, tx);
    return 'applied';
  }

  /**
   * The link of a Stripe subscription, locked. A subscription we created whose id we did not get
   * to store (the process stopped between Stripe's answer and our write) is found by the
   * subscription id in its metadata, and linked now.
   */
  private async linkOf(
    tx: Prisma.TransactionClient,
    stripeId: string,
    sub: Obj,
  ): Promise<StripeSubscription | null> {
    const link = await this.links.lockSubscriptionLinkByStripeId(tx, stripeId);
    if (link) return link;
    const metadata = (sub.metadata as Obj | undefined) ?? {};
    const ours = str(metadata, 'subscription_id');
    const row = ours ? await tx.subscription.findUnique({ where: { id: ours } }) : null;
    if (!row) {
      this.logger.warn(
        `Stripe subscription ${stripeId} is not one of ours (request ${requestContext.requestId() ?? '-'})`,
      );
      return null;
    }
    await this.links.saveSubscriptionLink(
      {
        subscriptionId: row.id,
        stripeId,
        accountId: row.accountId,
        stripeStatus: str(sub, 'status') ?? 'active',
      },
      tx,
    );
    return this.links.lockSubscriptionLinkByStripeId(tx, stripeId);
  }
}
