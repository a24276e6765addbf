import { Injectable } from '@nestjs/common';
import { Prisma, PrismaClient } from '@imagemart/database';
import { MINIMUM_BILLED_SECONDS, type InstanceChanged } from '@imagemart/contracts';

type Tx = Prisma.TransactionClient | PrismaClient;

/** Billed seconds of one product, seller and instance type in a period. */
export interface UsageGroup {
  productCode: string | null;
  /** The seller of a paid product; '' for free images. */
  sellerId: string;
  instanceType: string;
  seconds: bigint;
  instances: number;
}

/** The group key: product, seller and instance type. */
export const usageKey = (g: Pick<UsageGroup, 'productCode' | 'sellerId' | 'instanceType'>): string =>
  `${g.productCode ?? ''}|${g.sellerId}|${g.instanceType}`;

/**
 * Keeps, of several events for one instance, the one with the highest revision, and orders the
 * survivors by instance id: one statement may touch a row once, and every writer then locks rows
 * in the same order, so concurrent batches never deadlock.
 */
export function latestPerInstance(events: readonly InstanceChanged[]): InstanceChanged[] {
  const latest = new Map<string, InstanceChanged>();
  for (const e of events) {
    const held = latest.get(e.instanceId);
    if (!held || e.revision > held.revision) latest.set(e.instanceId, e);
  }
  return [...latest.values()].sort((a, b) =>
    a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0,
  );
}

/**
 * Usage records. The billing rule lives in {@link UsageRepository.groups}' SQL (docs/pricing.md):
 * timestamps to the whole second, a run's seconds counted in the month they fall in, and a run
 * shorter than MINIMUM_BILLED_SECONDS topped up to it in the month it stopped.
 */
