import { describe, expect, it } from 'vitest';
import type { OrderRequest } from '../../../src/contracts/order';
import { SimulatedExchange } from '../../../src/domain/exchange';
import { Harness, nvda2008 } from './support';

describe('rejections', () => {
  it('insufficient buying power: a market buy is valued at last close + 3% buffer + commission', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20'); // close 19.76
    const r = h.submit({ clientOrderId: 'too-big', qty: 5000 });
    // 5000 × 19.76 × 1.03 + 5000 × 0.005 = 101,764 + 25
    expect(r.rejection).toEqual({
      code: 'insufficient_buying_power',
      message: 'insufficient buying power: order needs $101789.00, buying power is $100000.00',
    });
    expect(r.order).toMatchObject({ status: 'rejected', reason: r.rejection!.message, filledQty: 0 });
    expect(h.events.map((u) => u.event)).toEqual(['rejected']);
    expect(h.ex.getOrder('too-big')!.status).toBe('rejected');
    expect(h.next()).toEqual([]); // never works
  });

  it('open buy limits reserve buying power until cancelled', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    expect(h.submit({ clientOrderId: 'a', qty: 5000, type: 'limit', limitPrice: 19 }).rejection).toBeUndefined();
    expect(h.ex.account()).toMatchObject({ reservedCash: 95025, buyingPower: 4975, cash: 100_000 }); // 5000 × 19 + 25
    expect(h.submit({ clientOrderId: 'b', qty: 300, type: 'limit', limitPrice: 19 }).rejection!.message).toBe(
      'insufficient buying power: order needs $5701.50, buying power is $4975.00',
    );
    h.ex.cancel('a', h.now);
    expect(h.ex.account()).toMatchObject({ reservedCash: 0, buyingPower: 100_000 });
  });

  it('a buy that gaps past its reservation is cut to what the cash buys at fill time', () => {
    const h = new Harness(nvda2008(), { startingCash: 2000, marketOrderBufferPct: 0 });
    h.through('2008-06-24'); // close 19.99: 100 × 19.99 + 0.50 = 1999.50 ≤ 2000
    expect(h.submit({ clientOrderId: 'm' }).rejection).toBeUndefined();
    const out = h.next(); // 06-25 opens at 20.299999 → 20.3101489995 + 0.005 fee a share: 98 affordable
    expect(out.map((u) => [u.event, u.order.filledQty])).toEqual([
      ['partial_fill', 98],
      ['canceled', 98],
    ]);
    expect(out[1]!.order.reason).toMatch(/^insufficient buying power at fill time/);
    expect(h.ex.account().cash).toBeCloseTo(2000 - 98 * 20.3101489995 - 0.49, 9);
  });

  it('insufficient qty: sells beyond the long position minus open sells, shorting disabled', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    expect(h.submit({ clientOrderId: 's0', side: 'sell' }).rejection).toEqual({
      code: 'insufficient_qty',
      message: 'insufficient qty available for order (requested: 100, available: 0)',
    });
    h.submit({ clientOrderId: 'buy' });
    h.next();
    expect(
      h.submit({ clientOrderId: 's1', side: 'sell', qty: 60, type: 'stop', stopPrice: 15 }).rejection,
    ).toBeUndefined();
    expect(
      h.submit({ clientOrderId: 's2', side: 'sell', qty: 50, type: 'limit', limitPrice: 25 }).rejection!.message,
    ).toBe('insufficient qty available for order (requested: 50, available: 40)');
  });

  it('unknown symbols, configured symbols without data, halted symbols', () => {
    const h = new Harness(nvda2008(), { symbols: ['AAPL'] });
    h.through('2008-06-20');
    expect(h.submit({ clientOrderId: 'u', symbol: 'ZZZZ' }).rejection).toEqual({
      code: 'unknown_symbol',
      message: 'unknown symbol: ZZZZ',
    });
    expect(h.submit({ clientOrderId: 'nd', symbol: 'AAPL' }).rejection!.code).toBe('no_market_data');
    expect(
      h.submit({ clientOrderId: 'aapl-lmt', symbol: 'AAPL', type: 'limit', limitPrice: 100 }).rejection,
    ).toBeUndefined();
    expect(h.ex.knownSymbols()).toEqual(['AAPL', 'NVDA']);

    h.submit({ clientOrderId: 'working' });
    h.submit({ clientOrderId: 'ioc', qty: 1, timeInForce: 'ioc' });
    h.ex.halt('NVDA');
    expect(h.submit({ clientOrderId: 'h', qty: 1 }).rejection).toEqual({
      code: 'symbol_halted',
      message: 'trading in NVDA is halted',
    });
    // 06-23: halted — the gtc order waits, the ioc cannot
    expect(h.next().map((u) => [u.order.clientOrderId, u.event, u.order.reason])).toEqual([
      ['ioc', 'canceled', 'ioc: NVDA halted on the first eligible bar'],
    ]);
    h.ex.resume('NVDA');
    const [u] = h.next(); // 06-24
    expect(u!.order.clientOrderId).toBe('working');
    expect(u!.fill!.price).toBeCloseTo(19.24962, 10);
  });

  const base: OrderRequest = {
    clientOrderId: 'x',
    symbol: 'NVDA',
    side: 'buy',
    qty: 10,
    type: 'market',
    timeInForce: 'gtc',
  };
  it.each<[string, Partial<OrderRequest>, string]>([
    ['qty 0', { qty: 0 }, 'qty must be a positive whole number of shares, got 0'],
    ['negative qty', { qty: -5 }, 'qty must be a positive whole number of shares, got -5'],
    ['fractional qty', { qty: 1.5 }, 'qty must be a positive whole number of shares, got 1.5'],
    ['limit without price', { type: 'limit' }, 'limit_price is required for limit orders and must be > 0'],
    ['stop without price', { type: 'stop' }, 'stop_price is required for stop orders and must be > 0'],
    [
      'stop_limit without limit',
      { type: 'stop_limit', stopPrice: 20 },
      'limit_price is required for stop_limit orders and must be > 0',
    ],
    [
      'trailing with both',
      { type: 'trailing_stop', trailPrice: 1, trailPercent: 2 },
      'trailing_stop needs exactly one of trail_price or trail_percent',
    ],
    ['trailing 100%', { type: 'trailing_stop', trailPercent: 100 }, 'trail_percent must be in (0, 100)'],
    [
      'ioc stop',
      { type: 'stop', stopPrice: 20, timeInForce: 'ioc' },
      'time_in_force ioc is only accepted for market and limit orders',
    ],
    [
      'bracket ioc',
      { orderClass: 'bracket', timeInForce: 'ioc', takeProfit: { limitPrice: 25 }, stopLoss: { stopPrice: 15 } },
      'bracket orders must be day or gtc',
    ],
    [
      'bracket without stop',
      { orderClass: 'bracket', takeProfit: { limitPrice: 25 } },
      'bracket requires stop_loss.stop_price > 0',
    ],
    [
      'bracket tp below sl',
      { orderClass: 'bracket', takeProfit: { limitPrice: 15 }, stopLoss: { stopPrice: 25 } },
      'bracket buy: take_profit.limit_price 15 must be above stop_loss.stop_price 25',
    ],
    [
      'bracket sl above market',
      { orderClass: 'bracket', takeProfit: { limitPrice: 25 }, stopLoss: { stopPrice: 20 } },
      'bracket buy: take_profit.limit_price 25 must be above and stop_loss.stop_price 20 below the base price 19.76',
    ],
    ['legs without bracket', { stopLoss: { stopPrice: 15 } }, 'take_profit/stop_loss require order_class bracket'],
    ['client id too long', { clientOrderId: 'c'.repeat(49) }, 'client_order_id must be at most 48 characters'],
    ['bad side', { side: 'short' as never }, 'side must be buy or sell, got short'],
  ])('invalid order: %s', (_name, patch, message) => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    const r = h.ex.submit({ ...base, ...patch }, h.now);
    expect(r.rejection).toEqual({ code: 'invalid_order', message });
    expect(r.order.status).toBe('rejected');
  });

  it('a request without a client order id is refused and not stored', () => {
    const ex = new SimulatedExchange();
    const r = ex.submit({ ...base, clientOrderId: '' }, '2008-06-20T00:00:00.000Z');
    expect(r.rejection).toEqual({ code: 'invalid_order', message: 'client_order_id is required' });
    expect(ex.listOrders()).toEqual([]);
  });
});

