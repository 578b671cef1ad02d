import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';
import { Bollinger, Macd, Roc, Rsi, Sma } from '../indicators/streaming';
import { HeldStance, type SignalIntent, type Stance, type Strategy } from './types';

/**
 * MACD, Bollinger, RSI, momentum and mean-reversion (MRM) strategies: the original's rules (docs/quant.md), each
 * emitting only when its view changes and with a confidence bounded to [0, 1].
 *
 * Confidence = min(1, 0.75 + strength), where strength measures how decisively the rule fired (documented per
 * strategy). 0.75 is the default CONFIDENCE_THRESH: a bare trigger passes risk, as the original's 1.0 did, and a
 * stronger one scores higher. (The original MACD's |histogram|/|signal| was unbounded: 2.51 was observed.)
 */

export const MACD = 'macd';
export const BOLLINGER = 'bollinger';
export const RSI = 'rsi';
export const MOMENTUM = 'momentum';
export const MRM = 'mrm';

const BASE = 0.75;
const conf = (strength: number) => Math.min(1, Math.max(0, BASE + strength));
const posInt = (name: string, v: number, min = 1) => {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
};

/** Remembers the last emitted side so a strategy never repeats it. */
abstract class Latched implements Strategy {
  abstract readonly name: string;
  protected last: Side | undefined;
  protected readonly held = new HeldStance();
  stance: Stance | null = null;
  abstract onBar(bar: OhlcvBar): SignalIntent | null;

  /** Would emitting `side` now be a change? (Then `latch` it and build the intent.) */
  protected changes(side: Side): boolean {
    return side !== this.last;
  }

  protected latch(side: Side, confidence: number): void {
    this.last = side;
    this.stance = this.held.set(side, confidence);
  }
}

/**
 * An intent whose reason and indicator record are built when read (for a log line), from the numbers of the
 * decision: `a` and `b` are the strategy's own (documented where each strategy builds one).
 */
class OscillatorIntent implements SignalIntent {
  constructor(
    private readonly kind: 'macd' | 'bollinger' | 'rsi' | 'momentum' | 'mrm',
    readonly side: Side,
    readonly confidence: number,
    private readonly a: number,
    private readonly b: number,
    private readonly c: number,
    private readonly param: number,
  ) {}

  get reason(): string {
    const buy = this.side === 'buy';
    switch (this.kind) {
      case 'macd':
        return `MACD crossed ${buy ? 'above' : 'below'} its signal line`;
      case 'bollinger':
        return buy ? 'close below the lower band' : 'close above the upper band';
      case 'rsi':
        return `RSI ${this.a.toFixed(1)} ${buy ? 'oversold' : 'overbought'}`;
      case 'momentum':
        // a: ROC, b: threshold, param: period
        return `ROC${this.param} ${(this.a * 100).toFixed(2)}% ${buy ? '>' : '<'} ${buy ? '+' : '-'}${this.b * 100}%`;
      case 'mrm':
        return buy ? 'below the mean and turning up' : 'above the mean and turning down';
    }
  }

  get indicators(): Record<string, number> {
    switch (this.kind) {
      case 'macd':
        return { macd: this.a, macd_signal: this.b, macd_hist: this.c };
      case 'bollinger':
        return { bb_upper: this.a, bb_middle: this.b, bb_lower: this.c };
      case 'rsi':
        return { rsi: this.a };
      case 'momentum':
        return { roc: this.a };
      case 'mrm':
        return { ma: this.a, momentum: this.b };
    }
  }
}

export interface MacdParams {
  fast: number;
  slow: number;
  signal: number;
}
export const DEFAULT_MACD: MacdParams = { fast: 12, slow: 26, signal: 9 };

/**
 * `macd`: BUY when the MACD line crosses above its signal line (histogram turns positive), SELL on the reverse.
 * The first bar with a histogram only records its sign (the original fired on bar 34 whatever the trend: a state,
 * not a crossing); a zero histogram is a touch, not a cross. MACD is a true EMA difference (the original's "EMA"
 * was an SMA). Strength = 100·|histogram| / close (a histogram of 0.25 % of the price scores 1).
 */
export class MacdStrategy extends Latched {
  readonly name = MACD;
  private readonly macd: Macd;
  private sign: -1 | 0 | 1 = 0;

