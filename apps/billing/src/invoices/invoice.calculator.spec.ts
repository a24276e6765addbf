import { describe, expect, it } from 'vitest';
import { divRoundHalfUp, monthlyFeeFor, parseMonth, usageCharge } from './invoice.calculator.js';

describe('invoice arithmetic', () => {
  it('rounds half up, and half away from zero below zero', () => {
    expect(divRoundHalfUp(5n, 10n)).toBe(1n);
    expect(divRoundHalfUp(4n, 10n)).toBe(0n);
    expect(divRoundHalfUp(-5n, 10n)).toBe(-1n);
    expect(divRoundHalfUp(-4n, 10n)).toBe(0n);
  });

  it('prices seconds per line, and splits the platform part from the seller part exactly', () => {
    // 60 s of t3.small (0.0208) with a markup of 0.01: 0.000513 in all, 0.000347 of it the platform's.
    expect(usageCharge(60n, { base: 20_800n, markup: 10_000n })).toEqual({
      amount: 513n,
      base: 347n,
      seller: 166n,
    });
    expect(usageCharge(-12_600n, { base: 10_400n, markup: 9_600n })).toEqual({
      amount: -70_000n,
      base: -36_400n,
      seller: -33_600n,
    });
  });

  it('prorates the first month to the millisecond and bills later months whole', () => {
    const november = parseMonth('2026-11');
    expect(monthlyFeeFor(30_000_000n, new Date('2026-11-16T00:00:00Z'), november)).toBe(15_000_000n);
    expect(monthlyFeeFor(30_000_000n, new Date('2026-10-16T00:00:00Z'), november)).toBe(30_000_000n);
    expect(monthlyFeeFor(9_990_000n, new Date('2026-10-05T00:00:00Z'), parseMonth('2026-10'))).toBe(
      8_700_968n,
    );
    expect(parseMonth('2026-12')).toEqual({
      start: new Date('2026-12-01T00:00:00Z'),
      end: new Date('2027-01-01T00:00:00Z'),
    });
  });
});
