import type { OhlcvBar } from '../../contracts/bar';
import type { SignalIntent, Stance, Strategy } from './types';

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

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** Solve A·x = b (n×n, row-major) by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[piv]![col]!)) piv = r;
    [m[col], m[piv]] = [m[piv]!, m[col]!];
    const d = m[col]![col]!;
    for (let r = col + 1; r < n; r++) {
      const f = m[r]![col]! / d;
      for (let k = col; k <= n; k++) m[r]![k]! -= f * m[col]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= m[r]![k]! * x[k]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}

/**
 * Fit L2-regularised logistic regression (objective Σ logloss + ‖w‖²/(2C), intercept unpenalised) on raw features
 * `xs` (standardised here) and labels `ys` (0/1). Returns null for a single-class sample.
 */
export function fitLogistic(xs: readonly number[][], ys: readonly number[], c = 1): LogisticModel | null {
  const n = ys.length;
  const pos = ys.reduce((a, y) => a + y, 0);
  if (n === 0 || pos === 0 || pos === n) return null;
  const d = xs[0]!.length;
  const mean = new Array<number>(d).fill(0);
  const scale = new Array<number>(d).fill(0);
  for (const x of xs) for (let j = 0; j < d; j++) mean[j]! += x[j]! / n;
  for (const x of xs) for (let j = 0; j < d; j++) scale[j]! += (x[j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) scale[j] = Math.sqrt(scale[j]!) || 1;
  const z = xs.map((x) => [1, ...x.map((v, j) => (v - mean[j]!) / scale[j]!)]);
  const p = d + 1;
  const lambda = 1 / c;
  const w = new Array<number>(p).fill(0);
  for (let iter = 0; iter < 50; iter++) {
    const g = new Array<number>(p).fill(0);
    const h = Array.from({ length: p }, () => new Array<number>(p).fill(0));
    for (let i = 0; i < n; i++) {
      const zi = z[i]!;
      let dot = 0;
      for (let j = 0; j < p; j++) dot += w[j]! * zi[j]!;
      const pi = sigmoid(dot);
      const r = ys[i]! - pi;
      const wt = pi * (1 - pi);
      for (let j = 0; j < p; j++) {
        g[j]! += r * zi[j]!;
        for (let k = 0; k < p; k++) h[j]![k]! += wt * zi[j]! * zi[k]!;
      }
    }
    for (let j = 1; j < p; j++) {
      g[j]! -= lambda * w[j]!;
      h[j]![j]! += lambda;
    }
    const step = solve(h, g);
    let maxStep = 0;
    for (let j = 0; j < p; j++) {
      w[j]! += step[j]!;
      maxStep = Math.max(maxStep, Math.abs(step[j]!));
    }
    if (maxStep < 1e-10) break; // Newton converges quadratically: the next step would be ~1e-20
  }
  return { weights: w, mean, scale };
}

export function predictLogistic(m: LogisticModel, x: readonly number[]): number {
  let dot = m.weights[0]!;
  for (let j = 0; j < x.length; j++) dot += m.weights[j + 1]! * ((x[j]! - m.mean[j]!) / m.scale[j]!);
  return sigmoid(dot);
}

export class LogisticStrategy implements Strategy {
  readonly name = ML;
  readonly params: LogisticParams;
  /** The last LOOKBACK + 1 closes, oldest first. */
  private readonly closes: number[] = [];
  /** Labelled training samples, oldest first (at most `window`). */
  private readonly trainX: number[][] = [];
  private readonly trainY: number[] = [];
  /** Features of the previous bar, waiting for this bar's close to label them. */
  private pending: number[] | undefined;
  private sinceFit = 0;
  private model: LogisticModel | null = null;
  private last: 'buy' | 'sell' | undefined;
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
  }

  get currentModel(): LogisticModel | null {
    return this.model;
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    const c = bar.close;
    const prevClose = this.closes[this.closes.length - 1];
    // 1. This close labels the previous bar's features: that sample may now be learned from.
    if (this.pending && prevClose !== undefined) {
      this.trainX.push(this.pending);
      this.trainY.push(c > prevClose ? 1 : 0);
      if (this.trainY.length > this.params.window) {
        this.trainX.shift();
        this.trainY.shift();
      }
      this.pending = undefined;
    }
    this.closes.push(c);
    if (this.closes.length > LOOKBACK + 1) this.closes.shift();
    if (this.closes.length < LOOKBACK + 1) return null;
    // 2. Features of this bar, from closes up to this bar.
    const x = features(this.closes);
    this.pending = x;
    // 3. Refit on the past only (the sample of this bar has no label yet).
    this.sinceFit++;
    if (
      this.trainY.length >= this.params.window &&
      (this.model === null || this.sinceFit >= this.params.retrainEvery)
    ) {
      const m = fitLogistic(this.trainX, this.trainY, this.params.c);
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
    this.stance = { side, confidence };
    if (side === this.last) return null;
    this.last = side;
    return {
      side,
      confidence,
      reason: `logistic model: P(next close higher) = ${pUp.toFixed(3)}`,
      indicators: { p_up: pUp, ret: x[0]!, diff: x[1]!, vol: x[2]! },
    };
  }
}

/** The original's three features of the last close in `closes` (LOOKBACK + 1 closes, oldest first). */
export function features(closes: readonly number[]): number[] {
  const n = closes.length;
  const p = closes[n - 1]!;
  const prev = closes[n - 2]!;
  const ret = (p - prev) / prev;
  let ma = 0;
  for (let i = n - 1 - LOOKBACK; i < n - 1; i++) ma += closes[i]!;
  ma /= LOOKBACK;
  const rets: number[] = [];
  for (let i = n - LOOKBACK; i < n; i++) rets.push((closes[i]! - closes[i - 1]!) / closes[i - 1]!);
  const m = rets.reduce((a, b) => a + b, 0) / rets.length;
  const vol = Math.sqrt(rets.reduce((a, r) => a + (r - m) ** 2, 0) / rets.length);
  const out = [ret, (p - ma) / ma, vol];
  if (out.length !== NF) throw new Error('feature count');
  return out;
}