@Injectable()
export class UsageRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * One multi-row upsert for a batch of events: a row changes only when the incoming revision is
   * higher than the one held, so duplicates and reordered events are harmless.
   */
  async upsertMany(events: readonly InstanceChanged[], tx: Tx = this.prisma): Promise<number> {
    const rows = latestPerInstance(events);
    if (rows.length === 0) return 0;
    const json = JSON.stringify(
      rows.map((e) => ({
        instance_id: e.instanceId,
        account_id: e.accountId,
        image_id: e.imageId,
        seller_id: e.sellerId,
        product_code: e.productCode,
        instance_type: e.instanceType,
        state: e.state,
        running_at: e.runningAt,
        stopped_at: e.stoppedAt,
        revision: e.revision,
      })),
    );
    return tx.$executeRaw`
      INSERT INTO billing.usage_record AS u
             (instance_id, account_id, image_id, seller_id, product_code, instance_type, state, running_at, stopped_at, revision)
      SELECT instance_id, account_id, image_id, seller_id, product_code, instance_type, state, running_at, stopped_at, revision
        FROM jsonb_to_recordset(${json}::jsonb) AS r(instance_id text, account_id text, image_id text, seller_id text,
             product_code text, instance_type text, state text, running_at timestamptz, stopped_at timestamptz, revision int)
      ON CONFLICT (instance_id) DO UPDATE SET
             account_id = excluded.account_id, image_id = excluded.image_id, seller_id = excluded.seller_id,
             product_code = excluded.product_code, instance_type = excluded.instance_type, state = excluded.state,
             running_at = excluded.running_at, stopped_at = excluded.stopped_at, revision = excluded.revision,
             updated_at = CURRENT_TIMESTAMP
       WHERE excluded.revision > u.revision`;
  }

  /**
   * The billed seconds of one account in [from, to), per product, seller and instance type.
   * Instances still running are counted up to `asOf` (the period end when closing a month, the
   * present for usage so far).
   */
  async groups(
    accountId: string,
    from: Date,
    to: Date,
    asOf: Date = to,
    tx: Tx = this.prisma,
  ): Promise<UsageGroup[]> {
    return (await this.groupsOf([accountId], from, to, asOf, tx)).get(accountId) ?? [];
  }

  /** {@link groups} of several accounts in one statement; an account without usage is absent. */
  async groupsOf(
    accountIds: readonly string[],
    from: Date,
    to: Date,
    asOf: Date = to,
    tx: Tx = this.prisma,
  ): Promise<Map<string, UsageGroup[]>> {
    const end = asOf < to ? asOf : to;
    const rows = await tx.$queryRaw<
      {
        account_id: string;
        product_code: string | null;
        seller_id: string;
        instance_type: string;
        seconds: bigint;
        instances: bigint;
      }[]
    >`
      WITH ${billedRuns(Prisma.sql`account_id = ANY(${accountIds}::text[])`, from, end)}
      SELECT account_id, product_code,
             -- Free images' usage is one line per instance type, whoever published the image.
             CASE WHEN product_code IS NULL THEN '' ELSE seller_id END AS seller_id, instance_type,
             sum(seconds)::bigint AS seconds, count(*) FILTER (WHERE seconds > 0) AS instances
        FROM billed GROUP BY account_id, product_code, 3, instance_type HAVING sum(seconds) > 0
       ORDER BY account_id, product_code NULLS LAST, instance_type, 3`;
    const byAccount = new Map<string, UsageGroup[]>();
    for (const r of rows) {
      const group: UsageGroup = {
        productCode: r.product_code,
        sellerId: r.seller_id,
        instanceType: r.instance_type,
        seconds: BigInt(r.seconds),
        instances: Number(r.instances),
      };
      const list = byAccount.get(r.account_id);
      if (list) list.push(group);
      else byAccount.set(r.account_id, [group]);
    }
    return byAccount;
  }

  /**
   * The billed seconds of each instance of a paid product that one account ran in [from, to), by
   * the same rule as {@link groups}: one row per instance, so the rows of a product and instance
   * type add up to that usage line of the invoice. Free images are left out (what Stripe is sent).
   */
  async paidSecondsPerInstance(accountId: string, from: Date, to: Date, tx: Tx = this.prisma): Promise<InstanceUsage[]> {
    const rows = await tx.$queryRaw<{ instance_id: string; product_code: string; instance_type: string; seconds: bigint }[]>`
      WITH ${billedRuns(Prisma.sql`account_id = ${accountId} AND product_code IS NOT NULL`, from, to)}
      SELECT instance_id, product_code, instance_type, seconds FROM billed WHERE seconds > 0 ORDER BY instance_id`;
    return rows.map((r) => ({
      instanceId: r.instance_id,
      productCode: r.product_code,
      instanceType: r.instance_type,
      seconds: BigInt(r.seconds),
    }));
  }

  /**
   * The months before `before` whose usage may have changed for an account since `since`: every
   * month from the start of each run changed since then up to the month before `before`.
   */
  async changedPeriods(
    accountId: string,
    since: Date | null,
    before: Date,
    tx: Tx = this.prisma,
  ): Promise<Date[]> {
    return (await this.changedPeriodsOf(new Map([[accountId, since]]), before, tx)).get(accountId) ?? [];
  }

  /** {@link changedPeriods} of several accounts (each with its own `since`) in one statement. */
  async changedPeriodsOf(since: ReadonlyMap<string, Date | null>, before: Date, tx: Tx = this.prisma): Promise<Map<string, Date[]>> {
    const accounts = [...since.keys()];
    const after = accounts.map((a) => since.get(a) ?? new Date(0));
    const rows = await tx.$queryRaw<{ account_id: string; period: Date }[]>`
      SELECT DISTINCT r.account_id,
             generate_series(date_trunc('month', r.running_at AT TIME ZONE 'UTC'),
                             (${before}::timestamptz AT TIME ZONE 'UTC') - interval '1 month', interval '1 month')
             AT TIME ZONE 'UTC' AS period
        FROM billing.usage_record r
        JOIN unnest(${accounts}::text[], ${after}::timestamptz[]) AS a(account_id, since) ON a.account_id = r.account_id
       WHERE r.updated_at > a.since AND r.running_at IS NOT NULL AND r.running_at < ${before}
       ORDER BY r.account_id, period`;
    const byAccount = new Map<string, Date[]>();
    for (const r of rows) {
      const list = byAccount.get(r.account_id);
      if (list) list.push(r.period);
      else byAccount.set(r.account_id, [r.period]);
    }
    return byAccount;
  }
}

/** One instance's billed seconds of a paid product in a period (what Stripe's meter is sent). */
export interface InstanceUsage {
  instanceId: string;
  productCode: string;
  instanceType: string;
  seconds: bigint;
}

/**
 * The billing rule (docs/pricing.md, "Usage metering") as the CTEs `runs` and `billed`: every usage
 * record matching `where` that ran in [from, end), with the seconds it is billed in that period:
 * timestamps cut to the whole second, the part of the run inside the period, a run still going
 * counted up to `end`, and a run shorter than MINIMUM_BILLED_SECONDS topped up to it in the period
 * it stopped in. `billed` keeps the record's columns and adds `seconds`.
 */
function billedRuns(where: Prisma.Sql, from: Date, end: Date): Prisma.Sql {
  return Prisma.sql`runs AS (
        SELECT instance_id, account_id, product_code, seller_id, instance_type,
               date_trunc('second', running_at) AS started,
               date_trunc('second', stopped_at) AS stopped
          FROM billing.usage_record
         WHERE ${where} AND running_at IS NOT NULL AND running_at < ${end}
           AND (stopped_at IS NULL OR stopped_at >= ${from})
      ), billed AS (
        SELECT instance_id, account_id, product_code, seller_id, instance_type,
               greatest(0, extract(epoch FROM least(coalesce(stopped, ${end}), ${end}) - greatest(started, ${from})))::bigint
               + CASE WHEN stopped >= ${from} AND stopped < ${end}
                      THEN greatest(0, ${MINIMUM_BILLED_SECONDS} - extract(epoch FROM stopped - started))::bigint
                      ELSE 0 END AS seconds
          FROM runs
      )`;
}
