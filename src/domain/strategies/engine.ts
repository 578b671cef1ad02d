import type { Bar } from '../../contracts/bar';
import type { TradeSignal } from '../../contracts/signal';
import * as idsModule from '../../contracts/ids';
import * as signalModule from './signal';
import {
  singleStrategy,
  type SignalIntent,
  type StrategyFactory,
  type StrategySeries,
  type StrategySetFactory,
} from './types';

// Bound once, at load: run under tsx (as the workers and benchmarks are), an ES module is compiled to CommonJS whose
// exports are getters, and a call through an import binding reads two of them each time, which V8 does not inline
// (esbuild's shared getter does a megamorphic `from[key]`). barTimeMs runs per bar, tradeSignalOrReason per signal
// (docs/quant.md).
const { barTimeMs, tradeSignalOrReason } = signalModule;
const { SignalIdPrefix } = idsModule;

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
  | {
      readonly kind: 'signal';
      readonly signal: TradeSignal;
      readonly reason: string;
      readonly indicators: Record<string, number>;
    }
  | { readonly kind: 'none' }
  | { readonly kind: 'duplicate'; readonly signal: TradeSignal | null }
  | { readonly kind: 'stale' }
  | { readonly kind: 'partial' }
  | { readonly kind: 'invalid'; readonly reason: string };

export interface SignalEngineOptions {
  /** How many bar outcomes to remember for redeliveries, per (symbol, interval) series. Default 10 000. */
  outcomeCacheSize?: number;
  /** Scope of the signal ids (the account the signals trade for; see signalIdFor). Default: unscoped. */
  signalScope?: string;
}

/**
 * The last `cap` bars of one series and each strategy's outcome on them, as a ring ordered by bar time (bars of a
 * series are processed in increasing time): remembering is O(1), finding a redelivered bar a binary search. (A Map
 * keyed by strings across all series cost ~3 µs a bar in hashing and rehashing: most of the budget.)
 *
 * An outcome is kept as the few numbers and strings its signal is made of (side, confidence; the bar's close,
 * timestamp and correlation id, shared by the strategies), not as the signal object: `tradeSignalOrReason` is a pure
 * function of them, so a redelivery gets the identical signal (same id) back, rebuilt. Keeping ten thousand signal
 * objects per series and strategy alive (each with its id and timestamp strings) made most of them survive into
 * the old generation: copying them was the largest part of the quant's garbage-collection time.
 *
 * The signals themselves are a log of their own (strategy, side, confidence), in bar order, each bar's slot
 * pointing at its first entry: with every strategy on, a bar has ~0.9 signals among nine strategies, and a side
 * and a confidence per bar and strategy (81 bytes a bar, nine tenths of them "no signal") made the ring's memory,
 * its zeroing and its growing a tenth of the engine's time (docs/quant.md). The log holds exactly the signals of
 * the remembered bars: a bar's entries leave it when the bar leaves the ring.
 *
 * The arrays start small and double up to `cap` (a short series never needs ten thousand slots); the log doubles
 * when the remembered bars' signals fill it.
 */
class OutcomeRing {
  private len: number;
  private times: Float64Array;
  private closes: Float64Array;
  /** The bar's own strings (its timestamp as written, which the signal id hashes; its correlation id). */
  private timestamps: string[];
  private correlationIds: string[];
  /** Per slot: the log index of its bar's first signal, and how many it has (0 to k). */
  private firsts: Int32Array;
  private counts: Uint8Array;
  /**
   * The signal log, a ring of `logMask + 1` (a power of two) entries. Log indices count every signal ever logged
   * (wrapping at 2^32, which the power-of-two size divides: index & logMask is the entry's place either way).
   */
  private logStrategies: Uint8Array;
  /** 1 buy, 2 sell. */
  private logSides: Uint8Array;
  private logConfidences: Float64Array;
  private logMask: number;
  /** Index of the next entry. */
  private logEnd = 0;
  private head = 0; // next write
  private size = 0;

