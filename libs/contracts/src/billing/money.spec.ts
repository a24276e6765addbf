import { describe, expect, it } from 'vitest';
import { decimalToMicros, microsToMoney, microsToPercent, percentOf } from './money.js';

describe('money', () => {
  it('reads decimal strings into exact micro-units', () => {
    expect(decimalToMicros('0.0116')).toBe(11_600n);
    expect(decimalToMicros('1000')).toBe(1_000_000_000n);
    expect(decimalToMicros('0.000001')).toBe(1n);
    expect(decimalToMicros('999999999999.999999')).toBe(999_999_999_999_999_999n);
    for (const bad of ['-1', '1.0000001', '01', '1e3', '', '.5', '1.', ' 1']) expect(() => decimalToMicros(bad)).toThrow(RangeError);
  });

  it('writes money with at least two decimals and no trailing zeros beyond them', () => {
    expect(microsToMoney(11_600n)).toBe('0.0116');
    expect(microsToMoney(300_000n)).toBe('0.30');
    expect(microsToMoney(5_000_000n)).toBe('5.00');
    expect(microsToMoney(0n)).toBe('0.00');
    expect(microsToMoney(1n)).toBe('0.000001');
    expect(microsToPercent(3_000_000n)).toBe('3');
    expect(microsToPercent(12_500_000n)).toBe('12.5');
  });

  it('takes a percentage rounded to the micro-unit, half up', () => {
    expect(percentOf(10_400n, 20_000_000n)).toBe(2_080n); // 20% of 0.0104
    expect(percentOf(5n, 10_000_000n)).toBe(1n); // 0.5 micro → 1
    expect(percentOf(4n, 10_000_000n)).toBe(0n); // 0.4 micro → 0
    expect(percentOf(15n, 10_000_000n)).toBe(2n); // 1.5 → 2
    expect(percentOf(1_000_000_000n, 1_000_000_000n)).toBe(10_000_000_000n); // 1000% of 1000
  });
});
