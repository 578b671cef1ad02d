/**
 * Seeded pseudo-random numbers for simulations (fill probabilities, slippage jitter).
 *
 * Invariant: the same seed yields the same sequence on every platform and run, so a backtest or a
 * paper session replayed with the same bars, orders and seed produces the same fills. Never use
 * Math.random() in domain code.
 *
 * Algorithm: mulberry32 (32-bit state, period 2^32). Plenty for simulation noise; not cryptographic.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
    // Fold any finite number (including negatives and fractions) into an unsigned 32-bit state.
    this.state = Math.trunc(seed) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer uniform in [min, max] (inclusive). */
  nextInt(min: number, max: number): number {
    if (!Number.isInteger(min) || !Number.isInteger(max) || max < min) {
      throw new RangeError(`nextInt needs integers min <= max, got ${min}, ${max}`);
    }
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability p (p <= 0 never, p >= 1 always; neither extreme consumes a draw). */
  chance(p: number): boolean {
    if (p >= 1) return true;
    if (p <= 0) return false;
    return this.next() < p;
  }
}
