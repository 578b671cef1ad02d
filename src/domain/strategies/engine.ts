import type { Bar } from '../../contracts/bar';
import type { TradeSignal } from '../../contracts/signal';
import { barTimeMs, toTradeSignal } from './signal';
import type { SignalIntent, Strategy, StrategyFactory } from './types';

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
  | { kind: 'signal'; signal: TradeSignal; readonly reason: string; readonly indicators: Record<string, number> }
  | { kind: 'none' }
  | { kind: 'duplicate'; signal: TradeSignal | null }
  | { kind: 'stale' }
  | { kind: 'partial' }
  | { kind: 'invalid'; reason: string };

export interface SignalEngineOptions {
  /** How many bar outcomes to remember for redeliveries, per (symbol, interval) series. Default 10 000. */
  outcomeCacheSize?: number;
  /** Scope of the signal ids (the account the signals trade for; see signalIdFor). Default: unscoped. */
  signalScope?: string;
}

/**
 * The last `cap` outcomes of one series, as a ring ordered by bar time (bars of a series are processed in
 * increasing time): remembering is O(1), finding a redelivered bar's outcome a binary search. (A Map keyed by
 * strings across all series cost ~3 µs a bar in hashing and rehashing: most of the budget.)
 *
 * An outcome is kept as the few numbers and strings its signal is made of (side, confidence, the bar's close,
 * timestamp and correlation id), not as the signal object: `toTradeSignal` is a pure function of them, so a
 * redelivery gets the identical signal (same id) back, rebuilt. Keeping ten thousand signal objects per series
 * and strategy alive (each with its id and timestamp strings) made most of them survive into the old generation:
 * copying them was the largest part of the quant's garbage-collection time.
 */
class OutcomeRing {
  private readonly times: Float64Array;
  /** 0: no signal; 1: buy; 2: sell. */
  private readonly sides: Uint8Array;
  private readonly confidences: Float64Array;
  private readonly closes: Float64Array;
  /** The bar's own strings (its timestamp as written, which the signal id hashes; its correlation id). */
  private readonly timestamps: string[];
  private readonly correlationIds: string[];
  private head = 0; // next write
  private size = 0;

  constructor(private readonly cap: number) {
    this.times = new Float64Array(cap);
    this.sides = new Uint8Array(cap);
    this.confidences = new Float64Array(cap);
    this.closes = new Float64Array(cap);
    this.timestamps = new Array<string>(cap).fill('');
    this.correlationIds = new Array<string>(cap).fill('');
  }

  push(ms: number, bar: Bar, intent: SignalIntent | null): void {
    const i = this.head;
    this.times[i] = ms;
    if (intent === null) {
      this.sides[i] = 0;
      this.timestamps[i] = '';
      this.correlationIds[i] = '';
    } else {
      this.sides[i] = intent.side === 'buy' ? 1 : 2;
      this.confidences[i] = intent.confidence;
      this.closes[i] = bar.close;
      this.timestamps[i] = bar.timestamp;
      this.correlationIds[i] = bar.correlation_id;
    }
    if (++this.head === this.cap) this.head = 0;
    if (this.size < this.cap) this.size++;
  }

  /**
   * The remembered outcome of the bar at `ms`: its slot (>= 0), -1 when it is not (or no longer) remembered.
   */
  find(ms: number): number {
    let lo = 0;
    let hi = this.size - 1;
    const base = (this.head - this.size + this.cap) % this.cap;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const i = (base + mid) % this.cap;
      const t = this.times[i]!;
      if (t === ms) return i;
      if (t < ms) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The signal remembered in slot `i` (null: the bar gave none), rebuilt exactly as it was first made. */
  signalAt(i: number, strategy: string, symbol: string, scope: string | undefined): TradeSignal | null {
    const side = this.sides[i]!;
    if (side === 0) return null;
    const r = toTradeSignal(
      strategy,
      { symbol, timestamp: this.timestamps[i]!, close: this.closes[i]!, correlation_id: this.correlationIds[i]! },
      { side: side === 1 ? 'buy' : 'sell', confidence: this.confidences[i]! },
      scope,
    );
    // It was valid when first made, from these very values (an invalid outcome is remembered as no signal).
    return r.ok ? r.value : null;
  }
}

/** A signal outcome; the strategy's reason and indicator record are read through, when a log line needs them. */
class SignalOutcome {
  readonly kind = 'signal';
  constructor(
    readonly signal: TradeSignal,
    private readonly intent: SignalIntent,
  ) {}