describe('idempotent submit by client order id', () => {
  it('a second submit returns the existing order and creates nothing', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    const first = h.submit({ clientOrderId: 'once' });
    const again = h.submit({ clientOrderId: 'once', qty: 999, side: 'sell' }); // even with a different payload
    expect(again.duplicate).toBe(true);
    expect(again.order).toEqual(first.order);
    expect(h.ex.listOrders()).toHaveLength(1);
    expect(h.events.map((u) => u.event)).toEqual(['new']);
    h.next();
    const afterFill = h.submit({ clientOrderId: 'once' });
    expect(afterFill.order).toMatchObject({
      status: 'filled',
      filledQty: 100,
      brokerOrderId: first.order.brokerOrderId,
    });
    expect(h.next()).toEqual([]);
    expect(h.ex.fills()).toHaveLength(1);
  });

  it('a rejected id stays rejected (same answer, no second order, no second event)', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'r', qty: 0 });
    const again = h.submit({ clientOrderId: 'r', qty: 10 });
    expect(again).toMatchObject({
      duplicate: true,
      rejection: { code: 'invalid_order' },
      order: { status: 'rejected' },
    });
    expect(h.events.map((u) => u.event)).toEqual(['rejected']);
  });

  it('a bracket whose leg ids are taken is refused', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'x-tp', type: 'limit', limitPrice: 10 });
    const r = h.submit({
      clientOrderId: 'x',
      orderClass: 'bracket',
      takeProfit: { limitPrice: 25 },
      stopLoss: { stopPrice: 15 },
    });
    expect(r.rejection).toEqual({ code: 'invalid_order', message: 'bracket leg id x-tp is already in use' });
  });

  it('cancel is idempotent and unknown ids give null', () => {
    const h = new Harness(nvda2008());
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'c', type: 'limit', limitPrice: 10 });
    const a = h.ex.cancel('c', h.now);
    const b = h.ex.cancel('c', '2030-01-01T00:00:00.000Z');
    expect(b).toEqual(a);
    expect(h.events.map((u) => u.event)).toEqual(['new', 'canceled']);
    expect(h.ex.cancel('nope', h.now)).toBeNull();
  });
});

