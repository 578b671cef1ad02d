import * as instantsModule from '../../contracts/instants';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. instantMs runs per bar of the window, per decision (docs/quant.md, "Run under tsx").
const { instantMs } = instantsModule;

/**
 * Realised (historical) volatility: the sample standard deviation of log close-to-close returns,
 * annualised by √(bars per year). Pure; no I/O.
 *
 * Bars per year is inferred from the bar spacing and the market's session, so the same threshold
 * (e.g. 1.5 = 150 % a year) means the same thing for daily and for one-minute bars:
 * - daily bars (median spacing < 1.5 days): 252 a year; weekly and longer: 252 / (spacing in trading days);
 * - intraday bars: trading minutes a year / bar minutes, where a session is 6.5 h × 252 days for equities and
 *   options, 23 h × 252 for futures, and 24 h × 365 for crypto.
 */

export type SessionKind = 'equity' | 'options' | 'futures' | 'crypto';

const DAY_MS = 86_400_000;
const TRADING_MINUTES_PER_YEAR: Record<SessionKind, number> = {
  equity: 252 * 6.5 * 60,
  options: 252 * 6.5 * 60,
  futures: 252 * 23 * 60,
  crypto: 365 * 24 * 60,
};
const TRADING_DAYS_PER_YEAR: Record<SessionKind, number> = { equity: 252, options: 252, futures: 252, crypto: 365 };

/** Log returns of consecutive closes (non-positive closes are skipped as unusable). */
export function logReturns(closes: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < closes.length; i++) {
    const prev = closes[i - 1]!;
    const cur = closes[i]!;
    if (prev > 0 && cur > 0 && Number.isFinite(prev) && Number.isFinite(cur)) out.push(Math.log(cur / prev));
  }
  return out;
}

/** Sample standard deviation (n − 1); null for fewer than two values. */
export function sampleStdDev(values: readonly number[]): number | null {
  if (values.length < 2) return null;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1);
  return Math.sqrt(variance);
}

/** Bars per year implied by the median spacing of the timestamps; `fallback` when it cannot be inferred. */
export function barsPerYear(timestamps: readonly string[], session: SessionKind = 'equity', fallback = 252): number {
  // Gaps between consecutive parseable timestamps (an unparseable one is skipped, not a gap of its own).
  const gaps: number[] = [];
  let prev = Number.NaN;
  for (const t of timestamps) {
    const ms = instantMs(t);
    if (!Number.isFinite(ms)) continue;
    if (!Number.isNaN(prev) && ms - prev > 0) gaps.push(ms - prev);
    prev = ms;
  }
  if (gaps.length === 0) return fallback;
  gaps.sort((a, b) => a - b);
  return perYearOfMedianGap(gaps[Math.floor(gaps.length / 2)]!, session);
}

function perYearOfMedianGap(median: number, session: SessionKind): number {
  if (median >= 0.8 * DAY_MS) {
    const days = median / DAY_MS;
    // Calendar days → trading days: a weekend gap inside daily bars is still one bar per trading day.
    const tradingDaysPerBar = days < 1.5 ? 1 : session === 'crypto' ? days : (days * 5) / 7;
    return TRADING_DAYS_PER_YEAR[session] / tradingDaysPerBar;
  }
  return TRADING_MINUTES_PER_YEAR[session] / (median / 60_000);
}

export interface VolatilityBar {
  timestamp: string;
  close: number;
  /**
   * instantMs(timestamp), when the caller has it already (the backtester parses each bar's timestamp once):
   * used instead of parsing or looking the timestamp up again for every decision whose window holds the bar.
   */
  timeMs?: number;
}

/**
 * Annualised realised volatility over the last `window` returns of `bars` (oldest first).
 * Null when fewer than `minReturns` returns are available: too little data to judge.
 *
 * The risk engine asks this for every signal (a backtest: thousands of times), so it works on the bars in place
 * with module scratch arrays instead of slicing and mapping them five times: the same returns, sums, median gap
 * and operations in the same order as logReturns, sampleStdDev and barsPerYear (a unit test compares them).
 */
