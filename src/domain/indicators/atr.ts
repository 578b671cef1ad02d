/**
 * Average True Range (Wilder). Pure; no I/O.
 *
 * The true range of a bar is the widest of: high − low, |high − previous close|, |low − previous close|,
 * so an overnight gap counts as range. ATR is the Wilder-smoothed mean of the true ranges:
 * seed = simple mean of the first `period` true ranges, then ATR_t = (ATR_{t−1}·(period − 1) + TR_t) / period.
 *
 * A true range needs a previous close, so `period` true ranges need `period + 1` bars. The risk engine uses
 * ATR × a multiple as the stop distance for position sizing.
 */

export interface RangeBar {
  high: number;
  low: number;
  close: number;
}

/** True range of `bar` given the previous bar's close. */
export function trueRange(bar: RangeBar, previousClose: number): number {
  return Math.max(bar.high - bar.low, Math.abs(bar.high - previousClose), Math.abs(bar.low - previousClose));
}

/** Every bar's true range from the second bar on (index i of the result belongs to bars[i + 1]). */
export function trueRanges(bars: readonly RangeBar[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < bars.length; i++) out.push(trueRange(bars[i]!, bars[i - 1]!.close));
  return out;
}

/**
 * Wilder ATR series: one value per bar from bars[period] on (shorter than `bars` by `period`).
 * Empty when there are fewer than `period + 1` bars.
 */
export function atrSeries(bars: readonly RangeBar[], period: number): number[] {
  if (!Number.isInteger(period) || period < 1)
    throw new RangeError(`ATR period must be a positive integer, got ${period}`);
  const tr = trueRanges(bars);
  if (tr.length < period) return [];
  let value = 0;
  for (let i = 0; i < period; i++) value += tr[i]!;
  value /= period;
  const out = [value];
  for (let i = period; i < tr.length; i++) {
    value = (value * (period - 1) + tr[i]!) / period;
    out.push(value);
  }
  return out;
}

/**
 * The latest ATR over `bars` (oldest first), or null when there are fewer than `period + 1` bars or a value is not
 * finite. atrSeries' last value, computed without building the series (the risk engine sizes every signal with it):
 * the same sums and smoothing steps in the same order.
 */
export function atr(bars: readonly RangeBar[], period: number): number | null {
  if (!Number.isInteger(period) || period < 1)
    throw new RangeError(`ATR period must be a positive integer, got ${period}`);
  if (bars.length - 1 < period) return null;
  let value = 0;
  for (let i = 0; i < period; i++) value += trueRange(bars[i + 1]!, bars[i]!.close);
  value /= period;
  for (let i = period; i < bars.length - 1; i++)
    value = (value * (period - 1) + trueRange(bars[i + 1]!, bars[i]!.close)) / period;
  return Number.isFinite(value) ? value : null;
}
