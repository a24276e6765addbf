import { describe, expect, it } from 'vitest';
import { currentPeriodAfter, firstPeriod, firstPeriodShare, startOfNextMonth } from './billing-period.js';

const at = (iso: string) => new Date(iso);

describe('billing periods', () => {
  it('end at the first instant of the next calendar month, in UTC', () => {
    expect(startOfNextMonth(at('2026-01-15T10:00:00Z'))).toEqual(at('2026-02-01T00:00:00Z'));
    expect(startOfNextMonth(at('2026-12-31T23:59:59.999Z'))).toEqual(at('2027-01-01T00:00:00Z'));
    expect(startOfNextMonth(at('2026-02-01T00:00:00Z'))).toEqual(at('2026-03-01T00:00:00Z'));
    // 23:30 on 31 March in New York is already April in UTC.
    expect(startOfNextMonth(at('2026-04-01T03:30:00Z'))).toEqual(at('2026-05-01T00:00:00Z'));
  });

  it('make the first period run from the start to the end of its month', () => {
    expect(firstPeriod(at('2026-01-15T10:00:00Z'))).toEqual({ start: at('2026-01-15T10:00:00Z'), end: at('2026-02-01T00:00:00Z') });
  });

  it('prorate the first month by time', () => {
    expect(firstPeriodShare(at('2026-01-01T00:00:00Z'))).toBe(1);
    expect(firstPeriodShare(at('2026-04-16T00:00:00Z'))).toBe(0.5); // 15 of April's 30 days left
    expect(firstPeriodShare(at('2026-02-28T00:00:00Z'))).toBeCloseTo(1 / 28, 12);
  });

  it('continue with whole calendar months, skipping those that passed', () => {
    expect(currentPeriodAfter(at('2026-02-01T00:00:00Z'), at('2026-02-01T00:00:00.001Z'))).toEqual({
      start: at('2026-02-01T00:00:00Z'),
      end: at('2026-03-01T00:00:00Z'),
    });
    expect(currentPeriodAfter(at('2026-02-01T00:00:00Z'), at('2026-04-10T00:00:00Z'))).toEqual({
      start: at('2026-04-01T00:00:00Z'),
      end: at('2026-05-01T00:00:00Z'),
    });
    // Exactly at a boundary, the period that starts there.
    expect(currentPeriodAfter(at('2026-02-01T00:00:00Z'), at('2026-03-01T00:00:00Z'))).toEqual({
      start: at('2026-03-01T00:00:00Z'),
      end: at('2026-04-01T00:00:00Z'),
    });
  });
});
