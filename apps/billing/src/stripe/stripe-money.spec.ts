import { describe, expect, it } from 'vitest';
import {
  hourlyMicrosToStripeCentsPerSecond,
  microsToStripeCents,
  stripeCentsToDecimal,
} from './stripe.client.js';

describe('Stripe amounts', () => {
  it('turn micro-units into exact decimal cents, the form unit_amount_decimal takes', () => {
    expect(microsToStripeCents(10_400n)).toBe('1.04'); // 0.0104 per instance-hour
    expect(microsToStripeCents(5_000_000n)).toBe('500');
    expect(microsToStripeCents(1n)).toBe('0.0001');
    expect(microsToStripeCents(0n)).toBe('0');
    expect(microsToStripeCents(123_456_789_012_345_678n)).toBe('12345678901234.5678');
    expect(() => microsToStripeCents(-1n)).toThrow(RangeError);
  });

  it("turn Stripe's integer cents into exact decimals", () => {
    expect(stripeCentsToDecimal(1234)).toBe('12.34');
    expect(stripeCentsToDecimal(5)).toBe('0.05');
    expect(stripeCentsToDecimal(0)).toBe('0.00');
    expect(stripeCentsToDecimal(-250)).toBe('-2.50');
    expect(() => stripeCentsToDecimal(1.5)).toThrow(RangeError);
  });

  it('turn an hourly rate into the price of a second in cents, to twelve decimals, half up', () => {
    expect(hourlyMicrosToStripeCentsPerSecond(20_400n)).toBe('0.000566666667'); // 2.04 cents / 3600
    expect(hourlyMicrosToStripeCentsPerSecond(36_000_000n)).toBe('1'); // 36.00 per hour: a cent a second
    expect(hourlyMicrosToStripeCentsPerSecond(10_400n)).toBe('0.000288888889');
    expect(hourlyMicrosToStripeCentsPerSecond(0n)).toBe('0');
  });
});
