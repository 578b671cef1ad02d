import type { Bar } from '../../contracts/bar';
import * as ids from '../../contracts/ids';
import * as instants from '../../contracts/instants';
import * as signalContract from '../../contracts/signal';
import type { ParseResult, TradeSignal } from '../../contracts/signal';
import type { SignalIdPrefix } from '../../contracts/ids';
import type { SignalIntent } from './types';

// Bound once, at load: run under tsx (as the workers and benchmarks are), an ES module is compiled to CommonJS whose
// exports are getters, and a call through an import binding reads two of them each time, which V8 does not inline
// (esbuild's shared getter does a megamorphic `from[key]`). These run per bar or per signal (docs/quant.md).
const { signalIdFor } = ids;
const { canonicalInstantMs, instantMs, isCanonicalInstant, isoInstant } = instants;
const { SIGNAL_SCHEMA_VERSION, TradeSignalSchema, formatZodError } = signalContract;

/**
 * Bar + intent → the `trade.signals` message. Pure and deterministic:
 *  - signal_id = signalIdFor(strategy, symbol, bar.timestamp, scope): the same bar (replayed, redelivered, or
 *    re-processed after a crash) always yields the same id, so it can never start a second trade;
 *  - correlation_id is carried from the bar (born with the bar, see architecture.md);
 *  - price = the bar close; created_at = the bar timestamp normalised to ISO-8601 UTC (not the wall clock, which
 *    would make the message differ between a run and its replay).
 * Validated against the shared contract; an error means the bar cannot yield a valid signal (e.g. a lower-case
 * symbol), which the quant dead-letters with the reason. The contract's constraints on the fields built here are
 * checked directly first (zod costs ~50 µs a signal, the whole budget of a bar with every strategy on); only a
 * candidate that fails them goes through the schema, for its exact reason. A unit test keeps the two in step.
 */
export function toTradeSignal(
  strategy: string,
  bar: Pick<Bar, 'symbol' | 'timestamp' | 'close' | 'correlation_id'>,
  intent: Pick<SignalIntent, 'side' | 'confidence'> & Partial<SignalIntent>,
  scope?: string,
): ParseResult<TradeSignal> {
  const r = tradeSignalOrReason(strategy, bar, intent, scope);
  return typeof r === 'string' ? { ok: false, reason: r } : { ok: true, value: r };
}

/**
 * toTradeSignal without the result wrapper: the signal, or the reason it would be invalid (a string). For the
 * engine, which makes one per signal: one object fewer each. `ids`, when given, must be the SignalIdPrefix of this
 * strategy, the bar's symbol and `scope` (the engine keeps one per series and strategy): the same id, cheaper.
 */
export function tradeSignalOrReason(
  strategy: string,
  bar: Pick<Bar, 'symbol' | 'timestamp' | 'close' | 'correlation_id'>,
  intent: Pick<SignalIntent, 'side' | 'confidence'>,
  scope: string | undefined,
  ids?: SignalIdPrefix,
): TradeSignal | string {
  const ms = barTimeMs(bar.timestamp);
  if (Number.isNaN(ms)) return `bar timestamp "${bar.timestamp}" is not ISO-8601`;
  const candidate: TradeSignal = {
    schema_version: SIGNAL_SCHEMA_VERSION,
    signal_id: ids === undefined ? signalIdFor(strategy, bar.symbol, bar.timestamp, scope) : ids.idFor(bar.timestamp),
    correlation_id: bar.correlation_id,
    symbol: bar.symbol,
    side: intent.side,
    price: bar.close,
    confidence: intent.confidence,
    strategy,
    created_at: isoOf(ms, bar.timestamp),
    asset_class: 'equity',
  };
  if (meetsContract(candidate)) return candidate;
  const r = TradeSignalSchema.safeParse(candidate);
  return r.success ? r.data : `signal would be invalid: ${formatZodError(r.error)}`;
}

// One-entry memos of Date.parse and toISOString (../instants). With every strategy on, each bar is parsed by every
// strategy's engine in turn (the same string object, so the check is a pointer compare) and several strategies often
// signal on the same bar. Pure functions of their argument, so the memo cannot change a result.
let lastTimestamp: string | undefined;
/**
 * The memos' instants: [0] the last timestamp's (NaN when it is not a date), [1] lastIso's. In a typed array rather
 * than module variables: a module's variables are slots of its closure context, and every double stored into one
 * is a new heap number (one per bar and one per signalling bar, here).
 */
const memoMs = Float64Array.of(Number.NaN, Number.NaN);
/** Is lastTimestamp canonical (isCanonicalInstant)? Found by the same parse as its instant. */
let lastCanonical = false;
let lastIso = '';

/** Date.parse(timestamp), remembered for the last timestamp asked (NaN when it is not a date). */
export function barTimeMs(timestamp: string): number {
  if (timestamp !== lastTimestamp) {
    const canonical = canonicalInstantMs(timestamp);
    lastCanonical = canonical === canonical;
    memoMs[0] = lastCanonical ? canonical : instantMs(timestamp);
    lastTimestamp = timestamp;
  }
  return memoMs[0]!;
}

/**
 * new Date(ms).toISOString() of `timestamp` (whose instant is ms), remembered for the last instant asked. A
 * timestamp already in that form is its own answer (isCanonicalInstant): no string to build, and the signal keeps
 * a reference to the bar's string instead of one of its own. The bar's timestamp was just parsed by barTimeMs,
 * which found out whether it is canonical.
 */
function isoOf(ms: number, timestamp: string): string {
  if (ms !== memoMs[1]) {
    const canonical = timestamp === lastTimestamp ? lastCanonical : isCanonicalInstant(timestamp);
    lastIso = canonical ? timestamp : isoInstant(ms);
    memoMs[1] = ms;
  }
  return lastIso;
}

const TICKER = /^[A-Z][A-Z0-9.]*$/;

// The last symbol found to be a valid ticker: a series' signals all carry the same symbol (a pointer compare).
let lastTicker: string | undefined;
function isTicker(symbol: string): boolean {
  if (symbol === lastTicker) return true;
  if (!(symbol.length >= 1 && symbol.length <= 12 && TICKER.test(symbol))) return false;
  lastTicker = symbol;
  return true;
}

/**
 * TradeSignalSchema's constraints on the fields toTradeSignal sets (created_at comes from toISOString). The id is
 * not tested: signalIdFor always makes `sig-` and 20 hex digits, inside the contract's pattern whatever its inputs
 * (test/unit/strategies/signal-contract.test.ts checks that, on odd inputs too); a regex per signal was 2 % of
 * the quant's time.
 */
function meetsContract(s: TradeSignal): boolean {
  return (
    s.correlation_id.length >= 1 &&
    s.correlation_id.length <= 128 &&
    isTicker(s.symbol) &&
    (s.side === 'buy' || s.side === 'sell') &&
    Number.isFinite(s.price) &&
    s.price > 0 &&
    Number.isFinite(s.confidence) &&
    s.confidence >= 0 &&
    s.confidence <= 1 &&
    s.strategy.length >= 1 &&
    s.strategy.length <= 64
  );
}
