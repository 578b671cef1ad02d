import { describe, expect, it } from 'vitest';
import { Harness, nvda2008, nvda2013, orcl2011 } from './support';

/**
 * Every order type against real daily bars. Prices below are the literal CSV values; expected fills are
 * worked out by hand from them (5 bps slippage on market/stop fills, none on limit fills).
 */
describe('limit orders', () => {
  it('fills at the limit when the bar trades through it', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'lmt', type: 'limit', limitPrice: 19.3 });
    const [u] = h.next(); // 06-23 O 19.91 L 19.18 < 19.30
    expect(u!.event).toBe('fill');
    expect(u!.fill!.price).toBe(19.3);
  });

  it('a limit crossed by a gap fills at the open (better than the limit)', () => {
    const h = new Harness(nvda2008());
    h.through('2008-07-02'); // close 18.030001
    h.submit({ clientOrderId: 'lmt-gap', type: 'limit', limitPrice: 13.5 });
    const [u] = h.next(); // 07-03 gap-down open 12.98
    expect(u!.fill!.price).toBe(12.98);
  });

  it('waits while the market stays away from the limit (gtc keeps working)', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'lmt-wait', type: 'limit', limitPrice: 19.0 });
    // lows: 06-23 19.18, 06-24 19.24, 06-25 19.780001, 06-26 19.07 — all above 19.00
    expect(h.next(4)).toEqual([]);
    const [u] = h.next(); // 06-27 O 19.15 L 18.709999
    expect(u!.fill).toMatchObject({ price: 19.0, timestamp: '2008-06-27T00:00:00.000Z' });
  });

  it('a bar that only touches the limit fills with limitTouchFillProbability (default 1)', () => {
    const filled = new Harness(nvda2008());
    filled.through('2008-06-20');
    filled.submit({ clientOrderId: 'touch', type: 'limit', limitPrice: 19.18 });
    expect(filled.next()[0]!.fill!.price).toBe(19.18); // 06-23 low is exactly 19.18

    const missed = new Harness(nvda2008(), { limitTouchFillProbability: 0 });
    missed.through('2008-06-20');
    missed.submit({ clientOrderId: 'touch', type: 'limit', limitPrice: 19.18 });
    expect(missed.next()).toEqual([]); // queue never reached us
    expect(missed.ex.getOrder('touch')!.status).toBe('new');
  });
});

describe('stop orders', () => {
  it('a sell stop triggered by the 2008-07-03 NVDA gap-down fills at the open, far below the stop', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-30');
    h.submit({ clientOrderId: 'entry' });
    h.next(); // 07-01: bought 100 at 18.50 × 1.0005 = 18.50925
    h.submit({ clientOrderId: 'stop', side: 'sell', type: 'stop', stopPrice: 17 });
    expect(h.next()).toEqual([]); // 07-02 L 18.00 > 17
    const [u] = h.next(); // 07-03 O 12.98 (prev close 18.030001)
    expect(u!.event).toBe('fill');
    expect(u!.fill!.price).toBeCloseTo(12.97351, 10); // open 12.98 × 0.9995, not 17
    expect(u!.order.stopPrice).toBe(17);
    const a = h.ex.account();
    expect(a.realizedPnl).toBeCloseTo(100 * (12.97351 - 18.50925), 9); // -553.574
    expect(a.cash).toBeCloseTo(100_000 - 1850.925 - 0.5 + 1297.351 - 0.5, 9);
    expect(h.ex.positions()).toEqual([]);
  });

  it('ORCL: one sell stop triggers intrabar at its stop, another waits for the 2011-12-21 gap', () => {
    const h = new Harness(orcl2011());
    h.through('2011-12-12');
    h.submit({ clientOrderId: 'entry', qty: 200 });
    h.through('2011-12-14'); // bought 200 at 31.690001 × 1.0005 on 12-13
    h.submit({ clientOrderId: 'stop-29', side: 'sell', type: 'stop', stopPrice: 29 });
    h.submit({ clientOrderId: 'stop-28', side: 'sell', type: 'stop', stopPrice: 28 });
    const [a] = h.next(); // 12-15 O 30.139999 L 28.809999: trades through 29 (no gap)
    expect(a!.order.clientOrderId).toBe('stop-29');
    expect(a!.fill!.price).toBeCloseTo(28.9855, 10); // 29 × 0.9995
    // lows 28.959999, 28.50, 28.870001 stay above 28; 12-21 opens at 25.67
    const later = h.through('2011-12-21');
    expect(later).toHaveLength(1);
    expect(later[0]!.fill).toMatchObject({
      price: expect.closeTo(25.657165, 10),
      timestamp: '2011-12-21T00:00:00.000Z',
    });
  });

  it('a buy stop triggers when the bar trades up through it', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-23'); // close 19.35
    h.submit({ clientOrderId: 'buy-stop', type: 'stop', stopPrice: 20 });
    const [u] = h.next(); // 06-24 O 19.24 H 20.450001
    expect(u!.fill!.price).toBeCloseTo(20.01, 10); // 20 × 1.0005
  });
});