  constructor(
    private readonly cap: number,
    k: number,
  ) {
    if (k > 255) throw new RangeError('at most 255 strategies side by side');
    this.len = Math.min(cap, 64);
    this.times = new Float64Array(this.len);
    this.closes = new Float64Array(this.len);
    this.timestamps = new Array<string>(this.len).fill('');
    this.correlationIds = new Array<string>(this.len).fill('');
    this.firsts = new Int32Array(this.len);
    this.counts = new Uint8Array(this.len);
    this.logMask = 63;
    this.logStrategies = new Uint8Array(64);
    this.logSides = new Uint8Array(64);
    this.logConfidences = new Float64Array(64);
  }

  /** Remember a new bar; returns its slot, for `set`. Its strategies' outcomes start as "no signal". */
  push(ms: number, bar: Bar): number {
    if (this.size === this.len && this.len < this.cap) this.grow();
    const i = this.head;
    this.times[i] = ms;
    this.closes[i] = bar.close;
    this.timestamps[i] = bar.timestamp;
    this.correlationIds[i] = bar.correlation_id;
    this.firsts[i] = this.logEnd;
    this.counts[i] = 0;
    if (++this.head === this.len) this.head = 0;
    if (this.size < this.len) this.size++;
    return i;
  }

  /** Strategy j's signal on the bar in `slot`, the bar last pushed (strategies in increasing j). */
  set(slot: number, j: number, intent: SignalIntent): void {
    const oldest = this.head - this.size;
    const live = (this.logEnd - this.firsts[oldest < 0 ? oldest + this.len : oldest]!) | 0;
    if (live > this.logMask) this.growLog();
    const at = this.logEnd & this.logMask;
    this.logStrategies[at] = j;
    this.logSides[at] = intent.side === 'buy' ? 1 : 2;
    this.logConfidences[at] = intent.confidence;
    this.logEnd = (this.logEnd + 1) | 0;
    this.counts[slot]!++;
  }

  /** Until the first wrap the ring is in order from slot 0, so growing is a copy. */
  private grow(): void {
    const len = Math.min(this.cap, this.len * 2);
    const times = new Float64Array(len);
    times.set(this.times);
    const closes = new Float64Array(len);
    closes.set(this.closes);
    const firsts = new Int32Array(len);
    firsts.set(this.firsts);
    const counts = new Uint8Array(len);
    counts.set(this.counts);
    this.timestamps.length = len;
    this.correlationIds.length = len;
    this.timestamps.fill('', this.len);
    this.correlationIds.fill('', this.len);
    this.times = times;
    this.closes = closes;
    this.firsts = firsts;
    this.counts = counts;
    this.head = this.len;
    this.len = len;
  }

  /** Twice the log: the remembered bars' entries copied to their places in it (the same indices). */
  private growLog(): void {
    const size = (this.logMask + 1) * 2;
    const mask = size - 1;
    const strategies = new Uint8Array(size);
    const sides = new Uint8Array(size);
    const confidences = new Float64Array(size);
    const oldest = this.head - this.size;
    const from = this.firsts[oldest < 0 ? oldest + this.len : oldest]!;
    for (let n = (this.logEnd - from) | 0, e = from; n > 0; n--, e = (e + 1) | 0) {
      strategies[e & mask] = this.logStrategies[e & this.logMask]!;
      sides[e & mask] = this.logSides[e & this.logMask]!;
      confidences[e & mask] = this.logConfidences[e & this.logMask]!;
    }
    this.logStrategies = strategies;
    this.logSides = sides;
    this.logConfidences = confidences;
    this.logMask = mask;
  }