export function realizedVolatility(
  bars: readonly VolatilityBar[],
  window: number,
  opts: { session?: SessionKind; minReturns?: number } = {},
): number | null {
  const from = Math.max(0, bars.length - (window + 1));
  const n = bars.length - from;
  if (scratchReturns.length < n) {
    scratchReturns = new Float64Array(n);
    scratchGaps = new Float64Array(n);
  }
  // logReturns of the closes
  let count = 0;
  for (let i = from + 1; i < bars.length; i++) {
    const prev = bars[i - 1]!.close;
    const cur = bars[i]!.close;
    if (prev > 0 && cur > 0 && Number.isFinite(prev) && Number.isFinite(cur))
      scratchReturns[count++] = Math.log(cur / prev);
  }
  if (count < Math.max(2, opts.minReturns ?? 2)) return null;
  // sampleStdDev: the mean by a left-to-right sum, then the squared deviations likewise
  let sum = 0;
  for (let i = 0; i < count; i++) sum += scratchReturns[i]!;
  const mean = sum / count;
  let sq = 0;
  for (let i = 0; i < count; i++) sq += (scratchReturns[i]! - mean) ** 2;
  const sd = Math.sqrt(sq / (count - 1));
  // barsPerYear of the timestamps
  const session = opts.session ?? 'equity';
  let gaps = 0;
  let prevMs = Number.NaN;
  for (let i = from; i < bars.length; i++) {
    const bar = bars[i]!;
    const known = bar.timeMs;
    const ms = known === undefined ? barInstantMs(bar.timestamp) : known;
    if (!Number.isFinite(ms)) continue;
    if (!Number.isNaN(prevMs) && ms - prevMs > 0) scratchGaps[gaps++] = ms - prevMs;
    prevMs = ms;
  }
  let perYear = 252;
  if (gaps > 0) perYear = perYearOfMedianGap(medianGap(gaps), session);
  const annualised = sd * Math.sqrt(perYear);
  return Number.isFinite(annualised) ? annualised : null;
}

/**
 * The gap at position floor(gaps / 2) of scratchGaps' first `gaps` once sorted (barsPerYear's median): the same
 * value, since the gaps are positive finite numbers. A window's gaps (21 by default) are sorted in place by insertion,
 * nearly free on the runs of equal gaps bars have; a subarray and the builtin sort per decision cost more than the
 * rest of the volatility. Long windows keep the builtin's O(n log n).
 */
function medianGap(gaps: number): number {
  const g = scratchGaps;
  if (gaps > 64) return g.subarray(0, gaps).sort()[Math.floor(gaps / 2)]!;
  for (let i = 1; i < gaps; i++) {
    const x = g[i]!;
    let j = i - 1;
    while (j >= 0 && g[j]! > x) {
      g[j + 1] = g[j]!;
      j--;
    }
    g[j + 1] = x;
  }
  return g[Math.floor(gaps / 2)]!;
}

/**
 * instantMs of a window's timestamps, remembered: consecutive decisions on a symbol see the same bars again (a
 * backtest asks for the last 21 bars' volatility on every signal: 43,000 parses over the daily data). A pure
 * function of the string, so remembering it changes no result; the memory is bounded (forgotten at once when full).
 */
const instants = new Map<string, number>();
const MAX_REMEMBERED_INSTANTS = 4096;
function barInstantMs(timestamp: string): number {
  let ms = instants.get(timestamp);
  if (ms === undefined) {
    if (instants.size >= MAX_REMEMBERED_INSTANTS) instants.clear();
    ms = instantMs(timestamp);
    instants.set(timestamp, ms);
  }
  return ms;
}

let scratchReturns = new Float64Array(64);
let scratchGaps = new Float64Array(64);
