import type { Bar } from '../../contracts/bar';
import type { TradeSignal } from '../../contracts/signal';
import { toTradeSignal } from './signal';
import type { Strategy, StrategyFactory } from './types';

/**
 * The quant's decision core, pure (no I/O): per-(symbol, interval) strategy state, plus the bookkeeping that
 * makes at-least-once delivery safe.
 *
 * RabbitMQ may deliver a bar twice (a redelivery after a lost ack, a requeue after a failed signal publish, a
 * replayed file). Feeding the same bar to a strategy twice would corrupt its state (an SMA would count the
 * close twice), so a bar at or before the last processed timestamp of its series is never fed again. Instead:
 *  - if its outcome is still remembered, the remembered signal (or "no signal") is returned as `duplicate`, and
 *    the worker re-publishes that exact signal (same signal_id, so the intake's workflow-id dedupe makes it a
 *    no-op if the first publish did land). This is what lets the worker ack a bar only after its signal is
 *    confirmed without ever double-counting a bar;
 *  - otherwise it is `stale` (older than the remembered window): skipped.
 * Partial (in-progress) bars are skipped: the strategy works on completed bars only.
 */

export type EngineOutcome =
  | { kind: 'signal'; signal: TradeSignal; reason: string; indicators: Record<string, number> }
  | { kind: 'none' }
  | { kind: 'duplicate'; signal: TradeSignal | null }
  | { kind: 'stale' }
  | { kind: 'partial' }
  | { kind: 'invalid'; reason: string };

export interface SignalEngineOptions {
  /** How many bar outcomes to remember for redeliveries (across all series). Default 10 000. */
  outcomeCacheSize?: number;
  /** Scope of the signal ids (the account the signals trade for; see signalIdFor). Default: unscoped. */
  signalScope?: string;
}

interface Series {
  strategy: Strategy;
  lastMs: number;
}

export class SignalEngine {
  readonly strategyName: string;
  private readonly series = new Map<string, Series>();
  private readonly outcomes = new Map<string, TradeSignal | null>();
  private readonly cacheSize: number;
  private readonly signalScope: string | undefined;

  constructor(
    private readonly factory: StrategyFactory,
    opts: SignalEngineOptions = {},
  ) {
    this.strategyName = factory().name;
    this.cacheSize = opts.outcomeCacheSize ?? 10_000;
    this.signalScope = opts.signalScope;
  }

  /** Number of (symbol, interval) series seen. */
  get seriesCount(): number {
    return this.series.size;
  }

  /** Process one validated bar. Synchronous: call in delivery order. */
  process(bar: Bar): EngineOutcome {
    if (bar.is_partial) return { kind: 'partial' };
    const ms = Date.parse(bar.timestamp);
    if (Number.isNaN(ms)) return { kind: 'invalid', reason: `bar timestamp "${bar.timestamp}" is not ISO-8601` };
    const seriesKey = `${bar.symbol}|${bar.interval}`;
    const outcomeKey = `${seriesKey}|${ms}`;
    let s = this.series.get(seriesKey);
    if (s && ms <= s.lastMs) {
      return this.outcomes.has(outcomeKey)
        ? { kind: 'duplicate', signal: this.outcomes.get(outcomeKey) ?? null }
        : { kind: 'stale' };
    }
    if (!s) {
      s = { strategy: this.factory(), lastMs: Number.NEGATIVE_INFINITY };
      this.series.set(seriesKey, s);
    }
    s.lastMs = ms;
    const intent = s.strategy.onBar(bar);
    if (!intent) {
      this.remember(outcomeKey, null);
      return { kind: 'none' };
    }
    const r = toTradeSignal(this.strategyName, bar, intent, this.signalScope);
    if (!r.ok) {
      this.remember(outcomeKey, null);
      return { kind: 'invalid', reason: r.reason };
    }
    this.remember(outcomeKey, r.value);
    return { kind: 'signal', signal: r.value, reason: intent.reason, indicators: intent.indicators };
  }

  private remember(key: string, outcome: TradeSignal | null): void {
    this.outcomes.set(key, outcome);
    if (this.outcomes.size > this.cacheSize) {
      const oldest = this.outcomes.keys().next().value;
      if (oldest !== undefined) this.outcomes.delete(oldest);
    }
  }
}
