/**
 * Streaming technical indicators: each is fed one value (or one bar) at a time, oldest first, and updates in O(1)
 * per bar (amortised, see "Exactness" below). Pure: no I/O, no clock, no randomness. The strategies, the
 * `npm run indicators` CLI and the backtester all use these classes, so the number a user checks against a
 * charting tool is the number the strategy decided on.
 *
 * Conventions (the textbook ones, as in TA-Lib and most charting tools; docs/quant.md):
 * - SMA(n): mean of the last n values, defined from the n-th value on.
 * - EMA(n): α = 2 / (n + 1), seeded with the SMA of the first n values (defined from the n-th value on), then
 *   EMA_t = EMA_{t−1} + α·(x_t − EMA_{t−1}). A true exponential average, unlike the original's "EMA" (an SMA).
 * - RSI(n), Wilder: the first average gain/loss is the simple mean of the first n close-to-close changes, then
 *   avg_t = (avg_{t−1}·(n − 1) + change_t) / n. RSI = 100·avgGain / (avgGain + avgLoss); defined from the
 *   (n + 1)-th close on. A flat series (no gain, no loss) is 50, not the original's 100.
 * - MACD(f, s, g): EMA_f − EMA_s (defined from the s-th close), signal = EMA_g of the MACD line (seeded with the
 *   SMA of its first g values, so defined from close s + g − 1), histogram = MACD − signal.
 * - Bollinger(n, k): middle = SMA(n), σ = population standard deviation (divide by n) of the same n closes
 *   including the current one, bands = middle ± k·σ.
 * - ATR(n), Wilder: true range = max(high − low, |high − prevClose|, |low − prevClose|) from the second bar on;
 *   the first ATR is the mean of the first n true ranges (defined from bar n + 1), then Wilder smoothing.
 * - Z-score(n): (x − mean) / σ over the last n values including x (population σ); 0 when σ is 0.
 * - ROC(n), momentum: (x_t − x_{t−n}) / x_{t−n}, a fraction (0.05 = +5 %); defined from value n + 1 on.
 *
 * Exactness: a running sum drifts by a few ulps per update. The window indicators (SMA, Bollinger, z-score)
 * recompute their sums exactly from the window once every n updates (O(n) every n bars: O(1) amortised), so the
 * drift never accumulates beyond n updates and the value is a deterministic function of the series from its
 * first bar. Exponential ones (EMA, RSI, ATR) have no drift to bound.
 */

export interface HlcBar {
  high: number;
  low: number;
  close: number;
}

function checkPeriod(name: string, period: number): void {
  if (!Number.isInteger(period) || period < 1)
    throw new RangeError(`${name} period must be a positive integer, got ${period}`);
}

function checkFinite(name: string, x: number): void {
  if (!Number.isFinite(x)) throw new RangeError(`${name} input must be finite, got ${x}`);
}

/**
 * Outputs are kept as plain doubles, NaN until defined, and read as `number | undefined` through getters. A field
 * that holds either `undefined` or a double is a tagged field in V8: every store of a new value allocates a heap
 * number, i.e. several allocations per indicator per bar with every strategy on (a good share of the quant's
 * garbage). A double-only field is updated in place. Inputs are checked finite, so no defined output is NaN.
 *
 * The same holds for a value in flight: `update` answers `number | undefined`, and wherever its caller tests the
 * answer for `undefined` the two kinds meet, so the optimised code keeps the number boxed (a heap number per call,
 * inlined or not: one per indicator per bar, ~15 a bar with every strategy on). The strategies therefore call
 * `advance` (the same update, answering NaN until defined: a double all the way) and read the `…OrNaN` getters,
 * and test `v !== v` for "not yet"; `update` and the `number | undefined` getters are `advance` and the NaN-valued
 * fields seen through `out`, for every other caller.
 */
function out(v: number): number | undefined {
  return v === v ? v : undefined;
}