describe('stop-limit orders', () => {
  it('buy stop-limit: marketable on trigger, fills at the trigger price without slippage', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-23');
    h.submit({ clientOrderId: 'sl', type: 'stop_limit', stopPrice: 20, limitPrice: 20.05 });
    expect(h.next()[0]!.fill!.price).toBe(20);
  });

  it('sell stop-limit gapped through both stop and limit: triggered but unfilled (price protection)', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-30');
    h.submit({ clientOrderId: 'entry' });
    h.next();
    h.submit({ clientOrderId: 'stp-lmt', side: 'sell', type: 'stop_limit', stopPrice: 17, limitPrice: 16.5 });
    expect(h.rest()).toEqual([]); // never trades back to 16.50 after the gap
    expect(h.ex.getOrder('stp-lmt')).toMatchObject({ status: 'new', filledQty: 0 });
    expect(h.ex.position('NVDA')!.qty).toBe(100);
  });

  it('gapped below the stop, the rest of the bar trades back up through the limit: fills at the limit', () => {
    const h = new Harness(orcl2011());
    h.through('2011-12-12');
    h.submit({ clientOrderId: 'entry' });
    h.through('2011-12-20');
    h.submit({ clientOrderId: 'stp-lmt', side: 'sell', type: 'stop_limit', stopPrice: 28, limitPrice: 25.8 });
    const [u] = h.next(); // 12-21 O 25.67 < 25.80 < H 25.99
    expect(u!.fill!.price).toBe(25.8);
  });
});

describe('trailing stops', () => {
  it('sell trail $0.50 follows the NVDA 2013 rally bar by bar and triggers on the 2013-05-22 pullback', () => {
    const h = new Harness(nvda2013());
    h.through('2013-04-22');
    h.submit({ clientOrderId: 'entry' });
    h.next(); // 04-23: bought at 12.70 × 1.0005, close 12.92
    const r = h.submit({ clientOrderId: 'trail', side: 'sell', type: 'trailing_stop', trailPrice: 0.5 });
    expect(r.order).toMatchObject({ hwm: 12.92, stopPrice: expect.closeTo(12.42, 10) });

    h.through('2013-05-07'); // low 13.52 just above the stop 13.97 − 0.50 = 13.47
    expect(h.ex.getOrder('trail')).toMatchObject({ status: 'new', hwm: 13.97, stopPrice: expect.closeTo(13.47, 10) });
    expect(h.through('2013-05-21')).toEqual([]);
    expect(h.ex.getOrder('trail')).toMatchObject({ hwm: 14.98, stopPrice: expect.closeTo(14.48, 10) });

    const [u] = h.next(); // 05-22 O 14.98 L 14.34 ≤ 14.48
    expect(u!.event).toBe('fill');
    expect(u!.fill!.price).toBeCloseTo(14.47276, 10); // 14.48 × 0.9995
    expect(h.ex.account().realizedPnl).toBeCloseTo(100 * (14.47276 - 12.70635), 9);
  });

  it('sell trail 3%: stop = 97% of the high-water mark, triggers on 2013-05-07', () => {
    const h = new Harness(nvda2013());
    h.through('2013-04-22');
    h.submit({ clientOrderId: 'entry' });
    h.next();
    h.submit({ clientOrderId: 'trail', side: 'sell', type: 'trailing_stop', trailPercent: 3 });
    const out = h.through('2013-05-07');
    expect(out).toHaveLength(1);
    expect(out[0]!.fill).toMatchObject({
      timestamp: '2013-05-07T00:00:00.000Z',
      price: expect.closeTo(13.5509 * 0.9995, 10),
    }); // hwm 13.97 × 0.97
  });

  it('buy trail $0.50 follows the low after the ORCL gap and triggers on the rebound', () => {
    const h = new Harness(orcl2011());
    h.through('2011-12-21'); // close 25.77
    h.submit({ clientOrderId: 'trail-buy', type: 'trailing_stop', trailPrice: 0.5 });
    expect(h.next()).toEqual([]); // 12-22 H 25.870001 < 26.27; low-water mark → 25.379999
    expect(h.ex.getOrder('trail-buy')).toMatchObject({ hwm: 25.379999, stopPrice: expect.closeTo(25.879999, 10) });
    const [u] = h.next(); // 12-23 O 25.799999 H 26.08
    expect(u!.fill!.price).toBeCloseTo(25.879999 * 1.0005, 10);
  });
});
