/**
 * Money on the wire is a decimal string ("0.0116"), never a JSON number; inside the platform it is
 * an exact decimal (PostgreSQL numeric(18,6)) or an integer count of micro-units (10^-6 of the
 * currency unit) as a bigint. The rounding rule, written down once (docs/pricing.md): every amount
 * the platform computes is rounded to the micro-unit, half up. Inputs carry at most six decimals,
 * so sums of inputs are exact and only products with a percentage round.
 */

/** Micro-units in one unit of currency. */
export const MICROS_PER_UNIT = 1_000_000n;

/** A non-negative decimal with at most 12 integer digits and 6 decimals (fits numeric(18,6)). */
export const DECIMAL_PATTERN = /^(0|[1-9]\d{0,11})(\.\d{1,6})?$/;

/** `"0.0116"` → `11600n`. The string must match {@link DECIMAL_PATTERN}. */
export function decimalToMicros(value: string): bigint {
  if (!DECIMAL_PATTERN.test(value)) throw new RangeError(`Not a decimal amount: ${JSON.stringify(value)}`);
  const [whole = '0', fraction = ''] = value.split('.');
  return BigInt(whole) * MICROS_PER_UNIT + BigInt(fraction.padEnd(6, '0'));
}

/**
 * `11600n` → `"0.0116"`; `300000n` → `"0.30"`; `5000000n` → `"5.00"`: trailing zeros dropped, but
 * at least two decimals, as prices are written.
 */
export function microsToMoney(micros: bigint): string {
  return format(micros, 2);
}

/** `3000000n` → `"3"`; `12500000n` → `"12.5"`: a percentage in micro-units of a percent. */
export function microsToPercent(micros: bigint): string {
  return format(micros, 0);
}

function format(micros: bigint, minDecimals: number): string {
  if (micros < 0n) return `-${format(-micros, minDecimals)}`;
  const whole = micros / MICROS_PER_UNIT;
  let fraction = (micros % MICROS_PER_UNIT).toString().padStart(6, '0').replace(/0+$/, '');
  if (fraction.length < minDecimals) fraction = fraction.padEnd(minDecimals, '0');
  return fraction ? `${whole}.${fraction}` : whole.toString();
}

/** `percentMicros` percent of `amountMicros`, rounded to the micro-unit, half up. Both non-negative. */
export function percentOf(amountMicros: bigint, percentMicros: bigint): bigint {
  if (amountMicros < 0n || percentMicros < 0n) throw new RangeError('percentOf takes non-negative values');
  const divisor = 100n * MICROS_PER_UNIT;
  return (amountMicros * percentMicros + divisor / 2n) / divisor;
}
