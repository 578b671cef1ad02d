import { describe, expect, it } from 'vitest';
import { OrderUpdateMerger } from '../../src/adapters/brokers/alpaca/update-merge';
import type { BrokerOrder, OrderStatus } from '../../src/contracts/order';

/** The exactly-once rules for fills coming from a lossy, duplicating stream plus REST polling. */

const T = '2024-05-01T14:30:00Z';
function order(filledQty: number, avg: number | null, status: OrderStatus, qty = 100): BrokerOrder {
  return {
    brokerOrderId: 'B1',
    clientOrderId: 'C1',
    symbol: 'NVDA',
    side: 'buy',
    qty,
    type: 'limit',
    timeInForce: 'day',
    status,
    filledQty,
    filledAvgPrice: avg,
    limitPrice: 105,
    createdAt: T,
    updatedAt: T,
  };
}
const f = (executionId: string, qty: number, price: number) => ({ executionId, qty, price, fee: 0, timestamp: T });

describe('OrderUpdateMerger', () => {
  it('drops a replayed execution id and anything after the terminal fill', () => {
    const r = new OrderUpdateMerger();
    r.seed('C1');
    expect(r.fromStream('new', order(0, null, 'new'), undefined, T)).toHaveLength(1);
    expect(r.fromStream('new', order(0, null, 'new'), undefined, T)).toHaveLength(0);
    const a = r.fromStream('partial_fill', order(40, 100, 'partially_filled'), f('E1', 40, 100), T);
    expect(a.map((u) => [u.event, u.fill?.qty, u.order.filledQty])).toEqual([['partial_fill', 40, 40]]);
    expect(r.fromStream('partial_fill', order(40, 100, 'partially_filled'), f('E1', 40, 100), T)).toHaveLength(0);
    const b = r.fromStream('fill', order(100, 101.2, 'filled'), f('E2', 60, 102), T);
    expect(b.map((u) => [u.event, u.fill?.qty, u.fill?.price, u.fill?.executionId])).toEqual([['fill', 60, 102, 'E2']]);
    expect(r.fromStream('fill', order(100, 101.2, 'filled'), f('E2', 60, 102), T)).toHaveLength(0);
    expect(r.fromStream('canceled', order(100, 101.2, 'canceled'), undefined, T)).toHaveLength(0);
    expect(r.isTerminal('C1')).toBe(true);
  });

  it('a poll that got there first makes the later stream event for the same shares a no-op', () => {
    const r = new OrderUpdateMerger();
    r.seed('C1');
    const polled = r.fromSnapshot(order(40, 100, 'partially_filled'), T);
    expect(polled).toHaveLength(1);
    expect(polled[0]!.fill).toMatchObject({ executionId: 'B1:cum:40', qty: 40, price: 100 });
    expect(polled[0]!.event).toBe('partial_fill');
    // The real event for those 40 shares arrives late (different execution id): not emitted again.
    expect(r.fromStream('partial_fill', order(40, 100, 'partially_filled'), f('E1', 40, 100), T)).toHaveLength(0);
    // The next real fill is emitted with its own id and the right per-fill quantity.
    const next = r.fromStream('fill', order(100, 101.2, 'filled'), f('E2', 60, 102), T);
    expect(next.map((u) => [u.fill?.executionId, u.fill?.qty, u.order.filledQty])).toEqual([['E2', 60, 100]]);
    expect(r.emittedQty('C1')).toBe(100);
  });

  it('a lost stream event is reported as a synthetic gap fill before the next real one', () => {
    const r = new OrderUpdateMerger();
    r.seed('C1');
    // E1 (30 @ 100) was lost; E2 (20 @ 103) arrives with cumulative 50, avg (3000 + 2060) / 50 = 101.2.
    const out = r.fromStream('partial_fill', order(50, 101.2, 'partially_filled'), f('E2', 20, 103), T);
    expect(out.map((u) => [u.fill?.executionId, u.fill?.qty, u.order.filledQty, u.order.status])).toEqual([
      ['B1:cum:30', 30, 30, 'partially_filled'],
      ['E2', 20, 50, 'partially_filled'],
    ]);
    expect(out[0]!.fill!.price).toBeCloseTo(100, 6);
    expect(out[1]!.fill!.price).toBe(103);
    expect(out[0]!.order.filledAvgPrice).toBeCloseTo(100, 6);
  });

  it('a terminal event that reveals unreported shares reports them first', () => {
    const r = new OrderUpdateMerger();
    r.seed('C1');
    const out = r.fromStream('canceled', order(25, 99, 'canceled'), undefined, T);
    expect(out.map((u) => [u.event, u.fill?.qty])).toEqual([
      ['partial_fill', 25],
      ['canceled', undefined],
    ]);
    expect(out[0]!.fill!.price).toBe(99);
  });

  it('polling reports a cumulative jump as one fill and the terminal state once', () => {
    const r = new OrderUpdateMerger();
    r.seed('C1');
    expect(r.fromSnapshot(order(0, null, 'new'), T).map((u) => u.event)).toEqual(['new']);
    expect(r.fromSnapshot(order(0, null, 'new'), T)).toHaveLength(0);
    const out = r.fromSnapshot(order(100, 100.5, 'filled'), T);
    expect(out.map((u) => [u.event, u.fill?.qty, u.fill?.price])).toEqual([['fill', 100, 100.5]]);
    expect(r.fromSnapshot(order(100, 100.5, 'filled'), T)).toHaveLength(0);
    expect(r.fromStream('fill', order(100, 100.5, 'filled'), f('E9', 100, 100.5), T)).toHaveLength(0);
  });

  it('a baseline from the ledger is not reported again', () => {
    const r = new OrderUpdateMerger();
    r.seed('C1', { filledQty: 40, filledNotional: 4000 });
    const out = r.fromSnapshot(order(70, 101, 'partially_filled'), T);
    expect(out).toHaveLength(1);
    expect(out[0]!.fill).toMatchObject({ qty: 30, executionId: 'B1:cum:70' });
    expect(out[0]!.fill!.price).toBeCloseTo((70 * 101 - 4000) / 30, 6);
  });

  it('every emitted fill has a distinct cumulative quantity (ledger UNIQUE(client_order_id, cum_qty))', () => {
    const r = new OrderUpdateMerger();
    r.seed('C1');
    const all = [
      ...r.fromSnapshot(order(10, 100, 'partially_filled'), T),
      ...r.fromStream('partial_fill', order(10, 100, 'partially_filled'), f('E1', 10, 100), T),
      ...r.fromStream('partial_fill', order(35, 100, 'partially_filled'), f('E3', 5, 100), T),
      ...r.fromSnapshot(order(35, 100, 'partially_filled'), T),
      ...r.fromStream('fill', order(100, 100, 'filled'), f('E4', 65, 100), T),
    ].filter((u) => u.fill);
    const cums = all.map((u) => u.order.filledQty);
    expect(new Set(cums).size).toBe(cums.length);
    expect(all.reduce((s, u) => s + u.fill!.qty, 0)).toBe(100);
  });

  it('an order first seen on the stream (not placed here) trusts what came before', () => {
    const r = new OrderUpdateMerger();
    const out = r.fromStream('partial_fill', order(50, 100, 'partially_filled'), f('E7', 20, 100), T);
    expect(out.map((u) => u.fill?.qty)).toEqual([20]);
  });

  it('forgets the oldest finished orders beyond its capacity, never open ones', () => {
    const r = new OrderUpdateMerger(2);
    r.seed('open');
    for (const id of ['a', 'b', 'c']) {
      r.fromSnapshot({ ...order(100, 100, 'filled'), clientOrderId: id }, T);
    }
    expect(r.has('open')).toBe(true);
    expect(r.has('a')).toBe(false);
    expect(r.has('c')).toBe(true);
  });
});
