import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBarsCsvSync } from '../../../src/adapters/marketdata/csv';
import type { OhlcvBar } from '../../../src/contracts/bar';
import { signalIdFor } from '../../../src/contracts/ids';
import {
  computeMetrics,
  mergeSeries,
  runBacktest,
  walkForward,
  type BacktestResult,
} from '../../../src/domain/backtest';
import { DEFAULT_RISK_LIMITS } from '../../../src/domain/risk';
import { strategyFactory } from '../../../src/domain/strategies';

const DATA = path.resolve(__dirname, '../../../../shared/data');
const NVDA = readBarsCsvSync(path.join(DATA, 'nvda-1999-2014.csv'), { symbol: 'NVDA' });
const ORCL = readBarsCsvSync(path.join(DATA, 'orcl-1995-2014.csv'), { symbol: 'ORCL' });
const BOTH = mergeSeries([NVDA, ORCL]);

const cents = (x: number) => Math.round(x * 100);

/**
 * Re-derive the whole account from the fills and the bars alone, independently of the exchange, and compare every
 * marked-to-market point to the cent: cash + position value = equity, no position without a fill.
 */
function reconcile(r: BacktestResult, bars: readonly OhlcvBar[], start: number): void {
  let cash = start;
  const qty = new Map<string, number>();
  const close = new Map<string, number>();
  let t = 0;
  let k = 0;
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i]!;
    while (k < r.trades.length && r.trades[k]!.timestamp === b.timestamp && r.trades[k]!.symbol === b.symbol) {
      const f = r.trades[k++]!;
      cash += f.side === 'buy' ? -(f.qty * f.price + f.fee) : f.qty * f.price - f.fee;
      qty.set(f.symbol, (qty.get(f.symbol) ?? 0) + (f.side === 'buy' ? f.qty : -f.qty));
    }
    close.set(b.symbol, b.close);
    if (i + 1 < bars.length && bars[i + 1]!.timestamp === b.timestamp) continue;
    let value = 0;
    for (const [s, q] of qty) value += q * close.get(s)!;
    expect(r.timestamps[t]).toBe(b.timestamp);
    expect(cents(r.cash[t]!), `cash at ${b.timestamp}`).toBe(cents(cash));
    expect(Math.abs(r.equity[t]! - (cash + value)), `equity at ${b.timestamp}`).toBeLessThan(0.005);
    t++;
  }
  expect(k, 'every fill was matched to its bar').toBe(r.trades.length);
  expect(t).toBe(r.timestamps.length);
  for (const [s, q] of qty) expect(r.final.positions[s] ?? 0, s).toBe(q);
}

describe('backtest accounting', () => {
  it('sma-cross on both daily series: reconciles to the cent at every bar; fees and slippage charged once', () => {
    const r = runBacktest(BOTH, { strategy: strategyFactory('sma-cross') });
    expect(r.trades.length).toBeGreaterThan(500);
    reconcile(r, BOTH, 100_000);
    const open = new Map(BOTH.map((b) => [`${b.symbol}|${b.timestamp}`, b]));
    let fees = 0;
    for (const f of r.trades) {
      const b = open.get(`${f.symbol}|${f.timestamp}`)!;
      // Slippage once: 5 bps off the open, clamped to the bar (never twice: open·(1 ± s)²).
      // Then printed on the tick against the trader (a buyer pays up, a seller receives less).
      const raw = Math.min(b.high, Math.max(b.low, b.open * (f.side === 'buy' ? 1.0005 : 0.9995)));
      const tick = raw >= 1 ? 100 : 10_000;
      const onTick = (f.side === 'buy' ? Math.ceil(raw * tick - 1e-6) : Math.floor(raw * tick + 1e-6)) / tick;
      expect(f.price).toBeCloseTo(onTick, 10);
      expect(f.fee).toBe(Math.round(f.qty * 0.005 * 100 + 1e-9) / 100); // SIM_FEE_PER_SHARE in whole cents, once per fill
      fees += f.fee;
    }
    expect(cents(r.final.feesPaid)).toBe(cents(fees));
    expect(cents(r.metrics.feesPaid)).toBe(cents(fees));
  });

  it('partial fills (volume cap), 3-bar latency, bps fees: still reconciles; nothing fills before its latency', () => {
    const bars = mergeSeries([NVDA.slice(0, 1500), ORCL.slice(0, 1500)]);
    const r = runBacktest(bars, {
      strategy: strategyFactory('macd'),
      exchange: { maxVolumePct: 0.00002, latencyBars: 3, feeBps: 10, feePerShare: 0, slippageBps: 20 },
      limits: { ...DEFAULT_RISK_LIMITS, maxOrderNotional: 1e9 },
    });
    reconcile(r, bars, 100_000);
    const approved = r.signals.filter((s) => s.decision === 'APPROVED');
    const filledBySignal = new Map<string, number>();
    for (const f of r.trades) filledBySignal.set(f.signalId, (filledBySignal.get(f.signalId) ?? 0) + f.qty);
    const partial = approved.filter((s) => (filledBySignal.get(s.signalId) ?? 0) < s.qty);
    expect(partial.length).toBeGreaterThan(0);
    const index = new Map<string, number>();
    bars.filter((b) => b.symbol === 'NVDA').forEach((b, i) => index.set(b.timestamp, i));
    for (const f of r.trades.filter((t) => t.symbol === 'NVDA')) {
      const s = r.signals.find((x) => x.signalId === f.signalId)!;
      expect(index.get(f.timestamp)! - index.get(s.timestamp)!).toBeGreaterThanOrEqual(3);
      expect(f.fee).toBe(Math.round(((f.qty * f.price * 10) / 10_000) * 100 + 1e-9) / 100);
    }
  });

  it('no position without a fill: exposure is zero until the first fill, and positions only move on fills', () => {
    const r = runBacktest(BOTH.slice(0, 3000), { strategy: strategyFactory('bollinger') });
    const first = r.timestamps.indexOf(r.trades[0]!.timestamp);
    expect(r.exposure.slice(0, first).every((x) => x === 0)).toBe(true);
    expect(r.equity.slice(0, first).every((e) => e === 100_000)).toBe(true);
  });

  it('uses the live strategy code and signal ids; same inputs give the same output', () => {
    const a = runBacktest(BOTH, { strategy: strategyFactory('ensemble') });
    const b = runBacktest(BOTH, { strategy: strategyFactory('ensemble') });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    const live = strategyFactory('ensemble')();
    const expected = NVDA.flatMap((bar) => (live.onBar(bar) ? [signalIdFor('ensemble', 'NVDA', bar.timestamp)] : []));
    expect(a.signals.filter((s) => s.symbol === 'NVDA').map((s) => s.signalId)).toEqual(expected);
    // The risk engine decided each one: low-confidence votes are rejected as live.
    expect(a.signals.some((s) => s.reason === 'low_confidence')).toBe(true);
    expect(a.signals.every((s) => s.decision !== 'SKIPPED')).toBe(true);
  });
});