/** Simple moving average, O(1) per update. */
export class Sma {
  private readonly buf: Float64Array;
  private next = 0;
  private count = 0;
  private sum = 0;
  /** NaN until defined (see `Out` below). */
  private v = Number.NaN;

  constructor(readonly period: number) {
    checkPeriod('SMA', period);
    this.buf = new Float64Array(period);
  }

  update(x: number): number | undefined {
    return out(this.advance(x));
  }

  /** update(x), NaN until defined (see `out`). */
  advance(x: number): number {
    checkFinite('SMA', x);
    const p = this.period;
    if (this.count < p) {
      this.count++;
      this.sum += x;
    } else {
      this.sum += x - this.buf[this.next]!;
    }
    this.buf[this.next] = x;
    if (++this.next === p) {
      this.next = 0;
      // Exact resummation once per window, oldest first: bounds the running sum's drift.
      let s = 0;
      for (let i = 0; i < p; i++) s += this.buf[i]!;
      this.sum = s;
    }
    if (this.count !== p) return Number.NaN;
    this.v = this.sum / p;
    return this.v;
  }

  get value(): number | undefined {
    return out(this.v);
  }

  get ready(): boolean {
    return this.count === this.period;
  }
}

/** Exponential moving average seeded with the SMA of its first `period` values. */
export class Ema {
  readonly alpha: number;
  private count = 0;
  private seedSum = 0;
  private v = Number.NaN;

  constructor(readonly period: number) {
    checkPeriod('EMA', period);
    this.alpha = 2 / (period + 1);
  }

  update(x: number): number | undefined {
    return out(this.advance(x));
  }

  /** update(x), NaN until defined (see `out`). */
  advance(x: number): number {
    checkFinite('EMA', x);
    if (this.count === this.period) {
      this.v += this.alpha * (x - this.v);
      return this.v;
    }
    this.seedSum += x;
    if (++this.count !== this.period) return Number.NaN;
    this.v = this.seedSum / this.period;
    return this.v;
  }

  get value(): number | undefined {
    return out(this.v);
  }

  get ready(): boolean {
    return this.count === this.period;
  }
}

/** Wilder's RSI on closes, in [0, 100]. */
export class Rsi {
  /** NaN before the first close. */
  private prev = Number.NaN;
  private changes = 0;
  private avgGain = 0;
  private avgLoss = 0;
  private v = Number.NaN;

  constructor(readonly period: number) {
    checkPeriod('RSI', period);
  }

  update(close: number): number | undefined {
    return out(this.advance(close));
  }

  /** update(close), NaN until defined (see `out`). */
  advance(close: number): number {
    checkFinite('RSI', close);
    const prev = this.prev;
    this.prev = close;
    if (prev !== prev) return Number.NaN; // NaN: the first close
    const change = close - prev;
    const gain = change > 0 ? change : 0;
    const loss = change < 0 ? -change : 0;
    const n = this.period;
    this.changes++;
    if (this.changes <= n) {
      this.avgGain += gain;
      this.avgLoss += loss;
      if (this.changes < n) return Number.NaN;
      this.avgGain /= n;
      this.avgLoss /= n;
    } else {
      this.avgGain = (this.avgGain * (n - 1) + gain) / n;
      this.avgLoss = (this.avgLoss * (n - 1) + loss) / n;
    }
    const total = this.avgGain + this.avgLoss;
    this.v = total === 0 ? 50 : (100 * this.avgGain) / total;
    return this.v;
  }

  get value(): number | undefined {
    return out(this.v);
  }

  get ready(): boolean {
    return this.v === this.v;
  }
}

export interface MacdValue {
  macd: number;
  /** Undefined until the signal EMA has `signalPeriod` MACD values. */
  signal: number | undefined;
  histogram: number | undefined;
}

/** MACD line, signal line and histogram. */
export class Macd {
  private readonly fast: Ema;
  private readonly slow: Ema;
  private readonly sig: Ema;
  private line = Number.NaN;
  private sigLine = Number.NaN;
  private hist = Number.NaN;

