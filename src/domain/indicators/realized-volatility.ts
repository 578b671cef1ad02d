import { instantMs } from '../../contracts/instants';

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
  const median = gaps[Math.floor(gaps.length / 2)]!;
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
}

/**
 * Annualised realised volatility over the last `window` returns of `bars` (oldest first).
 * Null when fewer than `minReturns` returns are available: too little data to judge.
 */
export function realizedVolatility(
  bars: readonly VolatilityBar[],
  window: number,
  opts: { session?: SessionKind; minReturns?: number } = {},
): number | null {
  const recent = bars.slice(-(window + 1));
  const returns = logReturns(recent.map((b) => b.close));
  if (returns.length < Math.max(2, opts.minReturns ?? 2)) return null;
  const sd = sampleStdDev(returns);
  if (sd === null) return null;
  const annualised =
    sd *
    Math.sqrt(
      barsPerYear(
        recent.map((b) => b.timestamp),
        opts.session ?? 'equity',
      ),
    );
  return Number.isFinite(annualised) ? annualised : null;
}