  /** The slot of the remembered bar at `ms`, or -1 when it is not (or no longer) remembered. */
  find(ms: number): number {
    let lo = 0;
    let hi = this.size - 1;
    const base = (this.head - this.size + this.len) % this.len;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const i = (base + mid) % this.len;
      const t = this.times[i]!;
      if (t === ms) return i;
      if (t < ms) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * Strategy j's outcome on the bar in `slot`, rebuilt exactly as it was first made: its signal, null for none, or
   * the reason its signal broke the contract (a string). Invalid outcomes are remembered like signals, so that a
   * redelivered bad bar is refused again with the same reason: answering "no signal" would let the worker ack a
   * bar whose dead-letter copy was never confirmed (a requeue after a failed dead-lettering), losing it.
   */
  outcomeAt(
    slot: number,
    j: number,
    strategy: string,
    symbol: string,
    scope: string | undefined,
  ): TradeSignal | string | null {
    for (let n = this.counts[slot]!, e = this.firsts[slot]!; n > 0; n--, e = (e + 1) | 0) {
      const at = e & this.logMask;
      if (this.logStrategies[at] !== j) continue;
      return tradeSignalOrReason(
        strategy,
        {
          symbol,
          timestamp: this.timestamps[slot]!,
          close: this.closes[slot]!,
          correlation_id: this.correlationIds[slot]!,
        },
        { side: this.logSides[at] === 1 ? 'buy' : 'sell', confidence: this.logConfidences[at]! },
        scope,
      );
    }
    return null;
  }
}

/**
 * The engine's own outcomes, a signal or none / stale / partial, in one class: the consumer tests `kind` on every
 * strategy's outcome of every bar, and with the payload-less constants as frozen literals that load saw two shapes
 * (and the arrays two element kinds): ~4 % of an in-process round. For a signal, the strategy's reason and indicator
 * record are read through, when a log line needs them. (Invalid and duplicate outcomes are literals: rare.)
 */
class SignalOutcome {
  constructor(
    readonly kind: 'signal' | 'none' | 'stale' | 'partial',
    readonly signal: TradeSignal | undefined,
    private readonly intent: SignalIntent | undefined,
  ) {}

  get reason(): string {
    return this.intent!.reason;
  }

  get indicators(): Record<string, number> {
    return this.intent!.indicators;
  }
}

interface Series {
  symbol: string;
  interval: string;
  set: StrategySeries;
  lastMs: number;
  outcomes: OutcomeRing;
  /** Per strategy, the fixed part of its signal ids on this series (made at its first signal). */
  ids: (InstanceType<typeof SignalIdPrefix> | undefined)[];
}

// The outcomes without a payload are shared constants: most bars end in one of them, and one object per bar per
// strategy was a good part of the quant's garbage. Not frozen (a frozen object has a shape of its own, see
// SignalOutcome): EngineOutcome's fields are readonly, so a caller cannot change them for everyone.
const NONE = new SignalOutcome('none', undefined, undefined) as EngineOutcome;
const STALE = new SignalOutcome('stale', undefined, undefined) as EngineOutcome;
const PARTIAL = new SignalOutcome('partial', undefined, undefined) as EngineOutcome;

/**
 * The quant core for several strategies side by side: per series, one set of strategy instances (built by a
 * StrategySetFactory, which lets the ensemble share its members with the same strategies run on their own), one
 * timestamp parse, one duplicate check and one remembered window for all of them. Its outcomes are exactly those
 * of one SignalEngine per strategy fed the same bars (a unit test compares them), which is how the worker used
 * them: every strategy sees every bar, in delivery order, so their series advance in lockstep.
 */
export class SignalEngineSet {
  readonly strategyNames: readonly string[];
  /**
   * Series by symbol, then interval (a short list). Not one Map keyed by `symbol|interval`: bars of several symbols
   * interleave (the daily series merged by date alternate on every bar), and a key built per bar is a new string
   * for the Map to flatten and hash each time; a symbol string's hash is computed once and kept in the string.
   */
  private readonly series = new Map<string, Series[]>();
  private count = 0;
  /** The series of the previous bar: bars arrive in runs of one series, so most lookups end here. */
  private current: Series | undefined;
  private readonly cacheSize: number;
  private readonly signalScope: string | undefined;
  private readonly partial: readonly EngineOutcome[];
  private readonly stale: readonly EngineOutcome[];
  private readonly none: readonly EngineOutcome[];

  constructor(
    private readonly factory: StrategySetFactory,
    opts: SignalEngineOptions = {},
  ) {
    this.strategyNames = factory().strategies.map((s) => s.name);
    if (this.strategyNames.length === 0) throw new RangeError('no strategy');
    this.cacheSize = opts.outcomeCacheSize ?? 10_000;
    if (!Number.isInteger(this.cacheSize) || this.cacheSize < 1) throw new RangeError('outcomeCacheSize must be >= 1');
    this.signalScope = opts.signalScope;
    this.partial = this.strategyNames.map(() => PARTIAL);
    this.stale = this.strategyNames.map(() => STALE);
    this.none = this.strategyNames.map(() => NONE);
  }

