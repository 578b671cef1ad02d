import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/domain/random';
import { conservativeTick, roundToTick, tickSize, toCents } from '../../src/domain/money';
import { fillsToBook, type LedgerFill } from '../../src/domain/fills';
import type { BrokerOrder } from '../../src/contracts/order';
import { LEDGER_TRADE_STATUSES, TRADE_OUTCOMES, tradeEnd } from '../../src/domain/trade-lifecycle';

describe('money: the US equity tick', () => {
  it('is a cent at or above $1 and a hundredth of a cent below', () => {
    expect(tickSize(1)).toBe(0.01);
    expect(tickSize(0.9999)).toBe(0.0001);
  });
  it('gives exactly the doubles of the formatted form Number((n × tick).toFixed(d)), on 300,000 seeded prices and every edge', () => {
    const formatted = (price: number, how: 'nearest' | 'down' | 'up') => {
      if (!Number.isFinite(price)) return price;
      const tick = tickSize(price);
      const units = price / tick;
      const near = Math.round(units);
      const n =
        Math.abs(units - near) < 1e-6
          ? near
          : how === 'down'
            ? Math.floor(units)
            : how === 'up'
              ? Math.ceil(units)
              : near;
      return Number((n * tick).toFixed(tick === 0.01 ? 2 : 4));
    };
    const rnd = new SeededRandom(612);
    const prices: number[] = [0, -0, 1, 0.9999, 1e-9, -1e-9, 0.00004999, 0.00005, -0.00005, 1e13, 9.99e12, 1e16, -1e16];
    for (let i = 0; i < 100_000; i++) {
      const mag = 10 ** (rnd.next() * 16 - 5); // 1e-5 .. 1e11
      const p = (rnd.next() < 0.1 ? -1 : 1) * mag;
      prices.push(p, Math.round(p * 100) / 100, Math.round(p * 10_000) / 10_000 + 1e-9 * rnd.next());
    }
    const differ: string[] = [];
    for (const p of prices)
      for (const how of ['nearest', 'down', 'up'] as const)
        if (!Object.is(roundToTick(p, how), formatted(p, how))) differ.push(`${p} ${how}`);
    expect(differ).toEqual([]);
  });

  it('rounds binary noise onto the tick instead of a tick away', () => {
    expect(roundToTick(16.088039999999996, 'up')).toBe(16.09);
    expect(roundToTick(16.08 + 1e-12, 'up')).toBe(16.08);
    expect(roundToTick(19.919955, 'up')).toBe(19.92);
    expect(roundToTick(19.919955, 'down')).toBe(19.91);
    expect(roundToTick(0.123456)).toBe(0.1235);
  });
  it('never makes a limit or stop more aggressive than asked', () => {
    expect(conservativeTick(100.129, 'buy', 'limit')).toBe(100.12);
    expect(conservativeTick(100.121, 'sell', 'limit')).toBe(100.13);
    expect(conservativeTick(100.121, 'buy', 'stop')).toBe(100.13);
    expect(conservativeTick(100.129, 'sell', 'stop')).toBe(100.12);
  });
  it('counts cents half away from zero', () => {
    expect(toCents(1.005)).toBe(101);
    expect(toCents(-1.005)).toBe(-101);
    expect(toCents(1.3986)).toBe(140);
  });
});

function order(over: Partial<BrokerOrder> = {}): BrokerOrder {
  return {
    brokerOrderId: 'B1',
    clientOrderId: 'trade-x',
    symbol: 'NVDA',
    side: 'buy',
    qty: 10,
    type: 'market',
    timeInForce: 'day',
    status: 'filled',
    filledQty: 10,
    filledAvgPrice: 100.5,
    createdAt: '2024-01-02T15:00:00Z',
    updatedAt: '2024-01-02T15:00:01Z',
    ...over,
  };
}
function exec(id: string, qty: number, price: number, cumQty: number, fee = 0.05): LedgerFill {
  return {
    executionId: id,
    clientOrderId: 'trade-x',
    brokerOrderId: 'B1',
    symbol: 'NVDA',
    side: 'buy',
    qty,
    price,
    fee,
    cumQty,
    timestamp: '2024-01-02T15:00:01Z',
  };
}