  constructor(
    readonly fastPeriod = 12,
    readonly slowPeriod = 26,
    readonly signalPeriod = 9,
  ) {
    if (!(fastPeriod < slowPeriod)) throw new RangeError(`MACD needs fast < slow, got ${fastPeriod}/${slowPeriod}`);
    this.fast = new Ema(fastPeriod);
    this.slow = new Ema(slowPeriod);
    this.sig = new Ema(signalPeriod);
  }

  update(close: number): number | undefined {
    return out(this.advance(close));
  }

  /** update(close): the MACD line, NaN until defined (see `out`). */
  advance(close: number): number {
    const f = this.fast.advance(close);
    const s = this.slow.advance(close);
    if (f !== f || s !== s) return Number.NaN;
    const line = f - s;
    this.line = line;
    const sig = this.sig.advance(line);
    if (sig === sig) {
      this.sigLine = sig;
      this.hist = line - sig;
    }
    return line;
  }

  get macd(): number | undefined {
    return out(this.line);
  }

  /** The MACD line, NaN until defined. */
  get macdOrNaN(): number {
    return this.line;
  }

  /** The signal line, NaN until defined. */
  get signalOrNaN(): number {
    return this.sigLine;
  }

  /** The histogram, NaN until defined. */
  get histogramOrNaN(): number {
    return this.hist;
  }

  /** Undefined until the signal EMA has `signalPeriod` MACD values. */
  get signal(): number | undefined {
    return out(this.sigLine);
  }

  get histogram(): number | undefined {
    return out(this.hist);
  }

  get ready(): boolean {
    return this.hist === this.hist;
  }
}

/**
 * Rolling mean and population standard deviation of the last `period` values, O(1) per update: a sliding
 * Welford update (numerically stable, unlike sum-of-squares), recomputed exactly by two passes once per window.
 */
export class RollingStats {
  private readonly buf: Float64Array;
  private next = 0;
  private count = 0;
  private mean = 0;
  /** Σ (x − mean)² over the window. */
  private m2 = 0;

  constructor(readonly period: number) {
    checkPeriod('rolling window', period);
    this.buf = new Float64Array(period);
  }

  /** Add a value; true once the window is full. */
  push(x: number): boolean {
    checkFinite('rolling window', x);
    const p = this.period;
    if (this.count < p) {
      this.count++;
      const d = x - this.mean;
      this.mean += d / this.count;
      this.m2 += d * (x - this.mean);
    } else {
      const old = this.buf[this.next]!;
      const oldMean = this.mean;
      this.mean += (x - old) / p;
      this.m2 += (x - old) * (x - this.mean + old - oldMean);
      if (this.m2 < 0) this.m2 = 0;
    }
    this.buf[this.next] = x;
    if (++this.next === p) {
      this.next = 0;
      let s = 0;
      for (let i = 0; i < p; i++) s += this.buf[i]!;
      const m = s / p;
      let q = 0;
      for (let i = 0; i < p; i++) {
        const d = this.buf[i]! - m;
        q += d * d;
      }
      this.mean = m;
      this.m2 = q;
    }
    return this.count === p;
  }

  get ready(): boolean {
    return this.count === this.period;
  }

  /** Mean of the window (of the values so far while warming up). */
  get average(): number {
    return this.mean;
  }

  /**
   * Population standard deviation of the window. A σ below 1e-12 of the mean is rounding residue of a flat
   * window (the sliding update leaves ~1e-16 where two passes give exactly 0) and reads as 0.
   */
  get stdDev(): number {
    const sd = Math.sqrt(this.m2 / this.count);
    return sd <= 1e-12 * Math.abs(this.mean) ? 0 : sd;
  }
}

/** Bollinger bands: SMA(period) ± k·σ (population σ). */
export class Bollinger {
  private readonly stats: RollingStats;
  private mid = Number.NaN;
  private up = Number.NaN;
  private low = Number.NaN;
  private sd = Number.NaN;

