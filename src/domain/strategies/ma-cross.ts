import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';
import { Ema, Rsi, Sma } from '../indicators/streaming';
import { HeldStance, type SignalIntent, type Stance, type Strategy } from './types';

/**
 * `sma-cross` / `ema-cross`: a fast/slow moving-average crossover on closes (default 2/5, the original system's
 * legacy MA_SHORT/MA_LONG), with the original's optional RSI confirmation actually applied.
 *
 * Differences from the legacy SymbolStrategy, on purpose:
 *  - it reacts to a crossing EVENT: the fast average changing sides of the slow one. The legacy code compared the
 *    current state (fast > slow → BUY) and so fired BUY on the 5th bar of any rising series with no cross at all.
 *    The first bar on which both averages exist only records the side the fast average is on.
 *  - a touch (fast == slow, within a relative 1e-9) is not a cross and does not reset the side: fast going
 *    below → equal → below emits nothing; below → equal → above emits one BUY (on the bar where it is above).
 *  - it never repeats the previous signal.
 *  - RSI confirmation (USE_RSI_CONFIRMATION; the live legacy code stored the thresholds and ignored them, the
 *    backtester's copy applied them): a BUY needs RSI < rsiBuy and a SELL needs RSI > rsiSell, and no RSI (warm-up)
 *    confirms nothing. An unconfirmed crossing is not forgotten: it stays pending while the fast average stays on
 *    its new side, and the signal is emitted on the first bar on which RSI confirms it (the legacy backtester's
 *    state rule had the same effect). If the averages cross back first, the pending signal is dropped.
 *  - confidence is bounded and derived from the separation of the averages on the emitting bar:
 *        confidence = min(1, base + k · |fast − slow| / slow)        (defaults base 0.75, k 10)
 *    so a bare cross scores 0.75 (the default CONFIDENCE_THRESH: it passes risk like the legacy 1.0 did) and a
 *    decisive one (spread ≥ 2.5 % of the slow average) scores 1.0.
 */

export const SMA_CROSS = 'sma-cross';
export const EMA_CROSS = 'ema-cross';

export interface MaCrossParams {
  fast: number;
  slow: number;
  /** Confidence of a crossing with zero separation. */
  baseConfidence: number;
  /** Confidence gained per unit of relative separation |fast − slow| / slow. */
  separationWeight: number;
  useRsi: boolean;
  rsiPeriod: number;
  /** A BUY needs RSI below this. */
  rsiBuy: number;
  /** A SELL needs RSI above this. */
  rsiSell: number;
}
/** Kept for existing callers: the SMA flavour's parameters. */
export type SmaCrossParams = MaCrossParams;

export const DEFAULT_MA_CROSS: MaCrossParams = {
  fast: 2,
  slow: 5,
  baseConfidence: 0.75,
  separationWeight: 10,
  useRsi: false,
  rsiPeriod: 14,
  rsiBuy: 30,
  rsiSell: 70,
};
export const DEFAULT_SMA_CROSS = DEFAULT_MA_CROSS;

/** Relative tolerance under which fast and slow count as equal (guards float noise on flat prices). */
const EQUAL_EPS = 1e-9;

export function smaCrossConfidence(
  fast: number,
  slow: number,
  p: Pick<MaCrossParams, 'baseConfidence' | 'separationWeight'>,
): number {
  const c = p.baseConfidence + (p.separationWeight * Math.abs(fast - slow)) / slow;
  return Math.min(1, Math.max(0, c));
}

export function validateMaCross(name: string, p: MaCrossParams): void {
  if (!Number.isInteger(p.fast) || !Number.isInteger(p.slow) || p.fast < 1 || p.slow <= p.fast) {
    throw new RangeError(`${name} needs integers 1 <= fast < slow, got fast=${p.fast} slow=${p.slow}`);
  }
  if (!(p.baseConfidence >= 0 && p.baseConfidence <= 1) || !(p.separationWeight >= 0)) {
    throw new RangeError(`${name}: baseConfidence must be in [0,1] and separationWeight >= 0`);
  }
  if (!Number.isInteger(p.rsiPeriod) || p.rsiPeriod < 1) throw new RangeError(`${name}: rsiPeriod must be >= 1`);
  if (!(p.rsiBuy > 0 && p.rsiBuy < p.rsiSell && p.rsiSell < 100)) {
    throw new RangeError(`${name}: RSI thresholds need 0 < rsiBuy < rsiSell < 100, got ${p.rsiBuy}/${p.rsiSell}`);
  }
}