  constructor(readonly params: MacdParams = DEFAULT_MACD) {
    super();
    posInt('macd fast', params.fast);
    posInt('macd signal', params.signal);
    if (!(params.slow > params.fast)) throw new RangeError(`macd needs fast < slow, got ${params.fast}/${params.slow}`);
    this.macd = new Macd(params.fast, params.slow, params.signal);
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    // `advance` and the NaN-valued getters: no heap number per bar (../indicators/streaming.ts, `out`).
    this.macd.advance(bar.close);
    const h = this.macd.histogramOrNaN;
    // |h| within 1e-9 of the price is a touch (float noise of a converged MACD), not a crossing.
    if (h !== h || Math.abs(h) <= 1e-9 * bar.close) return null;
    const s = h > 0 ? 1 : -1;
    const previous = this.sign;
    this.sign = s;
    const c = conf((100 * Math.abs(h)) / bar.close);
    const side = s > 0 ? 'buy' : 'sell';
    this.stance = this.held.set(side, c);
    if (previous === 0 || previous === s || !this.changes(side)) return null;
    this.latch(side, c);
    return new OscillatorIntent('macd', side, c, this.macd.macdOrNaN, this.macd.signalOrNaN, h, 0);
  }
}

export interface BollingerParams {
  window: number;
  k: number;
}
export const DEFAULT_BOLLINGER: BollingerParams = { window: 20, k: 2 };

/**
 * `bollinger` (the original's rule): BUY when the close is strictly below the lower band, SELL when strictly above
 * the upper band, never the same side twice in a row. A close on the band is a touch, not a break. Bands are the
 * SMA ± k·σ of the last `window` closes including the current one, population σ. Strength = 0.25·(distance
 * beyond the band)/σ (a close one σ beyond the band scores 1). Stance: the last signal.
 */
export class BollingerStrategy extends Latched {
  readonly name = BOLLINGER;
  private readonly bb: Bollinger;

  constructor(readonly params: BollingerParams = DEFAULT_BOLLINGER) {
    super();
    posInt('bollinger window', params.window, 2);
    if (!(params.k > 0)) throw new RangeError(`bollinger k must be > 0, got ${params.k}`);
    this.bb = new Bollinger(params.window, params.k);
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    const bb = this.bb;
    const m = bb.advance(bar.close);
    if (m !== m) return null;
    const upper = bb.upperOrNaN;
    const lower = bb.lowerOrNaN;
    const middle = bb.middleOrNaN;
    const sigma = bb.sigmaOrNaN;
    const c = bar.close;
    let side: Side;
    let confidence: number;
    if (c < lower) {
      side = 'buy';
      confidence = conf((0.25 * (lower - c)) / sigma);
    } else if (c > upper) {
      side = 'sell';
      confidence = conf((0.25 * (c - upper)) / sigma);
    } else return null;
    if (!this.changes(side)) return null;
    this.latch(side, confidence);
    return new OscillatorIntent('bollinger', side, confidence, upper, middle, lower, 0);
  }
}

export interface RsiParams {
  period: number;
  /** BUY below this (oversold). */
  buy: number;
  /** SELL above this (overbought). */
  sell: number;
}
export const DEFAULT_RSI: RsiParams = { period: 14, buy: 30, sell: 70 };

export function validateRsiZones(name: string, buy: number, sell: number): void {
  if (!(buy > 0 && buy < sell && sell < 100)) {
    throw new RangeError(`${name} thresholds need 0 < buy < sell < 100, got ${buy}/${sell}`);
  }
}

/**
 * `rsi`: BUY when Wilder's RSI enters the oversold zone (< buy), SELL when it enters the overbought zone (> sell).
 * The original emitted on every tick while in a zone and used a simple average (not Wilder); here a zone emits
 * once, and a second oversold spell after a BUY emits nothing until a SELL. Strength = depth into the zone:
 * 0.25·(buy − rsi)/buy or 0.25·(rsi − sell)/(100 − sell) (RSI 15 with buy 30 scores 0.875),
 * so the extreme (0 or 100) scores 1. Stance: the current zone (none between the thresholds).
 */
export class RsiStrategy extends Latched {
  readonly name = RSI;
  private readonly rsi: Rsi;