describe('metrics', () => {
  const ts = (n: number) =>
    Array.from({ length: n }, (_, i) => new Date(Date.UTC(2020, 0, 1) + i * 86_400_000).toISOString());

  it('Sortino uses the true downside deviation over all periods; drawdown depth and duration', () => {
    const equity = [110, 99, 104.94, 115.434, 115.434];
    const m = computeMetrics({ timestamps: ts(5), equity, exposure: [0, 0, 0, 0, 0], trades: [], startingCash: 100 });
    const r = [0.1, -0.1, 0.06, 0.1, 0];
    const mean = r.reduce((a, b) => a + b) / 5;
    const dd = Math.sqrt((0.1 * 0.1) / 5); // only one negative period, averaged over all five
    expect(m.sortino).toBeCloseTo((mean / dd) * Math.sqrt(m.periodsPerYear), 9);
    const sd = Math.sqrt(r.reduce((a, x) => a + (x - mean) ** 2, 0) / 4);
    expect(m.sharpe).toBeCloseTo((mean / sd) * Math.sqrt(m.periodsPerYear), 9);
    expect(m.maxDrawdown).toBeCloseTo(0.1, 12); // 110 → 99
    expect(m.maxDrawdownDurationBars).toBe(2); // below the 110 peak on bars 1 and 2, recovered on bar 3
    expect(m.totalReturn).toBeCloseTo(0.15434, 12);
  });

  it('round trips: win rate, profit factor with fees; exposure and turnover', () => {
    const trades = [
      { symbol: 'A', side: 'buy' as const, qty: 10, price: 10, fee: 1 },
      { symbol: 'A', side: 'sell' as const, qty: 10, price: 12, fee: 1 }, // +18
      { symbol: 'A', side: 'buy' as const, qty: 5, price: 10, fee: 1 },
      { symbol: 'A', side: 'sell' as const, qty: 5, price: 9, fee: 1 }, // −7
    ];
    const m = computeMetrics({
      timestamps: ts(4),
      equity: [100, 100, 100, 100],
      exposure: [100, 0, 50, 0],
      trades,
      startingCash: 100,
    });
    expect(m.trades).toBe(2);
    expect(m.winRate).toBe(0.5);
    expect(m.profitFactor).toBeCloseTo(18 / 7, 12);
    expect(m.exposure).toBe(0.5);
    expect(m.turnover).toBeCloseTo((100 + 120 + 50 + 45) / 100, 12);
    expect(m.sortino).toBeNull(); // never lost
  });
});

describe('walk-forward', () => {
  it('windows are counted in bars of the time axis; each test window is traded out of sample with the train winner', () => {
    const bars = mergeSeries([NVDA.slice(0, 1200), ORCL.slice(0, 1200)]);
    const wf = walkForward(bars, {
      train: 400,
      test: 200,
      grid: { fast: [2, 3], slow: [5, 10] },
      build: (p) => strategyFactory('sma-cross', { maCross: p }),
    });
    const distinct = new Set(bars.map((b) => b.timestamp)).size;
    expect(wf.windows).toHaveLength(Math.ceil((distinct - 400) / 200));
    expect(wf.combinations).toBe(4);
    for (const w of wf.windows) {
      expect(w.trainEnd < w.testStart).toBe(true);
      expect([2, 3]).toContain(w.params.fast);
    }
    // Out of sample compounds the test windows.
    const oos = wf.windows.reduce((a, w) => a * (1 + w.test.totalReturn), 1) - 1;
    expect(wf.outOfSampleReturn).toBeCloseTo(oos, 12);
  });
});