  /** Number of (symbol, interval) series seen. */
  get seriesCount(): number {
    return this.count;
  }

  /** The series of (symbol, interval), if seen. */
  private find(symbol: string, interval: string): Series | undefined {
    const list = this.series.get(symbol);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) if (list[i]!.interval === interval) return list[i];
    return undefined;
  }

  /** Process one validated bar: one outcome per strategy, in `strategyNames` order. Call in delivery order. */
  process(bar: Bar): readonly EngineOutcome[] {
    if (bar.is_partial) return this.partial;
    const names = this.strategyNames;
    const ms = barTimeMs(bar.timestamp);
    if (Number.isNaN(ms)) {
      const invalid: EngineOutcome = { kind: 'invalid', reason: `bar timestamp "${bar.timestamp}" is not ISO-8601` };
      return names.map(() => invalid);
    }
    let s = this.current;
    if (s === undefined || s.symbol !== bar.symbol || s.interval !== bar.interval) {
      s = this.find(bar.symbol, bar.interval);
      if (s) this.current = s;
    }
    if (s && ms <= s.lastMs) {
      const slot = s.outcomes.find(ms);
      if (slot < 0) return this.stale;
      const out: EngineOutcome[] = [];
      for (let j = 0; j < names.length; j++) {
        const again = s.outcomes.outcomeAt(slot, j, names[j]!, s.symbol, this.signalScope);
        out.push(typeof again === 'string' ? { kind: 'invalid', reason: again } : { kind: 'duplicate', signal: again });
      }
      return out;
    }
    if (!s) {
      s = {
        symbol: bar.symbol,
        interval: bar.interval,
        set: this.factory(),
        lastMs: Number.NEGATIVE_INFINITY,
        outcomes: new OutcomeRing(this.cacheSize, names.length),
        ids: new Array<InstanceType<typeof SignalIdPrefix> | undefined>(names.length).fill(undefined),
      };
      const list = this.series.get(bar.symbol);
      if (list === undefined) this.series.set(bar.symbol, [s]);
      else list.push(s);
      this.count++;
      this.current = s;
    }
    s.lastMs = ms;
    const slot = s.outcomes.push(ms, bar);
    s.set.nextBar();
    const strategies = s.set.strategies;
    // Made at the first signal: on a bar where no strategy signals (most bars, strategy by strategy) the answer is
    // the shared all-"none" array, one array fewer per bar.
    let out: EngineOutcome[] | undefined;
    for (let j = 0; j < strategies.length; j++) {
      const intent = strategies[j]!.onBar(bar);
      if (!intent) continue;
      // A copy of the all-"none" array: packed, as that array is (new Array(n) is holey), so the consumer's loads
      // from the outcome arrays see one elements kind.
      if (out === undefined) out = this.none.slice();
      let ids = s.ids[j];
      if (ids === undefined) s.ids[j] = ids = new SignalIdPrefix(names[j]!, s.symbol, this.signalScope);
      const signal = tradeSignalOrReason(names[j]!, bar, intent, this.signalScope, ids);
      s.outcomes.set(slot, j, intent); // an invalid one too: a redelivery must be refused again (outcomeAt)
      if (typeof signal === 'string') {
        out[j] = { kind: 'invalid', reason: signal };
        continue;
      }
      out[j] = new SignalOutcome('signal', signal, intent) as EngineOutcome;
    }
    return out ?? this.none;
  }
}

/** The quant core for one strategy (a SignalEngineSet of one). */
export class SignalEngine {
  readonly strategyName: string;
  private readonly set: SignalEngineSet;

  constructor(factory: StrategyFactory, opts: SignalEngineOptions = {}) {
    this.set = new SignalEngineSet(singleStrategy(factory), opts);
    this.strategyName = this.set.strategyNames[0]!;
  }

  /** Number of (symbol, interval) series seen. */
  get seriesCount(): number {
    return this.set.seriesCount;
  }

  /** Process one validated bar. Synchronous: call in delivery order. */
  process(bar: Bar): EngineOutcome {
    return this.set.process(bar)[0]!;
  }
}