  get reason(): string {
    return this.intent.reason;
  }

  get indicators(): Record<string, number> {
    return this.intent.indicators;
  }
}

interface Series {
  symbol: string;
  interval: string;
  strategy: Strategy;
  lastMs: number;
  outcomes: OutcomeRing;
}

// The outcomes without a payload are shared constants: most bars end in one of them, and one object per bar per
// strategy was a good part of the quant's garbage. Frozen, so a caller cannot change them for everyone.
const NONE: EngineOutcome = Object.freeze({ kind: 'none' });
const STALE: EngineOutcome = Object.freeze({ kind: 'stale' });
const PARTIAL: EngineOutcome = Object.freeze({ kind: 'partial' });

export class SignalEngine {
  readonly strategyName: string;
  private readonly series = new Map<string, Series>();
  /** The series of the previous bar: bars arrive in runs of one series, so most lookups end here. */
  private current: Series | undefined;
  private readonly cacheSize: number;
  private readonly signalScope: string | undefined;

  constructor(
    private readonly factory: StrategyFactory,
    opts: SignalEngineOptions = {},
  ) {
    this.strategyName = factory().name;
    this.cacheSize = opts.outcomeCacheSize ?? 10_000;
    if (!Number.isInteger(this.cacheSize) || this.cacheSize < 1) throw new RangeError('outcomeCacheSize must be >= 1');
    this.signalScope = opts.signalScope;
  }

  /** Number of (symbol, interval) series seen. */
  get seriesCount(): number {
    return this.series.size;
  }

  /** Process one validated bar. Synchronous: call in delivery order. */
  process(bar: Bar): EngineOutcome {
    if (bar.is_partial) return PARTIAL;
    const ms = barTimeMs(bar.timestamp);
    if (Number.isNaN(ms)) return { kind: 'invalid', reason: `bar timestamp "${bar.timestamp}" is not ISO-8601` };
    let s = this.current;
    if (s === undefined || s.symbol !== bar.symbol || s.interval !== bar.interval) {
      s = this.series.get(`${bar.symbol}|${bar.interval}`);
      if (s) this.current = s;
    }
    if (s && ms <= s.lastMs) {
      const slot = s.outcomes.find(ms);
      if (slot < 0) return STALE;
      return { kind: 'duplicate', signal: s.outcomes.signalAt(slot, this.strategyName, s.symbol, this.signalScope) };
    }
    if (!s) {
      s = {
        symbol: bar.symbol,
        interval: bar.interval,
        strategy: this.factory(),
        lastMs: Number.NEGATIVE_INFINITY,
        outcomes: new OutcomeRing(this.cacheSize),
      };
      this.series.set(`${bar.symbol}|${bar.interval}`, s);
      this.current = s;
    }
    s.lastMs = ms;
    const intent = s.strategy.onBar(bar);
    if (!intent) {
      s.outcomes.push(ms, bar, null);
      return NONE;
    }
    const r = toTradeSignal(this.strategyName, bar, intent, this.signalScope);
    if (!r.ok) {
      s.outcomes.push(ms, bar, null);
      return { kind: 'invalid', reason: r.reason };
    }
    s.outcomes.push(ms, bar, intent);
    return new SignalOutcome(r.value, intent);
  }
}
