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

export interface Strategy {
  /** Stable name; part of the signal id and the routing key (`signal.<name>.<symbol>`). */
  readonly name: string;
  onBar(bar: OhlcvBar): SignalIntent | null;
}

/** Makes a fresh, independent instance (one per symbol/interval). */
export type StrategyFactory = () => Strategy;
