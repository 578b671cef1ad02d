import type { Side } from '../../contracts/order';
import * as instantsModule from '../../contracts/instants';
import { barsPerYear } from '../indicators/realized-volatility';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. instantMs runs per bar of the drawdown (docs/quant.md, "Run under tsx").
const { instantMs } = instantsModule;

/**
 * Performance metrics of an equity curve (one point per timestamp, marked to market) and its fills.
 * Definitions (docs/quant.md):
 *  - period return r_i = E_i / E_{i−1} − 1 (E_{−1} = starting cash);
 *  - Sharpe = mean(r) / sd(r) · √(periods a year), sample sd, no risk-free rate;
 *  - Sortino = mean(r) / DD · √(periods a year), DD = √(Σ min(0, r_i)² / n) over ALL periods: the true downside
 *    deviation (the original used the sd of the negative returns only), null when nothing ever lost;
 *  - CAGR over calendar time (365.25-day years) from the first to the last timestamp;
 *  - max drawdown = max (peak − E) / peak; its duration = the longest stretch below a previous peak, in bars and in
 *    calendar days (until recovery, or the end of the data);
 *  - a trade is a round trip per symbol, from flat to flat; its P&L includes fees; win rate = winners / trades;
 *    profit factor = gross profit / gross loss (null without a losing trade);
 *  - exposure = share of periods with a position; turnover = traded notional / average equity.
 */
export interface BacktestMetrics {
  startEquity: number;
  endEquity: number;
  totalReturn: number;
  cagr: number | null;
  sharpe: number | null;
  sortino: number | null;
  maxDrawdown: number;
  maxDrawdownDurationBars: number;
  maxDrawdownDurationDays: number;
  winRate: number | null;
  profitFactor: number | null;
  exposure: number;
  averageExposurePct: number;
  trades: number;
  fills: number;
  turnover: number;
  feesPaid: number;
  periodsPerYear: number;
}

export interface MetricsInput {
  timestamps: readonly string[];
  equity: readonly number[];
  exposure: readonly number[];
  trades: ReadonlyArray<{ symbol: string; side: Side; qty: number; price: number; fee: number }>;
  startingCash: number;
}

const DAY = 86_400_000;

export function computeMetrics(m: MetricsInput): BacktestMetrics {
  const n = m.equity.length;
  const e0 = m.startingCash;
  const end = n ? m.equity[n - 1]! : e0;
  const ppy = n > 1 ? barsPerYear(m.timestamps as string[]) : 252;
  let sum = 0;
  let down2 = 0;
  const rets: number[] = [];
  let prev = e0;
  for (const e of m.equity) {
    const r = prev > 0 ? e / prev - 1 : 0;
    rets.push(r);
    sum += r;
    if (r < 0) down2 += r * r;
    prev = e;
  }
  const mean = n ? sum / n : 0;
  let v = 0;
  for (const r of rets) v += (r - mean) ** 2;
  const sd = n > 1 ? Math.sqrt(v / (n - 1)) : 0;
  const dd = n ? Math.sqrt(down2 / n) : 0;

  let peak = e0;
  let peakIdx = -1;
  let maxDd = 0;
  let longestBars = 0;
  let longestDays = 0;
  // instantMs is Date.parse, exactly (../../contracts/instants), at a fraction of the cost; each bar below the peak
  // is parsed once and the peak's instant once per peak (it was parsed again on every bar below it).
  const t = (i: number) => instantMs(i < 0 ? m.timestamps[0]! : m.timestamps[i]!);
  let peakMs = Number.NaN; // t(peakIdx), parsed when first needed
  for (let i = 0; i < n; i++) {
    const e = m.equity[i]!;
    if (e >= peak) {
      peak = e;
      peakIdx = i;
      peakMs = Number.NaN;
    } else {
      maxDd = Math.max(maxDd, (peak - e) / peak);
      longestBars = Math.max(longestBars, i - peakIdx);
      if (Number.isNaN(peakMs)) peakMs = t(peakIdx);
      longestDays = Math.max(longestDays, (t(i) - peakMs) / DAY);
    }
  }

  // Round trips per symbol, flat to flat.
  const pos = new Map<string, number>();
  const flow = new Map<string, number>();
  const pnls: number[] = [];
  let notional = 0;
  let fees = 0;
  for (const f of m.trades) {
    const q0 = pos.get(f.symbol) ?? 0;
    const q1 = q0 + (f.side === 'buy' ? f.qty : -f.qty);
    const cash = (f.side === 'buy' ? -1 : 1) * f.qty * f.price - f.fee;
    flow.set(f.symbol, (flow.get(f.symbol) ?? 0) + cash);
    pos.set(f.symbol, q1);
    notional += f.qty * f.price;
    fees += f.fee;
    if (q1 === 0) {
      pnls.push(flow.get(f.symbol)!);
      flow.set(f.symbol, 0);
    }
  }
  const wins = pnls.filter((p) => p > 0);
  const losses = pnls.filter((p) => p <= 0);
  const grossWin = wins.reduce((a, b) => a + b, 0);
  const grossLoss = -losses.reduce((a, b) => a + b, 0);

  let exposed = 0;
  let expPct = 0;
  let eqSum = 0;
  for (let i = 0; i < n; i++) {
    if (m.exposure[i]! > 0) exposed++;
    expPct += m.equity[i]! > 0 ? m.exposure[i]! / m.equity[i]! : 0;
    eqSum += m.equity[i]!;
  }
  const years = n > 1 ? (t(n - 1) - t(0)) / (365.25 * DAY) : 0;
  return {
    startEquity: e0,
    endEquity: end,
    totalReturn: end / e0 - 1,
    cagr: years > 0 && end > 0 ? (end / e0) ** (1 / years) - 1 : null,
    sharpe: sd > 0 ? (mean / sd) * Math.sqrt(ppy) : null,
    sortino: dd > 0 ? (mean / dd) * Math.sqrt(ppy) : null,
    maxDrawdown: maxDd,
    maxDrawdownDurationBars: longestBars,
    maxDrawdownDurationDays: Math.round(longestDays),
    winRate: pnls.length ? wins.length / pnls.length : null,
    profitFactor: grossLoss > 0 ? grossWin / grossLoss : null,
    exposure: n ? exposed / n : 0,
    averageExposurePct: n ? expPct / n : 0,
    trades: pnls.length,
    fills: m.trades.length,
    turnover: eqSum > 0 ? notional / (eqSum / n) : 0,
    feesPaid: fees,
    periodsPerYear: ppy,
  };
}