  constructor(readonly params: RsiParams = DEFAULT_RSI) {
    super();
    posInt('rsi period', params.period);
    validateRsiZones('rsi', params.buy, params.sell);
    this.rsi = new Rsi(params.period);
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    const r = this.rsi.advance(bar.close);
    if (r !== r) return null;
    const { buy, sell } = this.params;
    let z: Stance;
    if (r < buy) {
      z = this.held.set('buy', conf((0.25 * (buy - r)) / buy));
    } else if (r > sell) {
      z = this.held.set('sell', conf((0.25 * (r - sell)) / (100 - sell)));
    } else {
      this.stance = null;
      return null;
    }
    this.stance = z;
    if (!this.changes(z.side)) return null;
    this.latch(z.side, z.confidence);
    return new OscillatorIntent('rsi', z.side, z.confidence, r, 0, 0, 0);
  }
}

export interface MomentumParams {
  period: number;
  /** ROC beyond ±threshold (a fraction) triggers. */
  threshold: number;
}
export const DEFAULT_MOMENTUM: MomentumParams = { period: 10, threshold: 0.02 };

/**
 * `momentum`: rate of change over `period` bars. BUY when ROC rises above +threshold, SELL when it falls below
 * −threshold; in between is neutral and emits nothing. Strength = 5·(|ROC| − threshold) (5 % beyond the threshold
 * scores 1). Stance: the last signal.
 */
export class MomentumStrategy extends Latched {
  readonly name = MOMENTUM;
  private readonly roc: Roc;

  constructor(readonly params: MomentumParams = DEFAULT_MOMENTUM) {
    super();
    posInt('momentum period', params.period);
    if (!(params.threshold >= 0 && params.threshold < 1)) {
      throw new RangeError(`momentum threshold must be in [0, 1), got ${params.threshold}`);
    }
    this.roc = new Roc(params.period);
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    const r = this.roc.advance(bar.close);
    if (r !== r) return null;
    const t = this.params.threshold;
    let side: Side;
    let confidence: number;
    if (r > t) {
      side = 'buy';
      confidence = conf(5 * (r - t));
    } else if (r < -t) {
      side = 'sell';
      confidence = conf(5 * (-r - t));
    } else return null;
    if (!this.changes(side)) return null;
    this.latch(side, confidence);
    return new OscillatorIntent('momentum', side, confidence, r, t, 0, this.params.period);
  }
}

export interface MrmParams {
  window: number;
  /** Band around the mean, a fraction. */
  threshold: number;
}
export const DEFAULT_MRM: MrmParams = { window: 10, threshold: 0.01 };
/** The original's MRM confidence (bounded already). */
export const MRM_CONFIDENCE = 0.9;

/**
 * `mrm`, the original's MeanReversionMomentumStrategy (lost at its HEAD, restored from HEAD~1): with `ma` the SMA of
 * the last `window` closes (including the current one) and momentum = close − previous close,
 * BUY when close < ma·(1 − threshold) and momentum > 0 (stretched below the mean and turning up),
 * SELL when close > ma·(1 + threshold) and momentum < 0. Emits on change only; confidence 0.9 as in the original.
 */
export class MeanReversionStrategy extends Latched {
  readonly name = MRM;
  private readonly ma: Sma;
  /** NaN before the first close (a double field: no heap number per bar). */
  private prev = Number.NaN;

  constructor(readonly params: MrmParams = DEFAULT_MRM) {
    super();
    posInt('mrm window', params.window, 2);
    if (!(params.threshold >= 0 && params.threshold < 1)) {
      throw new RangeError(`mrm threshold must be in [0, 1), got ${params.threshold}`);
    }
    this.ma = new Sma(params.window);
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    const c = bar.close;
    const ma = this.ma.advance(c);
    const prev = this.prev;
    this.prev = c;
    if (ma !== ma || prev !== prev) return null;
    const momentum = c - prev;
    const t = this.params.threshold;
    let side: Side;
    if (c < ma * (1 - t) && momentum > 0) side = 'buy';
    else if (c > ma * (1 + t) && momentum < 0) side = 'sell';
    else return null;
    if (!this.changes(side)) return null;
    this.latch(side, MRM_CONFIDENCE);
    return new OscillatorIntent('mrm', side, MRM_CONFIDENCE, ma, momentum, 0, 0);
  }
}
