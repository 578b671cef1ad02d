/**
 * Simple moving average. Pure; no I/O.
 *
 * The streaming form keeps the last `period` values in a ring buffer and sums the window on each read rather
 * than maintaining a running sum: O(period) per update, but no floating-point drift, so the streaming value is
 * bit-for-bit the batch value (`sma()`), and a strategy's equality/crossing decisions do not depend on how long
 * the process has been running. For the periods we use (2..200) that is still millions of updates per second.
 */

export class StreamingSma {
  private readonly buf: number[];
  private next = 0;
  private count = 0;

  constructor(readonly period: number) {
    if (!Number.isInteger(period) || period < 1)
      throw new RangeError(`SMA period must be a positive integer, got ${period}`);
    this.buf = new Array<number>(period).fill(0);
  }

  /** Add a value; returns the SMA once `period` values have been seen, else undefined. */
  update(value: number): number | undefined {
    if (!Number.isFinite(value)) throw new RangeError(`SMA input must be finite, got ${value}`);
    this.buf[this.next] = value;
    this.next = (this.next + 1) % this.period;
    if (this.count < this.period) this.count++;
    return this.value;
  }

  /** Current SMA, undefined until warmed up. */
  get value(): number | undefined {
    if (this.count < this.period) return undefined;
    return windowMean(this.buf, this.next, this.period);
  }

  get ready(): boolean {
    return this.count >= this.period;
  }

  reset(): void {
    this.buf.fill(0);
    this.next = 0;
    this.count = 0;
  }
}

/** Oldest-first summation so the streaming value equals the batch one exactly. */
function windowMean(buf: readonly number[], oldest: number, period: number): number {
  let sum = 0;
  for (let i = 0; i < period; i++) sum += buf[(oldest + i) % period]!;
  return sum / period;
}

/** Batch SMA: result[i] is the mean of values[i-period+1..i], or undefined for i < period-1. */
export function sma(values: readonly number[], period: number): Array<number | undefined> {
  const s = new StreamingSma(period);
  return values.map((v) => s.update(v));
}