describe('fillsToBook: every filled share booked exactly once', () => {
  it('books an order already filled when first seen, with no execution known: one inferred fill, fee unknown', () => {
    const out = fillsToBook(order(), { cumQty: 0, notional: 0 }, []);
    expect(out).toEqual([
      expect.objectContaining({ executionId: 'B1:cum:10', qty: 10, price: 100.5, fee: null, cumQty: 10 }),
    ]);
  });
  it('uses real executions where they continue the booked sequence, de-duplicated and in order', () => {
    const e1 = exec('E1', 4, 100, 4);
    const e2 = exec('E2', 6, 100.8333, 10);
    const out = fillsToBook(order(), { cumQty: 0, notional: 0 }, [e2, e1, e1]);
    expect(out.map((f) => f.executionId)).toEqual(['E1', 'E2']);
    expect(out.reduce((s, f) => s + f.qty, 0)).toBe(10);
  });
  it('infers the rest in one piece after a gap (a dropped stream event), priced from the average', () => {
    // Booked 4 @ 100; the broker says 10 filled at avg 100.5; only the last execution (cum 10) is known.
    const out = fillsToBook(order(), { cumQty: 4, notional: 400 }, [exec('E3', 3, 101, 10)]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ qty: 6, cumQty: 10, fee: null });
    expect(out[0]!.price).toBeCloseTo((1005 - 400) / 6, 6);
  });
  it('books nothing when the ledger already holds the cumulative quantity (a late real event after inference)', () => {
    expect(
      fillsToBook(order(), { cumQty: 10, notional: 1005 }, [exec('E1', 4, 100, 4), exec('E2', 6, 101, 10)]),
    ).toEqual([]);
  });
  it('ignores executions newer than the snapshot; the next snapshot books them', () => {
    const out = fillsToBook(
      order({ filledQty: 4, status: 'partially_filled', filledAvgPrice: 100 }),
      { cumQty: 0, notional: 0 },
      [exec('E1', 4, 100, 4), exec('E2', 6, 101, 10)],
    );
    expect(out.map((f) => f.executionId)).toEqual(['E1']);
  });
});

describe('trade lifecycle', () => {
  it('every outcome is a ledger status (the CHECK constraint lists exactly these)', () => {
    for (const o of TRADE_OUTCOMES) expect(LEDGER_TRADE_STATUSES).toContain(o);
  });
  it('maps each way a trade ends to one phase, outcome and reason', () => {
    const partial = order({ status: 'canceled', filledQty: 4 });
    expect(tradeEnd(order(), { kind: 'broker_final' })).toEqual({
      phase: 'FILLED',
      outcome: 'FILLED',
      reasonCode: null,
    });
    expect(tradeEnd(partial, { kind: 'deadline' })).toMatchObject({
      phase: 'EXPIRED_PARTIAL',
      outcome: 'PARTIALLY_FILLED',
    });
    expect(tradeEnd(partial, { kind: 'broker_final' })).toMatchObject({ outcome: 'PARTIALLY_FILLED' });
    expect(tradeEnd(null, { kind: 'broker_rejected' })).toMatchObject({ outcome: 'BROKER_REJECTED' });
    expect(tradeEnd(partial, { kind: 'user_cancel' })).toMatchObject({
      outcome: 'CANCELLED',
      reasonCode: 'cancelled_by_user',
    });
    expect(tradeEnd(order(), { kind: 'user_cancel' })).toMatchObject({ outcome: 'FILLED' });
    expect(tradeEnd(null, { kind: 'unresolved', reasonCode: 'x' })).toMatchObject({
      phase: 'NEEDS_REVIEW',
      outcome: 'NEEDS_REVIEW',
    });
    expect(tradeEnd(null, { kind: 'gave_up', reasonCode: 'risk_unavailable' })).toMatchObject({
      phase: 'FAILED',
      outcome: 'FAILED',
      reasonCode: 'risk_unavailable',
    });
  });
});
