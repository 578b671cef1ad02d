import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';

/**
 * The pure strategy interface shared by the live quant worker and backtests: feed bars of ONE symbol (and one
 * interval) oldest first; get at most one intent per bar. No I/O, no clock, no randomness: the same bars give the
 * same intents, which is what makes signal ids reproducible on replay.
 */
export interface SignalIntent {
  readonly side: Side;
  /** In [0, 1]. */
  readonly confidence: number;
  /**
   * Human-readable why, for logs. Strategies may build it (and `indicators`) when read, as getters: only a logged
   * signal needs them, and formatting numbers for every signal was a large part of a signal's cost. So read the
   * fields by name; spreading an intent (`{ ...intent }`) copies own properties only.
   */
  readonly reason: string;
  /** Indicator values at the decision, for logs and tests. */
  readonly indicators: Record<string, number>;
}

/** A stance that a strategy updates in place (see Strategy.stance). */
export class HeldStance implements Stance {
  side: Side = 'buy';
  confidence = 0;
  set(side: Side, confidence: number): HeldStance {
    this.side = side;
    this.confidence = confidence;
    return this;
  }
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
  /**
   * The current stance after the last bar, or null when it has none (warming up, neutral). The object is the
   * strategy's own and is updated in place by the next bar (a fresh object per bar per strategy was a good share
   * of the quant's garbage): copy it to keep it.
   */
  readonly stance: Stance | null;
}

/** Makes a fresh, independent instance (one per symbol/interval). */
export type StrategyFactory = () => Strategy;

/**
 * The strategies of one series, side by side, as a SignalEngineSet runs them: `nextBar()` is called once before
 * each new bar is fed to every strategy (strategies shared between two slots, e.g. an ensemble member that also
 * runs on its own, use it to take each bar once).
 */
export interface StrategySeries {
  readonly strategies: readonly Strategy[];
  nextBar(): void;
}

/** Makes the strategies of a fresh series. */
export type StrategySetFactory = () => StrategySeries;

const NO_CLOCK = (): void => {};

/** A set of one strategy. */
export function singleStrategy(factory: StrategyFactory): StrategySetFactory {
  return () => ({ strategies: [factory()], nextBar: NO_CLOCK });
}
