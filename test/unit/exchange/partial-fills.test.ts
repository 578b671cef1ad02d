import { describe, expect, it } from 'vitest';
import { Harness, nvda2008 } from './support';

/**
 * Volume cap: all of the venue's orders on a symbol together take at most floor(volume × maxVolumePct) shares per
 * bar. With maxVolumePct = 0.0001 the NVDA 2008 bars allow: 06-23 (V 19,415,400) 1941 shares, 06-24
 * (V 26,973,200) 2697, 06-25 (V 22,524,400) 2252.
 */
const opts = { maxVolumePct: 0.0001, startingCash: 1_000_000 };

describe('partial fills under the volume cap', () => {
  it('a 5000-share market order fills 1941 + 2697 + 362 over three bars at each bar’s open + 5 bps', () => {
    const h = new Harness(nvda2008(), opts);
    h.through('2008-06-20');
    const { order } = h.submit({ clientOrderId: 'big', qty: 5000 });
    const out = h.next(3);
    expect(out.map((u) => [u.event, u.order.status, u.fill!.qty, u.order.filledQty])).toEqual([
      ['partial_fill', 'partially_filled', 1941, 1941],
      ['partial_fill', 'partially_filled', 2697, 4638],
      ['fill', 'filled', 362, 5000],
    ]);
    expect(out.map((u) => u.fill!.price)).toEqual([
      expect.closeTo(19.919955, 10), // 19.91 × 1.0005
      expect.closeTo(19.24962, 10), // 19.24 × 1.0005
      expect.closeTo(20.3101489995, 10), // 20.299999 × 1.0005
    ]);
    // Unique, sequential execution ids; Σ fills = order qty; average consistent with the fills.
    expect(out.map((u) => u.fill!.executionId)).toEqual([1, 2, 3].map((n) => `${order.brokerOrderId}-${n}`));
    const fills = h.ex.fills('big');
    expect(fills.reduce((s, f) => s + f.qty, 0)).toBe(5000);
    expect(out[2]!.order.filledAvgPrice).toBeCloseTo(19.586626346563797, 10);
    expect(out[2]!.order.filledAvgPrice).toBeCloseTo(fills.reduce((s, f) => s + f.qty * f.price, 0) / 5000, 12);
    expect(out.map((u) => u.fill!.fee)).toEqual([
      expect.closeTo(9.705, 12),
      expect.closeTo(13.485, 12),
      expect.closeTo(1.81, 12),
    ]);
    expect(h.ex.account().cash).toBeCloseTo(1_000_000 - 97958.13173281899, 8);
    expect(h.ex.position('NVDA')).toMatchObject({ qty: 5000, avgEntryPrice: expect.closeTo(19.586626346563797, 10) });
  });

  it('orders share the bar’s volume in time priority', () => {
    const h = new Harness(nvda2008(), opts);
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'first', qty: 1500 });
    h.submit({ clientOrderId: 'second', qty: 1000 });
    const bar1 = h.next(); // cap 1941: first takes 1500, second the other 441
    expect(bar1.map((u) => [u.order.clientOrderId, u.fill!.qty])).toEqual([
      ['first', 1500],
      ['second', 441],
    ]);
    const bar2 = h.next();
    expect(bar2.map((u) => [u.order.clientOrderId, u.event, u.fill!.qty])).toEqual([['second', 'fill', 559]]);
    expect(bar2[0]!.order.filledAvgPrice).toBeCloseTo((441 * 19.919955 + 559 * 19.24962) / 1000, 10);
  });

  it('a limit order fills partly at its limit, then the rest at a better open', () => {
    const h = new Harness(nvda2008(), opts);
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'lmt', qty: 3000, type: 'limit', limitPrice: 19.3 });
    const out = h.next(2); // 06-23 trades through 19.30; 06-24 opens at 19.24
    expect(out.map((u) => [u.fill!.qty, u.fill!.price])).toEqual([
      [1941, 19.3],
      [1059, 19.24],
    ]);
    expect(out[1]!.order.filledAvgPrice).toBeCloseTo(19.27882, 10);
  });

  it('a day order keeps its partial fill and the remainder expires with the session', () => {
    const h = new Harness(nvda2008(), opts);
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'day', qty: 5000, timeInForce: 'day' });
    const out = h.next();
    expect(out.map((u) => [u.event, u.order.status, u.order.filledQty])).toEqual([
      ['partial_fill', 'partially_filled', 1941],
      ['expired', 'expired', 1941],
    ]);
    expect(h.next()).toEqual([]);
  });

  it('a cancel after a partial fill keeps the filled shares', () => {
    const h = new Harness(nvda2008(), opts);
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'c', qty: 5000 });
    h.next();
    const o = h.ex.cancel('c', h.now);
    expect(o).toMatchObject({ status: 'canceled', filledQty: 1941, reason: 'canceled by client' });
    expect(h.next()).toEqual([]);
    expect(h.ex.position('NVDA')!.qty).toBe(1941);
  });
});