describe('account and positions', () => {
  it('short sale and cover (allowShort): signed qty, short liability, realised P&L', () => {
    const h = new Harness(nvda2008(), { allowShort: true });
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'short', side: 'sell' });
    h.next(); // 06-23: sold 100 at 19.91 × 0.9995 = 19.900045; close 19.35
    expect(h.ex.position('NVDA')).toMatchObject({
      qty: -100,
      avgEntryPrice: expect.closeTo(19.900045, 10),
      marketValue: expect.closeTo(-1935, 9),
    });
    const a = h.ex.account();
    expect(a.cash).toBeCloseTo(100_000 + 1990.0045 - 0.5, 9);
    expect(a.equity).toBeCloseTo(101_989.5045 - 1935, 9);
    expect(a.buyingPower).toBeCloseTo(101_989.5045 - 1935, 9);
    h.submit({ clientOrderId: 'cover' });
    h.next(); // 06-24: bought back at 19.24 × 1.0005 = 19.24962
    expect(h.ex.account().realizedPnl).toBeCloseTo(100 * (19.900045 - 19.24962), 9);
    expect(h.ex.account().cash).toBeCloseTo(100_000 + 65.0425 - 1, 9);
    expect(h.ex.positions()).toEqual([]);
  });

  it('adds average in; partial sells keep the average and realise P&L on the part sold', () => {
    const h = new Harness(nvda2008(), { slippageBps: 0, feePerShare: 0 });
    h.through('2008-06-20');
    h.submit({ clientOrderId: 'b1' });
    h.next(); // 100 at 19.91
    h.submit({ clientOrderId: 'b2', qty: 300 });
    h.next(); // 300 at 19.24
    expect(h.ex.position('NVDA')!.avgEntryPrice).toBeCloseTo((100 * 19.91 + 300 * 19.24) / 400, 12); // 19.4075
    h.submit({ clientOrderId: 's', side: 'sell', qty: 150 });
    h.next(); // 150 at 20.299999
    expect(h.ex.position('NVDA')).toMatchObject({ qty: 250, avgEntryPrice: expect.closeTo(19.4075, 12) });
    expect(h.ex.account().realizedPnl).toBeCloseTo(150 * (20.299999 - 19.4075), 9);
  });
});
