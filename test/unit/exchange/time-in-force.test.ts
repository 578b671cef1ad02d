import { describe, expect, it } from 'vitest';
import { Harness, futures2006, nvda2008 } from './support';

describe('day orders on daily bars', () => {
  it('work for exactly one session (the first eligible bar) and the remainder expires after it', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'day', type: 'limit', limitPrice: 19, timeInForce: 'day' });
    h.submit({ clientOrderId: 'gtc', type: 'limit', limitPrice: 19, timeInForce: 'gtc' });
    const out = h.next(); // 06-23 L 19.18: neither fills; the day order's session is over
    expect(out.map((u) => [u.order.clientOrderId, u.event])).toEqual([['day', 'expired']]);
    expect(out[0]!.timestamp).toBe('2008-06-23T00:00:00.000Z');
    expect(out[0]!.order.reason).toBe('day order expired at the close of 2008-06-23');
    // 06-27 (L 18.709999) would have filled it; only the gtc twin is still there to fill.
    const later = h.through('2008-06-27');
    expect(later.map((u) => [u.order.clientOrderId, u.event])).toEqual([['gtc', 'fill']]);
  });

  it('a day order that fills on its session is simply filled', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-26');
    h.submit({ clientOrderId: 'day', type: 'limit', limitPrice: 19, timeInForce: 'day' });
    expect(h.next().map((u) => u.event)).toEqual(['fill']);
  });
});

describe('day orders on intraday bars (index future, 1-minute)', () => {
  it('expire when the first bar of the next trading day arrives, before that bar is matched', () => {
    const h = new Harness(futures2006(), { barPeriod: 'intraday', startingCash: 1_000_000 });
    h.through('2006-01-02T19:55'); // 2006-01-02 trades 3617-3619 to the end of the session
    h.submit({ clientOrderId: 'day-stop', type: 'stop', stopPrice: 3621, qty: 1, timeInForce: 'day' });
    h.submit({ clientOrderId: 'gtc-stop', type: 'stop', stopPrice: 3621, qty: 1, timeInForce: 'gtc' });
    expect(h.through('2006-01-02T20:04')).toEqual([]);
    const out = h.next(); // 2006-01-03 09:01 O 3623 H 3625: would trigger both
    expect(out.map((u) => [u.order.clientOrderId, u.event])).toEqual([
      ['day-stop', 'expired'],
      ['gtc-stop', 'fill'],
    ]);
    expect(out[0]!.timestamp).toBe('2006-01-03T09:01:00.000Z');
    expect(out[0]!.order.reason).toBe('day order expired at the close of 2006-01-02');
    expect(out[1]!.fill!.price).toBeCloseTo(3624.8115, 9); // gapped over the stop: open 3623 × 1.0005
  });

  it('keep working across bars of the same day; expireDayOrders closes a session explicitly', () => {
    const h = new Harness(futures2006(), { barPeriod: 'intraday', startingCash: 1_000_000 });
    h.through('2006-01-03T09:01');
    h.submit({ clientOrderId: 'day-lmt', type: 'limit', limitPrice: 3600, qty: 1, timeInForce: 'day' });
    expect(h.next(5)).toEqual([]);
    expect(h.ex.getOrder('day-lmt')!.status).toBe('new');
    const out = h.ex.expireDayOrders('2006-01-03', '2006-01-03T16:00:00.000Z');
    expect(out.map((u) => [u.event, u.timestamp])).toEqual([['expired', '2006-01-03T16:00:00.000Z']]);
  });
});

describe('ioc and fok (1-minute bars, 10% volume cap)', () => {
  it('ioc fills what the next bar allows and cancels the rest', () => {
    const h = new Harness(futures2006(), { startingCash: 1_000_000 });
    h.through('2006-01-02T20:00');
    h.submit({ clientOrderId: 'ioc', qty: 5, timeInForce: 'ioc' });
    const out = h.next(); // 20:01 O 3618 H 3618 V 15 → cap floor(1.5) = 1
    expect(out.map((u) => u.event)).toEqual(['partial_fill', 'canceled']);
    expect(out[0]!.fill).toMatchObject({ qty: 1, price: 3618 }); // 3618 × 1.0005 clamped to the bar high
    expect(out[1]!.order).toMatchObject({ status: 'canceled', filledQty: 1, reason: 'ioc: unfilled remainder' });
    expect(h.ex.position('ES')!.qty).toBe(1);
  });

  it('a non-marketable ioc limit is cancelled without a fill', () => {
    const h = new Harness(futures2006(), { startingCash: 1_000_000 });
    h.through('2006-01-02T20:00');
    h.submit({ clientOrderId: 'ioc-lmt', qty: 1, type: 'limit', limitPrice: 3610, timeInForce: 'ioc' });
    const out = h.next();
    expect(out.map((u) => u.event)).toEqual(['canceled']);
    expect(out[0]!.order.reason).toBe('ioc: not marketable on the first eligible bar');
    expect(h.ex.fills()).toEqual([]);
  });

  it('fok: all or nothing against the next bar', () => {
    const h = new Harness(futures2006(), { startingCash: 1_000_000 });
    h.through('2006-01-02T20:00');
    h.submit({ clientOrderId: 'fok-big', qty: 5, timeInForce: 'fok' });
    const out = h.next(); // 20:01 V 15: only 1 available
    expect(out.map((u) => u.event)).toEqual(['canceled']);
    expect(out[0]!.order.filledQty).toBe(0);
    expect(out[0]!.order.reason).toContain('only 1 of 5 shares available');

    h.submit({ clientOrderId: 'fok-ok', qty: 5, timeInForce: 'fok' });
    const ok = h.next(); // 20:04 O 3617 H 3617 V 107 → cap 10
    expect(ok.map((u) => u.event)).toEqual(['fill']);
    expect(ok[0]!.fill).toMatchObject({ qty: 5, price: 3617 });

    h.submit({ clientOrderId: 'fok-lmt', qty: 1, type: 'limit', limitPrice: 3600, timeInForce: 'fok' });
    expect(h.next().map((u) => [u.event, u.order.reason])).toEqual([
      ['canceled', 'fok: not marketable on the first eligible bar'],
    ]);
  });
});
