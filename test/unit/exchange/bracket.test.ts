import { describe, expect, it } from 'vitest';
import { Harness, nvda2008, nvda2013 } from './support';

const ev = (us: { event: string; order: { clientOrderId: string } }[]) =>
  us.map((u) => [u.order.clientOrderId, u.event]);

describe('bracket orders (entry + take-profit limit + stop-loss stop, OCO)', () => {
  it('legs are held until the entry fills; the take-profit fills (gap through 14.00) and cancels the stop-loss', () => {
    const h = new Harness(nvda2013());
    h.through('2013-04-22'); // close 12.59
    const r = h.submit({
      clientOrderId: 'b',
      orderClass: 'bracket',
      takeProfit: { limitPrice: 14 },
      stopLoss: { stopPrice: 12.3 },
    });
    expect(r.order.legs!.map((l) => [l.clientOrderId, l.status, l.type, l.side])).toEqual([
      ['b-tp', 'held', 'limit', 'sell'],
      ['b-sl', 'held', 'stop', 'sell'],
    ]);
    const entry = h.next(); // 04-23: entry fills at 12.70 × 1.0005, then both legs go live
    expect(ev(entry)).toEqual([
      ['b', 'fill'],
      ['b-sl', 'new'],
      ['b-tp', 'new'],
    ]);
    expect(entry[0]!.fill!.price).toBeCloseTo(12.70635, 10);
    // Highs stay below 14 and lows above 12.30 until 05-10, which opens at 14.20.
    expect(h.through('2013-05-09')).toEqual([]);
    const exit = h.next();
    expect(ev(exit)).toEqual([
      ['b-tp', 'fill'],
      ['b-sl', 'canceled'],
    ]);
    expect(exit[0]!.fill!.price).toBe(14.2); // limit crossed by the gap: the open, better than 14.00
    expect(exit[1]!.order.reason).toBe('oco: take_profit leg filled');
    expect(h.ex.account().realizedPnl).toBeCloseTo(100 * (14.2 - 12.70635), 9);
    expect(h.ex.getOrder('b')!.legs!.map((l) => l.status)).toEqual(['filled', 'canceled']);
    expect(h.ex.listOrders({ status: 'open' })).toEqual([]);
  });

  it('the stop-loss fills and cancels the take-profit', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-30'); // close 18.719999
    h.submit({
      clientOrderId: 'b',
      orderClass: 'bracket',
      takeProfit: { limitPrice: 20 },
      stopLoss: { stopPrice: 18.1 },
    });
    h.next(); // 07-01 entry at 18.50 × 1.0005
    const out = h.next(); // 07-02 O 18.66 L 18.00 ≤ 18.10
    expect(ev(out)).toEqual([
      ['b-sl', 'fill'],
      ['b-tp', 'canceled'],
    ]);
    expect(out[0]!.fill!.price).toBeCloseTo(18.09095, 10); // 18.10 × 0.9995
    expect(out[1]!.order.reason).toBe('oco: stop_loss leg filled');
    expect(h.ex.positions()).toEqual([]);
  });

  it('both legs reachable inside one bar: the stop-loss is assumed first (unknown intrabar path)', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-23');
    // Limit entry: base price 20.00, so TP 20.40 above and SL 19.80 below are valid.
    h.submit({
      clientOrderId: 'b',
      type: 'limit',
      limitPrice: 20,
      orderClass: 'bracket',
      takeProfit: { limitPrice: 20.4 },
      stopLoss: { stopPrice: 19.8 },
    });
    expect(h.next()[0]!.fill!.price).toBe(19.24); // 06-24 opens below the entry limit
    const out = h.next(); // 06-25 O 20.299999 H 20.450001 L 19.780001: through 20.40 and through 19.80
    expect(ev(out)).toEqual([
      ['b-sl', 'fill'],
      ['b-tp', 'canceled'],
    ]);
    expect(out[0]!.fill!.price).toBeCloseTo(19.7901, 10); // 19.80 × 0.9995
  });

  it('…unless the bar opens through the take-profit: the open is provably first', () => {
    const h = new Harness(nvda2013());
    h.through('2013-05-20'); // close 14.84
    h.submit({
      clientOrderId: 'b',
      orderClass: 'bracket',
      takeProfit: { limitPrice: 14.9 },
      stopLoss: { stopPrice: 14.4 },
    });
    h.next(); // 05-21 entry at 14.85 × 1.0005
    const out = h.next(); // 05-22 O 14.98 ≥ 14.90, later L 14.34 ≤ 14.40
    expect(ev(out)).toEqual([
      ['b-tp', 'fill'],
      ['b-sl', 'canceled'],
    ]);
    expect(out[0]!.fill!.price).toBe(14.98);
  });

  it('an unfilled day entry expires and takes its held legs with it', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    h.submit({
      clientOrderId: 'b',
      type: 'limit',
      limitPrice: 19,
      timeInForce: 'day',
      orderClass: 'bracket',
      takeProfit: { limitPrice: 20 },
      stopLoss: { stopPrice: 18.5 },
    });
    const out = h.next(); // 06-23 L 19.18 > 19
    expect(ev(out)).toEqual([
      ['b', 'expired'],
      ['b-sl', 'canceled'],
      ['b-tp', 'canceled'],
    ]);
    expect(out[1]!.order.reason).toBe('bracket entry expired unfilled');
  });

  it('a partly filled entry that is cancelled releases legs sized to the filled quantity', () => {
    const h = new Harness(nvda2008(), { maxVolumePct: 0.0001, startingCash: 1_000_000 });
    h.through('2008-06-20'); // close 19.76
    h.submit({
      clientOrderId: 'b',
      qty: 5000,
      orderClass: 'bracket',
      takeProfit: { limitPrice: 21 },
      stopLoss: { stopPrice: 18 },
    });
    expect(h.next().map((u) => u.order.filledQty)).toEqual([1941]); // 06-23 cap
    h.ex.cancel('b', h.now);
    expect(h.ex.getOrder('b')!.legs!.map((l) => [l.status, l.qty])).toEqual([
      ['new', 1941],
      ['new', 1941],
    ]);
    // Lows reach 18.00 on 07-02 (cap 1907 of V 19,079,900): 18 × 0.9995 would be below the bar's low, so the
    // slipped price is clamped to 18.00. The rest sells at the 07-03 gap open.
    const out = h.through('2008-07-03');
    expect(out.map((u) => [u.order.clientOrderId, u.event, u.fill?.qty, u.fill?.price])).toEqual([
      ['b-sl', 'partial_fill', 1907, 18],
      ['b-tp', 'canceled', undefined, undefined],
      ['b-sl', 'fill', 34, expect.closeTo(12.97351, 10)],
    ]);
    expect(h.ex.positions()).toEqual([]);
  });

  it('cancelling a filled entry cancels its open legs', () => {
    const h = new Harness(nvda2013());
    h.through('2013-04-22');
    h.submit({
      clientOrderId: 'b',
      orderClass: 'bracket',
      takeProfit: { limitPrice: 14 },
      stopLoss: { stopPrice: 12.3 },
    });
    h.next();
    const o = h.ex.cancel('b', h.now);
    expect(o!.status).toBe('filled');
    expect(o!.legs!.map((l) => l.status)).toEqual(['canceled', 'canceled']);
    expect(h.ex.position('NVDA')!.qty).toBe(100);
  });
});
