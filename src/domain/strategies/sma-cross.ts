import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';
import { StreamingSma } from '../indicators/sma';
import type { SignalIntent, Strategy } from './types';

/**
 * `sma-cross`: a fast/slow simple-moving-average crossover on closes (default 2/5, the original system's legacy
 * MA_SHORT/MA_LONG).
 *
 * Differences from the legacy SymbolStrategy, on purpose:
 *  - it emits on a crossing EVENT only: BUY when fast − slow changes sign from negative to positive, SELL on the
 *    reverse. The legacy code compared the current state (fast > slow → BUY) and so fired BUY on the 5th bar of
 *    any rising series with no cross at all. Here the first bar on which both averages exist only records the
 *    side the fast average is on.
 *  - a touch (fast == slow, within a relative 1e-9) is not a cross and does not reset the side: fast going
 *    below → equal → below emits nothing; below → equal → above emits one BUY (on the bar where it is above).
 *  - it never repeats the previous signal (guaranteed by the sign logic; also checked explicitly).
 *  - confidence is bounded and derived from the separation of the averages on the crossing bar:
 *        confidence = min(1, base + k · |fast − slow| / slow)        (defaults base 0.75, k 10)
 *    so a bare cross scores 0.75 (the default CONFIDENCE_THRESH, i.e. it passes risk like the legacy 1.0 did)
 *    and a decisive one (spread ≥ 2.5 % of the slow average) scores 1.0.
 */

export const SMA_CROSS = 'sma-cross';

export interface SmaCrossParams {
  fast: number;
  slow: number;
  /** Confidence of a crossing with zero separation. */
  baseConfidence: number;
  /** Confidence gained per unit of relative separation |fast − slow| / slow. */
  separationWeight: number;
}

export const DEFAULT_SMA_CROSS: SmaCrossParams = { fast: 2, slow: 5, baseConfidence: 0.75, separationWeight: 10 };

/** Relative tolerance under which fast and slow count as equal (guards float noise on flat prices). */
const EQUAL_EPS = 1e-9;

export function smaCrossConfidence(
  fast: number,
  slow: number,
  p: Pick<SmaCrossParams, 'baseConfidence' | 'separationWeight'>,
): number {
  const c = p.baseConfidence + (p.separationWeight * Math.abs(fast - slow)) / slow;
  return Math.min(1, Math.max(0, c));
}

export class SmaCrossStrategy implements Strategy {
  readonly name = SMA_CROSS;
  readonly params: SmaCrossParams;
  private readonly fast: StreamingSma;
  private readonly slow: StreamingSma;
  /** Side of fast relative to slow at the last bar where they differed: -1 below, +1 above, 0 unknown. */
  private lastSide: -1 | 0 | 1 = 0;
  private lastSignal: Side | undefined;

  constructor(params: Partial<SmaCrossParams> = {}) {
    const p = { ...DEFAULT_SMA_CROSS, ...params };
    if (!Number.isInteger(p.fast) || !Number.isInteger(p.slow) || p.fast < 1 || p.slow <= p.fast) {
      throw new RangeError(`sma-cross needs integers 1 <= fast < slow, got fast=${p.fast} slow=${p.slow}`);
    }
    if (!(p.baseConfidence >= 0 && p.baseConfidence <= 1) || !(p.separationWeight >= 0)) {
      throw new RangeError('sma-cross: baseConfidence must be in [0,1] and separationWeight >= 0');
    }
    this.params = p;
    this.fast = new StreamingSma(p.fast);
    this.slow = new StreamingSma(p.slow);
  }

  onBar(bar: OhlcvBar): SignalIntent | null {
    const fast = this.fast.update(bar.close);
    const slow = this.slow.update(bar.close);
    if (fast === undefined || slow === undefined) return null;
    const diff = fast - slow;
    const side: -1 | 0 | 1 = Math.abs(diff) <= EQUAL_EPS * Math.abs(slow) ? 0 : diff > 0 ? 1 : -1;
    if (side === 0) return null; // a touch: neither a cross nor a new reference side
    const previous = this.lastSide;
    this.lastSide = side;
    if (previous === 0 || previous === side) return null; // first reading, or no change of side
    const signal: Side = side > 0 ? 'buy' : 'sell';
    if (signal === this.lastSignal) return null;
    this.lastSignal = signal;
    return {
      side: signal,
      confidence: smaCrossConfidence(fast, slow, this.params),
      reason: `SMA${this.params.fast} crossed ${side > 0 ? 'above' : 'below'} SMA${this.params.slow}`,
      indicators: { sma_fast: fast, sma_slow: slow },
    };
  }
}
