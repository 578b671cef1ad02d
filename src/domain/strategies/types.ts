import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';

/**
 * The pure strategy interface shared by the live quant worker and backtests: feed bars of ONE symbol (and one
 * interval) oldest first; get at most one intent per bar. No I/O, no clock, no randomness: the same bars give the
 * same intents, which is what makes signal ids reproducible on replay.
 */
export interface SignalIntent {
  side: Side;
  /** In [0, 1]. */
  confidence: number;
  /** Human-readable why, for logs. */
  reason: string;
  /** Indicator values at the decision, for logs and tests. */
  indicators: Record<string, number>;
}

/** What a strategy currently favours (not a signal): the ensemble votes on these. */
export interface Stance {
  side: Side;
  /** In [0, 1]. */
  confidence: number;
}

export interface Strategy {
  /** Stable name; part of the signal id and the routing key (`signal.<name>.<symbol>`). */
  readonly name: string;
  /**
   * Feed the next completed bar. Returns an intent only when the strategy's view changes (never on every bar):
   * BUY or SELL, never the same side twice in a row.
   */
  onBar(bar: OhlcvBar): SignalIntent | null;
  /** The current stance after the last bar, or null when it has none (warming up, neutral). */
  readonly stance: Stance | null;
}

/** Makes a fresh, independent instance (one per symbol/interval). */
export type StrategyFactory = () => Strategy;