  constructor(
    readonly period = 20,
    readonly k = 2,
  ) {
    if (!(k > 0) || !Number.isFinite(k)) throw new RangeError(`Bollinger multiplier must be > 0, got ${k}`);
    this.stats = new RollingStats(period);
  }

  update(close: number): number | undefined {
    return out(this.advance(close));
  }

  /** update(close): the middle band, NaN until defined (see `out`). */
  advance(close: number): number {
    if (!this.stats.push(close)) return Number.NaN;
    const m = this.stats.average;
    const sd = this.stats.stdDev;
    this.mid = m;
    this.sd = sd;
    this.up = m + this.k * sd;
    this.low = m - this.k * sd;
    return m;
  }

  get middle(): number | undefined {
    return out(this.mid);
  }

  get upper(): number | undefined {
    return out(this.up);
  }

  get lower(): number | undefined {
    return out(this.low);
  }

  /** σ of the window. */
  get sigma(): number | undefined {
    return out(this.sd);
  }

  /** The bands and σ, NaN until defined. */
  get middleOrNaN(): number {
    return this.mid;
  }

  get upperOrNaN(): number {
    return this.up;
  }

  get lowerOrNaN(): number {
    return this.low;
  }

  get sigmaOrNaN(): number {
    return this.sd;
  }

  get ready(): boolean {
    return this.mid === this.mid;
  }
}

/** Wilder's average true range. */
export class Atr {
  private prevClose: number | undefined = undefined;
  private ranges = 0;
  private acc = 0;
  value: number | undefined = undefined;

  constructor(readonly period: number) {
    checkPeriod('ATR', period);
  }

  update(bar: HlcBar): number | undefined {
    checkFinite('ATR', bar.high);
    checkFinite('ATR', bar.low);
    checkFinite('ATR', bar.close);
    const pc = this.prevClose;
    this.prevClose = bar.close;
    if (pc === undefined) return undefined;
    const tr = Math.max(bar.high - bar.low, Math.abs(bar.high - pc), Math.abs(bar.low - pc));
    const n = this.period;
    this.ranges++;
    if (this.ranges < n) {
      this.acc += tr;
      return undefined;
    }
    if (this.ranges === n) {
      this.acc += tr;
      this.value = this.acc / n;
    } else {
      this.value = (this.value! * (n - 1) + tr) / n;
    }
    return this.value;
  }

  get ready(): boolean {
    return this.value !== undefined;
  }
}

/** Rolling z-score of the latest value against its window (population σ). */
export class ZScore {
  private readonly stats: RollingStats;
  value: number | undefined = undefined;

  constructor(readonly period: number) {
    if (period < 2) throw new RangeError(`z-score period must be >= 2, got ${period}`);
    this.stats = new RollingStats(period);
  }

  update(x: number): number | undefined {
    if (!this.stats.push(x)) return undefined;
    const sd = this.stats.stdDev;
    this.value = sd === 0 ? 0 : (x - this.stats.average) / sd;
    return this.value;
  }

  get ready(): boolean {
    return this.value !== undefined;
  }
}

/** Rate of change over `period` values (momentum), as a fraction. */
export class Roc {
  private readonly buf: Float64Array;
  private next = 0;
  private count = 0;
  private v = Number.NaN;

  constructor(readonly period: number) {
    checkPeriod('ROC', period);
    this.buf = new Float64Array(period + 1);
  }

  update(x: number): number | undefined {
    return out(this.advance(x));
  }

  /** update(x), NaN until defined (see `out`). */
  advance(x: number): number {
    checkFinite('ROC', x);
    const len = this.period + 1;
    this.buf[this.next] = x;
    this.next = this.next + 1 === len ? 0 : this.next + 1;
    if (this.count < len) this.count++;
    if (this.count < len) return Number.NaN;
    const old = this.buf[this.next]!; // the oldest: written `period` updates ago
    this.v = old === 0 ? 0 : (x - old) / old;
    return this.v;
  }

  get value(): number | undefined {
    return out(this.v);
  }

  get ready(): boolean {
    return this.v === this.v;
  }
}
