import { readBarsCsvSync } from './src/adapters/marketdata/csv';
import { runBacktest, mergeSeries } from './src/domain/backtest/engine';
import { strategyFactory } from './src/domain/strategies';
import { SimulatedExchange } from './src/domain/exchange';
import { evaluate, DEFAULT_RISK_LIMITS } from './src/domain/risk';
const a = readBarsCsvSync('/work/shared/data/nvda-1999-2014.csv', { symbol: 'NVDA' });
const b = readBarsCsvSync('/work/shared/data/orcl-1995-2014.csv', { symbol: 'ORCL' });
const bars = mergeSeries([a, b]);
let t0 = performance.now();
for (let k = 0; k < 5; k++) { const ex = new SimulatedExchange({ symbols: ['NVDA','ORCL'] }); for (const bar of bars) ex.onBar(bar); }
console.log('exchange.onBar x9048', ((performance.now()-t0)/5).toFixed(1));
t0 = performance.now();
for (let k = 0; k < 5; k++) { const ex = new SimulatedExchange({ symbols: ['NVDA','ORCL'] }); for (const bar of bars) { ex.onBar(bar); ex.account(); ex.position('NVDA'); ex.position('ORCL'); } }
console.log('+account', ((performance.now()-t0)/5).toFixed(1));
const snap = { cash: 1e5, positions: {}, reservations: [], dayStartEquity: 1e5, tradingState: 'ACTIVE' as const, lastSignalAt: {}, asOf: a[100]!.timestamp };
t0 = performance.now();
for (let k = 0; k < 2000; k++) evaluate({ symbol: 'NVDA', side: 'buy', price: 10, confidence: 0.8, strategy: 's', asset_class: 'equity', created_at: a[100]!.timestamp }, snap, { recentBars: a.slice(80, 101) }, DEFAULT_RISK_LIMITS);
console.log('2000 evaluate', (performance.now()-t0).toFixed(1));
