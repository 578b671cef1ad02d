import { describe, expect, it } from 'vitest';
import type { BrokerOrder } from '../../src/contracts/order';
import { endNeedsLedger, isTradeComplete, tradeEnd, type EndCause } from '../../src/domain/trade-lifecycle';

function order(over: Partial<BrokerOrder> = {}): BrokerOrder {
  return {
    brokerOrderId: 'B1',
    clientOrderId: 'trade-x',
    symbol: 'NVDA',
    side: 'buy',
    qty: 10,
    type: 'market',
    timeInForce: 'day',
    status: 'new',
    filledQty: 0,
    filledAvgPrice: null,
    createdAt: '2024-01-02T15:00:00Z',
    updatedAt: '2024-01-02T15:00:00Z',
    ...over,
  };
}

describe('trade lifecycle: the ends before an order', () => {
  it('an invalid signal and a risk rejection end REJECTED with their reason code', () => {
    expect(tradeEnd(null, { kind: 'invalid_signal' })).toEqual({
      phase: 'REJECTED',
      outcome: 'REJECTED',
      reasonCode: 'invalid_signal',
    });
    expect(tradeEnd(null, { kind: 'risk_rejected', reasonCode: 'exposure_limit_breach' })).toEqual({
      phase: 'REJECTED',
      outcome: 'REJECTED',
      reasonCode: 'exposure_limit_breach',
    });
  });

  it('only ends after a reservation write the outcome to the ledger (finalizeTrade)', () => {
    const causes: EndCause[] = [
      { kind: 'invalid_signal' },
      { kind: 'risk_rejected', reasonCode: 'x' },
      { kind: 'broker_rejected' },
      { kind: 'broker_final' },
      { kind: 'deadline' },
      { kind: 'user_cancel' },
      { kind: 'order_lost' },
      { kind: 'gave_up', reasonCode: 'risk_unavailable' },
      { kind: 'unresolved', reasonCode: 'submit_unresolved' },
    ];
    expect(causes.filter((c) => !endNeedsLedger(c)).map((c) => c.kind)).toEqual(['invalid_signal', 'risk_rejected']);
  });
});

describe('isTradeComplete', () => {
  it('a simple order is complete when terminal', () => {
    expect(isTradeComplete(order({ status: 'partially_filled', filledQty: 3 }))).toBe(false);
    expect(isTradeComplete(order({ status: 'pending_cancel' }))).toBe(false);
    expect(isTradeComplete(order({ status: 'canceled', filledQty: 3 }))).toBe(true);
    expect(isTradeComplete(order({ status: 'filled', filledQty: 10 }))).toBe(true);
  });

  it('a filled bracket entry waits for its legs; an unfilled one does not', () => {
    const legs = (tp: BrokerOrder['status'], sl: BrokerOrder['status']) => [
      order({ clientOrderId: 'trade-x-tp', side: 'sell', type: 'limit', status: tp }),
      order({ clientOrderId: 'trade-x-sl', side: 'sell', type: 'stop', status: sl }),
    ];
    expect(isTradeComplete(order({ status: 'filled', filledQty: 10, legs: legs('new', 'held') }))).toBe(false);
    expect(isTradeComplete(order({ status: 'filled', filledQty: 10, legs: legs('filled', 'canceled') }))).toBe(true);
    expect(isTradeComplete(order({ status: 'canceled', filledQty: 0, legs: legs('held', 'held') }))).toBe(true);
  });
});
