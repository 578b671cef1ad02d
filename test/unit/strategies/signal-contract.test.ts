import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBarsCsvSync } from '../../../src/adapters/marketdata/csv';
import type { Bar } from '../../../src/contracts/bar';
import { barMessageId } from '../../../src/contracts/ids';
import { TradeSignalSchema } from '../../../src/contracts/signal';
import { STRATEGY_NAMES } from '../../../src/contracts/strategies';
import { SignalEngine, strategyFactory, toTradeSignal } from '../../../src/domain/strategies';

/** toTradeSignal checks the contract's constraints directly (fast path); the schema must agree on every signal. */
describe('signals meet the trade_signals contract', () => {
  const bars: Bar[] = readBarsCsvSync(path.resolve(__dirname, '../../../../shared/data/nvda-1999-2014.csv'), {
    symbol: 'NVDA',
    limit: 1500,
  }).map((b) => {
    const message_id = barMessageId('replay', b.symbol, '1d', b.timestamp);
    return {
      ...b,
      interval: '1d',
      message_id,
      source: 'replay',
      correlation_id: `corr-${message_id}`,
      schema_version: 1,
      is_partial: false,
    };
  });

  it('every signal of every strategy parses to itself under TradeSignalSchema (scoped and unscoped)', () => {
    let n = 0;
    for (const name of STRATEGY_NAMES) {
      for (const scope of [undefined, 'paper-acct']) {
        const e = new SignalEngine(strategyFactory(name), scope === undefined ? {} : { signalScope: scope });
        for (const b of bars) {
          const out = e.process(b);
          if (out.kind !== 'signal') continue;
          expect(TradeSignalSchema.parse(out.signal)).toEqual(out.signal);
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(1000);
  });

  it('a candidate outside the contract still gets the schema reason', () => {
    const bar = { ...bars[0]!, symbol: 'nvda' };
    const r = toTradeSignal('sma-cross', bar, { side: 'buy', confidence: 0.8, reason: '', indicators: {} });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/^signal would be invalid: symbol/);
    const r2 = toTradeSignal('sma-cross', bars[0]!, { side: 'buy', confidence: 1.5, reason: '', indicators: {} });
    expect(r2.ok).toBe(false);
    if (!r2.ok) expect(r2.reason).toMatch(/confidence/);
  });
});
