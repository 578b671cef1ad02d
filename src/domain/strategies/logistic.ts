import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';
import { HeldStance, type SignalIntent, type Stance, type Strategy } from './types';

/**
 * `ml`: the original's logistic-regression strategy, done right.
 *
 * Features of bar t, from closes up to t only (the original's three):
 *   ret  = (p_t − p_{t−1}) / p_{t−1}
 *   diff = (p_t − ma) / ma, ma = mean of the 5 closes before t
 *   vol  = population σ of the 5 returns ending at t
 * Label of bar t: 1 when the NEXT close is higher (p_{t+1} > p_t), so it is known only one bar later. The original
 * paired each feature row with its own return's sign (label leakage: the model "predicted" the present).
 *
 * Walk-forward: a training sample (x_t, y_t) enters the training window only once p_{t+1} has arrived; the model is
 * refit every `retrainEvery` bars (default = window, as in the original) on the last `window` labelled samples,
 * never on the bar it predicts. Prediction at bar t: P(p_{t+1} > p_t | x_t). BUY when P > 0.5, SELL when P < 0.5,
 * emitted only when the predicted side changes; confidence = the model's probability of the predicted side
 * (the original drew a random number in [0.75, 0.95]).
 *
 * The model is scikit-learn's default LogisticRegression (L2, C = 1, unpenalised intercept) on features
 * standardised with the training window's own mean and σ, fit by Newton's method (IRLS) to a gradient below 1e-10:
 * four parameters need no library (a 4×4 solve per step). A window with a single class has no finite maximum (the
 * original threw); the previous model is kept then.
 */

export const ML = 'ml';

export interface LogisticParams {
  /** Training window in labelled samples (ML_WINDOW). */
  window: number;
  /** Refit every this many bars. */
  retrainEvery: number;
  /** Inverse L2 strength, as scikit-learn's C. */
  c: number;
}
export const DEFAULT_LOGISTIC: LogisticParams = { window: 50, retrainEvery: 50, c: 1 };

const LOOKBACK = 5;
const NF = 3;

export interface LogisticModel {
  /** [intercept, w_ret, w_diff, w_vol] on standardised features. */
  weights: number[];
  mean: number[];
  scale: number[];
}

/** The logistic function, without overflow for large |z| (exp of a non-positive number only). */
function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/**
 * Scratch space of one fit, grown on demand and reused: a fit runs every `retrainEvery` bars per series and used to
 * allocate its standardised matrix, gradient, Hessian and solver rows afresh (a good share of the quant's garbage).
 * The arithmetic is unchanged, operation for operation, so every weight is bit-identical to the array version.
 * Fits are synchronous, so one module-wide scratch cannot be shared by two fits at once.
 */
const scratch = {
  z: new Float64Array(0),
  g: new Float64Array(0),
  h: new Float64Array(0),
  m: new Float64Array(0),
  step: new Float64Array(0),
};

/** Solve A·x = b (n×n, row-major in `a`) into `x` by Gaussian elimination with partial pivoting. */
function solveInto(a: Float64Array, b: Float64Array, n: number, x: Float64Array): void {
  const w = n + 1;
  if (scratch.m.length < n * w) scratch.m = new Float64Array(n * w);
  const m = scratch.m;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) m[i * w + k] = a[i * n + k]!;
    m[i * w + n] = b[i]!;
  }
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r * w + col]!) > Math.abs(m[piv * w + col]!)) piv = r;
    if (piv !== col) {
      for (let k = 0; k < w; k++) {
        const t = m[col * w + k]!;
        m[col * w + k] = m[piv * w + k]!;
        m[piv * w + k] = t;
      }
    }
    const d = m[col * w + col]!;
    for (let r = col + 1; r < n; r++) {
      const f = m[r * w + col]! / d;
      for (let k = col; k <= n; k++) m[r * w + k]! -= f * m[col * w + k]!;
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r * w + n]!;
    for (let k = r + 1; k < n; k++) s -= m[r * w + k]! * x[k]!;
    x[r] = s / m[r * w + r]!;
  }
}

/**
 * Fit L2-regularised logistic regression (objective Σ logloss + ‖w‖²/(2C), intercept unpenalised) on raw features
 * `xs` (standardised here) and labels `ys` (0/1). Returns null for a single-class sample.
 */
export function fitLogistic(xs: readonly number[][], ys: readonly number[], c = 1): LogisticModel | null {
  const n = ys.length;
  if (n === 0) return null;
  const d = xs[0]!.length;
  const flat = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) flat[i * d + j] = xs[i]![j]!;
  return fitFlat(flat, ys, n, d, c);
}

