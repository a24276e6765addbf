/**
 * Billing periods, DevPay style (docs/pricing.md): calendar months in UTC. A subscription's first
 * period runs from the moment it starts to the first instant of the next month, so the first
 * month's fee is prorated; every later period is one whole calendar month.
 */

/** The first instant (UTC) of the calendar month after the one `at` falls in. */
export function startOfNextMonth(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
}

/** The first period of a subscription that starts at `start`. */
export function firstPeriod(start: Date): { start: Date; end: Date } {
  return { start, end: startOfNextMonth(start) };
}

/**
 * The period that contains `now`, for a subscription whose period ended at `periodEnd`: the
 * whole calendar months that follow, skipping any that passed meanwhile.
 */
export function currentPeriodAfter(periodEnd: Date, now: Date): { start: Date; end: Date } {
  let start = periodEnd;
  let end = startOfNextMonth(start);
  while (end <= now) {
    start = end;
    end = startOfNextMonth(start);
  }
  return { start, end };
}

/**
 * The share of a month's fee the first period is worth: its length over the length of its
 * calendar month, in [0, 1]. Charging applies it (rounded to the micro-unit, half up).
 */
export function firstPeriodShare(start: Date): number {
  const monthStart = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), 1);
  const monthEnd = startOfNextMonth(start).getTime();
  return (monthEnd - start.getTime()) / (monthEnd - monthStart);
}