export class MaCrossStrategy implements Strategy {
  readonly name: string;
  readonly params: MaCrossParams;
  private readonly fast: Sma | Ema;
  private readonly slow: Sma | Ema;
  private readonly rsi: Rsi | undefined;
  /** Side of fast relative to slow at the last bar where they differed: -1 below, +1 above, 0 unknown. */
  private lastSide: -1 | 0 | 1 = 0;
  /** The side of the last real crossing (not the first reading): what the strategy wants. */
  private wanted: Side | undefined;
  private lastSignal: Side | undefined;
  private readonly held = new HeldStance();
  stance: Stance | null = null;

  constructor(
    readonly average: 'sma' | 'ema',
    params: Partial<MaCrossParams> = {},
  ) {
    this.name = average === 'sma' ? SMA_CROSS : EMA_CROSS;
    const p = { ...DEFAULT_MA_CROSS, ...params };
    validateMaCross(this.name, p);
    this.params = p;
    this.fast = average === 'sma' ? new Sma(p.fast) : new Ema(p.fast);
    this.slow = average === 'sma' ? new Sma(p.slow) : new Ema(p.slow);
    this.rsi = p.useRsi ? new Rsi(p.rsiPeriod) : undefined;
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    // `advance`: NaN until defined, no heap number per bar (../indicators/streaming.ts, `out`).
    const fast = this.fast.advance(bar.close);
    const slow = this.slow.advance(bar.close);
    const rsi = this.rsi === undefined ? Number.NaN : this.rsi.advance(bar.close);
    if (fast !== fast || slow !== slow) return null;
    const diff = fast - slow;
    const side: -1 | 0 | 1 = Math.abs(diff) <= EQUAL_EPS * Math.abs(slow) ? 0 : diff > 0 ? 1 : -1;
    if (side !== 0) {
      const previous = this.lastSide;
      this.lastSide = side;
      if (previous !== 0 && previous !== side) this.wanted = side > 0 ? 'buy' : 'sell';
    }
    // smaCrossConfidence's arithmetic, written out: the call was not inlined here, and a double returned from a
    // call is boxed (a heap number per bar).
    const p = this.params;
    const confidence = Math.min(1, Math.max(0, p.baseConfidence + (p.separationWeight * Math.abs(fast - slow)) / slow));
    if (this.lastSide !== 0) this.stance = this.held.set(this.lastSide > 0 ? 'buy' : 'sell', confidence);
    const want = this.wanted;
    if (want === undefined || want === this.lastSignal) return null;
    if (this.rsi) {
      if (rsi !== rsi) return null;
      if (want === 'buy' ? !(rsi < this.params.rsiBuy) : !(rsi > this.params.rsiSell)) return null; // pending
    }
    this.lastSignal = want;
    return new MaCrossIntent(this.average, this.params, want, confidence, fast, slow, rsi);
  }
}

/** A crossing's intent: its reason and indicator record are built only when read (for a log line). */
class MaCrossIntent implements SignalIntent {
  constructor(
    private readonly average: 'sma' | 'ema',
    private readonly params: MaCrossParams,
    readonly side: Side,
    readonly confidence: number,
    private readonly fast: number,
    private readonly slow: number,
    /** NaN without RSI confirmation. */
    private readonly rsi: number,
  ) {}

  get reason(): string {
    const label = this.average.toUpperCase();
    const rsi = this.rsi === this.rsi ? ` (RSI ${this.rsi.toFixed(1)} confirms)` : '';
    return `${label}${this.params.fast} ${this.side === 'buy' ? 'above' : 'below'} ${label}${this.params.slow}${rsi}`;
  }

  get indicators(): Record<string, number> {
    const indicators: Record<string, number> =
      this.average === 'sma'
        ? { sma_fast: this.fast, sma_slow: this.slow }
        : { ema_fast: this.fast, ema_slow: this.slow };
    if (this.rsi === this.rsi) indicators.rsi = this.rsi;
    return indicators;
  }
}

/** The SMA flavour (`sma-cross`), the original's legacy strategy. */
export class SmaCrossStrategy extends MaCrossStrategy {
  constructor(params: Partial<MaCrossParams> = {}) {
    super('sma', params);
  }
}
