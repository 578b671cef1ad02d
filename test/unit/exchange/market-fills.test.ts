import { describe, expect, it } from 'vitest';
import { Harness, nvda2008 } from './support';

/**
 * Market orders on real NVDA daily bars (2008-06-20 .. 2008-07-15), default fill model:
 * slippage 5 bps adverse, $0.005/share, latency 1 bar, 10% of bar volume.
 */
describe('market orders: no look-ahead, slippage and fee arithmetic', () => {
  it('a market buy submitted after bar N fills at bar N+1 open + 5 bps, never on bar N', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-23'); // bar N: O 19.91 H 19.93 L 19.18 C 19.35 — already known at submit
    const r = h.submit({ clientOrderId: 'mkt-1', qty: 100 });
    expect(r.order.status).toBe('new');
    expect(h.ex.onBar(h.bars[1]!)).toEqual([]); // re-delivery of bar N: ignored, no fill on known data

    const updates = h.next(); // bar N+1 2008-06-24: O 19.24 H 20.45 L 19.24
    expect(updates).toHaveLength(1);
    const u = updates[0]!;
    expect(u.event).toBe('fill');
    expect(u.fill!.price).toBeCloseTo(19.24962, 10); // 19.24 × 1.0005
    expect(u.fill!.fee).toBeCloseTo(0.5, 12); // 100 × $0.005
    expect(u.fill!.timestamp).toBe('2008-06-24T00:00:00.000Z');
    expect(u.fill!.executionId).toBe(`${r.order.brokerOrderId}-1`);
    expect(u.order.filledQty).toBe(100);
    expect(u.order.filledAvgPrice).toBeCloseTo(19.24962, 10);

    const a = h.ex.account();
    expect(a.cash).toBeCloseTo(100_000 - 1924.962 - 0.5, 9); // 98074.538
    expect(a.equity).toBeCloseTo(98074.538 + 100 * 19.99, 9); // marked at the 06-24 close
    expect(h.ex.position('NVDA')).toMatchObject({ qty: 100, avgEntryPrice: expect.closeTo(19.24962, 10) });
  });

  it('latencyBars 2 skips one more bar: fills at the open of N+2', () => {
    const h = new Harness(nvda2008(), { latencyBars: 2 });
    h.through('2008-06-23');
    h.submit({ clientOrderId: 'mkt-lat' });
    expect(h.next()).toEqual([]); // 06-24: still in transit
    const [u] = h.next(); // 06-25 O 20.299999
    expect(u!.fill!.price).toBeCloseTo(20.3101489995, 10); // 20.299999 × 1.0005 (the file says 20.299999)
  });

  it('fees: per-share plus basis points of notional', () => {
    const h = new Harness(nvda2008(), { feePerShare: 0.005, feeBps: 10 });
    h.through('2008-06-23');
    h.submit({ clientOrderId: 'fees' });
    const [u] = h.next();
    // 100 × 0.005 + 100 × 19.24962 × 10 / 10_000
    expect(u!.fill!.fee).toBeCloseTo(2.424962, 10);
    expect(h.ex.account().cash).toBeCloseTo(100_000 - 1924.962 - 2.424962, 9);
    expect(h.ex.account().feesPaid).toBeCloseTo(2.424962, 10);
  });

  it('slippage is adverse on both sides and clamped into the bar range (no price that never traded)', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'buy' });
    const [buy] = h.next(); // 06-23 O 19.91 → 19.91 × 1.0005
    expect(buy!.fill!.price).toBeCloseTo(19.919955, 10);
    h.submit({ clientOrderId: 'sell', side: 'sell' });
    const [sell] = h.next(); // 06-24 O 19.24 = L 19.24: 19.24 × 0.9995 would be below the low → clamped to 19.24
    expect(sell!.fill!.price).toBe(19.24);
    // Round trip P&L: 100 × (19.24 − 19.919955), fees 2 × 0.50
    expect(h.ex.account().realizedPnl).toBeCloseTo(-67.9955, 9);
    expect(h.ex.account().cash).toBeCloseTo(100_000 - 67.9955 - 1, 9);
    expect(h.ex.positions()).toEqual([]);
  });

  it('zero slippage and zero fees fill exactly at the open', () => {
    const h = new Harness(nvda2008(), { slippageBps: 0, feePerShare: 0 });
    h.through('2008-07-02');
    h.submit({ clientOrderId: 'gap-open' });
    const [u] = h.next(); // 2008-07-03 gap-down open 12.98
    expect(u!.fill).toMatchObject({ price: 12.98, fee: 0, qty: 100 });
  });
});
