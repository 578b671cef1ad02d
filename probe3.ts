import { readBarsCsvSync } from './src/adapters/marketdata/csv';
import { evaluate, DEFAULT_RISK_LIMITS } from './src/domain/risk';
const a = readBarsCsvSync('/work/shared/data/nvda-1999-2014.csv', { symbol: 'NVDA' });
const snap = { cash: 1e5, positions: {}, reservations: [], dayStartEquity: 1e5, tradingState: 'ACTIVE' as const, lastSignalAt: {}, asOf: a[100]!.timestamp };
for (let k = 0; k < 6000; k++) evaluate({ symbol: 'NVDA', side: 'buy', price: 10, confidence: 0.8, strategy: 's', asset_class: 'equity', created_at: a[100]!.timestamp }, snap, { recentBars: a.slice(80, 101) }, DEFAULT_RISK_LIMITS);
