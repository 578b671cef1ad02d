import { readBarsCsvSync } from './src/adapters/marketdata/csv';
import { runBacktest, mergeSeries } from './src/domain/backtest/engine';
import { strategyFactory } from './src/domain/strategies';
const a = readBarsCsvSync('/work/shared/data/nvda-1999-2014.csv', { symbol: 'NVDA' });
const b = readBarsCsvSync('/work/shared/data/orcl-1995-2014.csv', { symbol: 'ORCL' });
const bars = mergeSeries([a, b]);
for (const audit of [true, false]) {
  let best = Infinity; let r;
  for (let k = 0; k < 5; k++) { const t0 = performance.now(); r = runBacktest(bars, { strategy: strategyFactory('sma-cross'), audit }); best = Math.min(best, performance.now() - t0); }
  console.log('audit', audit, best.toFixed(1), 'ms');
  console.log(JSON.stringify(r!.metrics), r!.trades.length, r!.signals.length, r!.final);
  const reasons: Record<string, number> = {}; for (const s of r!.signals) reasons[s.reason] = (reasons[s.reason] ?? 0) + 1; console.log(reasons);
}
console.log((globalThis as any).tSnap / 10, (globalThis as any).tEval / 10);