/** fitLogistic on `n` samples of `d` features stored row after row in `xs` (oldest first), labels in `ys`. */
function fitFlat(xs: Float64Array, ys: ArrayLike<number>, n: number, d: number, c: number): LogisticModel | null {
  let pos = 0;
  for (let i = 0; i < n; i++) pos += ys[i]!;
  if (n === 0 || pos === 0 || pos === n) return null;
  const mean = new Array<number>(d).fill(0);
  const scale = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += xs[i * d + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) scale[j]! += (xs[i * d + j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) scale[j] = Math.sqrt(scale[j]!) || 1;
  const p = d + 1;
  if (scratch.z.length < n * p) scratch.z = new Float64Array(n * p);
  if (scratch.g.length < p) {
    scratch.g = new Float64Array(p);
    scratch.h = new Float64Array(p * p);
    scratch.step = new Float64Array(p);
  }
  const { z, g, h, step } = scratch;
  // Row i of the design matrix: [1, standardised features].
  for (let i = 0; i < n; i++) {
    z[i * p] = 1;
    for (let j = 0; j < d; j++) z[i * p + 1 + j] = (xs[i * d + j]! - mean[j]!) / scale[j]!;
  }
  const lambda = 1 / c;
  const w = new Array<number>(p).fill(0);
  for (let iter = 0; iter < 50; iter++) {
    if (p === 4) accumulate4(z, ys, n, w, g, h);
    else {
      g.fill(0, 0, p);
      h.fill(0, 0, p * p);
      for (let i = 0; i < n; i++) {
        const zi = i * p;
        let dot = 0;
        for (let j = 0; j < p; j++) dot += w[j]! * z[zi + j]!;
        const pi = sigmoid(dot);
        const r = ys[i]! - pi;
        const wt = pi * (1 - pi);
        for (let j = 0; j < p; j++) {
          g[j]! += r * z[zi + j]!;
          for (let k = 0; k < p; k++) h[j * p + k]! += wt * z[zi + j]! * z[zi + k]!;
        }
      }
    }
    for (let j = 1; j < p; j++) {
      g[j]! -= lambda * w[j]!;
      h[j * p + j]! += lambda;
    }
    solveInto(h, g, p, step);
    let maxStep = 0;
    for (let j = 0; j < p; j++) {
      w[j]! += step[j]!;
      maxStep = Math.max(maxStep, Math.abs(step[j]!));
    }
    if (maxStep < 1e-10) break; // Newton converges quadratically: the next step would be ~1e-20
  }
  return { weights: w, mean, scale };
}

/**
 * The gradient and Hessian sums of one Newton step for 4 parameters (the strategy's 3 features + intercept),
 * unrolled into locals: the generic loop's typed-array loads and stores were most of a fit. Every sum is the
 * generic loop's, term for term and in the same order ((wt·z_j)·z_k added sample by sample), so the result is
 * bit-identical. Column 0 of `z` is the intercept's 1 (fitFlat writes it), and a product with exactly 1 is its other
 * factor, bit for bit: so w0·z0 is w0, wt·z0 is wt, r·z0 is r, and row 0 of the Hessian equals its column 0
 * ((wt·z_k)·1 and (wt·1)·z_k are the same product, summed in the same order): each is computed once.
 */
function accumulate4(
  z: Float64Array,
  ys: ArrayLike<number>,
  n: number,
  w: readonly number[],
  g: Float64Array,
  h: Float64Array,
): void {
  const w0 = w[0]!;
  const w1 = w[1]!;
  const w2 = w[2]!;
  const w3 = w[3]!;
  let g0 = 0;
  let g1 = 0;
  let g2 = 0;
  let g3 = 0;
  let h00 = 0;
  let h01 = 0;
  let h02 = 0;
  let h03 = 0;
  let h11 = 0;
  let h12 = 0;
  let h13 = 0;
  let h21 = 0;
  let h22 = 0;
  let h23 = 0;
  let h31 = 0;
  let h32 = 0;
  let h33 = 0;
  for (let i = 0; i < n; i++) {
    const o = i * 4;
    const z1 = z[o + 1]!;
    const z2 = z[o + 2]!;
    const z3 = z[o + 3]!;
    let dot = 0;
    dot += w0; // w0 · z0
    dot += w1 * z1;
    dot += w2 * z2;
    dot += w3 * z3;
    // sigmoid(±0) is exactly 1 / (1 + 1) = 0.5: Newton's first step starts from w = 0, where every dot product is
    // 0, and takes the value without an exp per sample.
    const pi = dot === 0 ? 0.5 : sigmoid(dot);
    const r = ys[i]! - pi;
    const wt = pi * (1 - pi);
    const a1 = wt * z1;
    const a2 = wt * z2;
    const a3 = wt * z3;
    g0 += r; // r · z0
    h00 += wt; // (wt · z0) · z0
    h01 += wt * z1; // (wt · z0) · z1, and h10 = (wt · z1) · z0
    h02 += wt * z2;
    h03 += wt * z3;
    g1 += r * z1;
    h11 += a1 * z1;
    h12 += a1 * z2;
    h13 += a1 * z3;
    g2 += r * z2;
    h21 += a2 * z1;
    h22 += a2 * z2;
    h23 += a2 * z3;
    g3 += r * z3;
    h31 += a3 * z1;
    h32 += a3 * z2;
    h33 += a3 * z3;
  }
  g[0] = g0;
  g[1] = g1;
  g[2] = g2;
  g[3] = g3;
  h[0] = h00;
  h[1] = h01;
  h[2] = h02;
  h[3] = h03;
  h[4] = h01;
  h[5] = h11;
  h[6] = h12;
  h[7] = h13;
  h[8] = h02;
  h[9] = h21;
  h[10] = h22;
  h[11] = h23;
  h[12] = h03;
  h[13] = h31;
  h[14] = h32;
  h[15] = h33;
}

export function predictLogistic(m: LogisticModel, x: ArrayLike<number>): number {
  let dot = m.weights[0]!;
  for (let j = 0; j < x.length; j++) dot += m.weights[j + 1]! * ((x[j]! - m.mean[j]!) / m.scale[j]!);
  return sigmoid(dot);
}

export class LogisticStrategy implements Strategy {
  readonly name = ML;
  readonly params: LogisticParams;
  /** The last LOOKBACK + 1 closes, oldest first (`closeCount` of them until the window is full). */
  private readonly closes = new Float64Array(LOOKBACK + 1);
  private closeCount = 0;
  /**
   * The last LOOKBACK close-to-close returns, oldest first (each computed once, when its close arrives: the
   * features used to divide all of them again on every bar; the same divisions, so the same bits).
   */
  private readonly returns = new Float64Array(LOOKBACK);
  /**
   * Labelled training samples, a ring of at most `window` rows of NF features: row `trainStart` is the oldest.
   * (Arrays shifted on every bar and a fresh feature array per bar were most of this strategy's garbage.)
   */
  private readonly trainX: Float64Array;
  private readonly trainY: Float64Array;
  private trainStart = 0;
  private trainCount = 0;
  /** The samples in order, oldest first, as the fit reads them. */
  private readonly fitX: Float64Array;
  private readonly fitY: Float64Array;
  /** Features of the previous bar, waiting for this bar's close to label them. */
  private readonly pending = new Float64Array(NF);
  private hasPending = false;
  private readonly x = new Float64Array(NF);
  private sinceFit = 0;
  private model: LogisticModel | null = null;
  private last: 'buy' | 'sell' | undefined;
  private readonly held = new HeldStance();
  stance: Stance | null = null;
  /** Bars on which a model was fit (for tests and logs). */
  fits = 0;

  constructor(params: Partial<LogisticParams> = {}) {
    const p = { ...DEFAULT_LOGISTIC, ...params };
    if (!Number.isInteger(p.window) || p.window < 10)
      throw new RangeError(`ml window must be an integer >= 10, got ${p.window}`);
    if (!Number.isInteger(p.retrainEvery) || p.retrainEvery < 1)
      throw new RangeError(`ml retrainEvery must be >= 1, got ${p.retrainEvery}`);
    if (!(p.c > 0)) throw new RangeError(`ml C must be > 0, got ${p.c}`);
    this.params = p;
    this.trainX = new Float64Array(p.window * NF);
    this.trainY = new Float64Array(p.window);
    this.fitX = new Float64Array(p.window * NF);
    this.fitY = new Float64Array(p.window);
  }

  get currentModel(): LogisticModel | null {
    return this.model;
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    const c = bar.close;
    const closes = this.closes;
    // 1. This close labels the previous bar's features: that sample may now be learned from.
    if (this.hasPending && this.closeCount > 0) {
      const prevClose = closes[this.closeCount - 1]!;
      const window = this.params.window;
      let row: number;
      if (this.trainCount < window) {
        row = (this.trainStart + this.trainCount) % window;
        this.trainCount++;
      } else {
        row = this.trainStart; // the oldest sample leaves the window
        this.trainStart = (this.trainStart + 1) % window;
      }
      for (let j = 0; j < NF; j++) this.trainX[row * NF + j] = this.pending[j]!;
      this.trainY[row] = c > prevClose ? 1 : 0;
      this.hasPending = false;
    }
    const returns = this.returns;
    if (this.closeCount > 0) {
      const prev = closes[this.closeCount - 1]!;
      for (let i = 0; i < LOOKBACK - 1; i++) returns[i] = returns[i + 1]!;
      returns[LOOKBACK - 1] = (c - prev) / prev;
    }
    if (this.closeCount < LOOKBACK + 1) closes[this.closeCount++] = c;
    else {
      for (let i = 0; i < LOOKBACK; i++) closes[i] = closes[i + 1]!;
      closes[LOOKBACK] = c;
    }
    if (this.closeCount < LOOKBACK + 1) return null;
    // 2. Features of this bar, from closes up to this bar.
    const x = this.x;
    featuresOf(closes, returns, x);
    for (let j = 0; j < NF; j++) this.pending[j] = x[j]!;
    this.hasPending = true;
    // 3. Refit on the past only (the sample of this bar has no label yet).
    this.sinceFit++;
    if (this.trainCount >= this.params.window && (this.model === null || this.sinceFit >= this.params.retrainEvery)) {
      const m = this.fit();
      if (m) {
        this.model = m;
        this.fits++;
      }
      this.sinceFit = 0;
    }
    if (!this.model) return null;
    const pUp = predictLogistic(this.model, x);
    if (pUp === 0.5) return null;
    const side = pUp > 0.5 ? 'buy' : 'sell';
    const confidence = side === 'buy' ? pUp : 1 - pUp;
    this.stance = this.held.set(side, confidence);
    if (side === this.last) return null;
    this.last = side;
    return new LogisticIntent(side, confidence, pUp, x[0]!, x[1]!, x[2]!);
  }

  private fit(): LogisticModel | null {
    const n = this.trainCount;
    const window = this.params.window;
    for (let i = 0; i < n; i++) {
      const row = (this.trainStart + i) % window;
      for (let j = 0; j < NF; j++) this.fitX[i * NF + j] = this.trainX[row * NF + j]!;
      this.fitY[i] = this.trainY[row]!;
    }
    return fitFlat(this.fitX, this.fitY, n, NF, this.params.c);
  }
}

/** A prediction's intent: the reason and indicator record are built when read (for a log line). */
class LogisticIntent implements SignalIntent {
  constructor(
    readonly side: Side,
    readonly confidence: number,
    private readonly pUp: number,
    private readonly ret: number,
    private readonly diff: number,
    private readonly vol: number,
  ) {}

  get reason(): string {
    return `logistic model: P(next close higher) = ${this.pUp.toFixed(3)}`;
  }

  get indicators(): Record<string, number> {
    return { p_up: this.pUp, ret: this.ret, diff: this.diff, vol: this.vol };
  }
}

/** The original's three features of the last close in `closes` (LOOKBACK + 1 closes, oldest first). */
export function features(closes: readonly number[]): number[] {
  const out = new Float64Array(NF);
  featuresInto(closes, out);
  return [out[0]!, out[1]!, out[2]!];
}

/**
 * featuresInto with the LOOKBACK returns ending at the last close already computed (`returns`, oldest first, each
 * (closes[i] − closes[i−1]) / closes[i−1]): the same operations in the same order, so the same bits.
 */
function featuresOf(closes: Float64Array, returns: Float64Array, out: Float64Array): void {
  const n = closes.length;
  const p = closes[n - 1]!;
  let ma = 0;
  for (let i = n - 1 - LOOKBACK; i < n - 1; i++) ma += closes[i]!;
  ma /= LOOKBACK;
  let sum = 0;
  for (let i = 0; i < LOOKBACK; i++) sum += returns[i]!;
  const m = sum / LOOKBACK;
  let dev = 0;
  for (let i = 0; i < LOOKBACK; i++) dev += (returns[i]! - m) ** 2;
  out[0] = returns[LOOKBACK - 1]!;
  out[1] = (p - ma) / ma;
  out[2] = Math.sqrt(dev / LOOKBACK);
}

/** features() into `out`, without allocating (the same operations in the same order: bit-identical). */
function featuresInto(closes: ArrayLike<number>, out: Float64Array): void {
  const n = closes.length;
  const p = closes[n - 1]!;
  const prev = closes[n - 2]!;
  const ret = (p - prev) / prev;
  let ma = 0;
  for (let i = n - 1 - LOOKBACK; i < n - 1; i++) ma += closes[i]!;
  ma /= LOOKBACK;
  // The LOOKBACK returns ending at the last close, summed and then squared-deviation-summed oldest first.
  let sum = 0;
  for (let i = n - LOOKBACK; i < n; i++) sum += (closes[i]! - closes[i - 1]!) / closes[i - 1]!;
  const m = sum / LOOKBACK;
  let dev = 0;
  for (let i = n - LOOKBACK; i < n; i++) dev += ((closes[i]! - closes[i - 1]!) / closes[i - 1]! - m) ** 2;
  out[0] = ret;
  out[1] = (p - ma) / ma;
  out[2] = Math.sqrt(dev / LOOKBACK);
}
