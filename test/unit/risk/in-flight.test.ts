import { describe, expect, it } from 'vitest';
import { tradesInFlightToAwait, type RiskDecision } from '../../../src/domain/risk';

const rejected = (reasonCode: RiskDecision['reasonCode']): RiskDecision => ({
  decision: 'REJECTED',
  reasonCode,
  qty: 0,
  notional: 0,
  checks: [],
});
const held = (workflowId: string, symbol: string) => ({
  workflowId,
  symbol,
  side: 'buy' as const,
  qty: 10,
  notional: 1_000,
});
const portfolio = { reservations: [held('trade-a', 'NVDA'), held('trade-b', 'ORCL'), held('trade-self', 'NVDA')] };

describe('which trades in flight a risk decision waits for', () => {
  it("waits for the other trades of the signal's symbol when a check that reads them rejected it", () => {
    for (const cap of [
      'short_not_allowed',
      'exposure_limit_breach',
      'over_position_limit',
      'insufficient_buying_power',
    ] as const) {
      expect(tradesInFlightToAwait(rejected(cap), portfolio, 'NVDA', 'trade-self')).toEqual(['trade-a']);
    }
  });

  it('never waits on an approval, a rejection that does not read them, another symbol, or nothing in flight', () => {
    const approved: RiskDecision = { decision: 'APPROVED', reasonCode: 'approved', qty: 5, notional: 500, checks: [] };
    expect(tradesInFlightToAwait(approved, portfolio, 'NVDA', 'trade-self')).toEqual([]);
    for (const gate of [
      'trading_halted',
      'duplicate_signal',
      'low_confidence',
      'risk_budget_too_small',
      'extreme_volatility',
      'circuit_breaker',
    ] as const) {
      expect(tradesInFlightToAwait(rejected(gate), portfolio, 'NVDA', 'trade-self')).toEqual([]);
    }
    expect(tradesInFlightToAwait(rejected('short_not_allowed'), portfolio, 'AAPL', 'trade-self')).toEqual([]);
    expect(tradesInFlightToAwait(rejected('short_not_allowed'), { reservations: [] }, 'NVDA', 'trade-self')).toEqual(
      [],
    );
  });
});
