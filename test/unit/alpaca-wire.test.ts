import { describe, expect, it } from 'vitest';
import {
  accountFromAlpaca,
  AlpacaWireError,
  eventFromAlpaca,
  executionFromAlpacaActivity,
  feeFromAlpacaActivity,
  isDuplicateClientOrderIdMessage,
  orderFromAlpaca,
  orderRequestToAlpaca,
  positionFromAlpaca,
  statusFromAlpaca,
  toWireNumber,
} from '../../src/adapters/brokers/alpaca/wire';
import {
  activityIdFor,
  eventToAlpaca,
  feeActivityToAlpaca,
  fillActivityToAlpaca,
  orderRequestFromAlpaca,
  orderToAlpaca,
  positionToAlpaca,
} from '../../src/venue/alpaca-compat/wire';
import type { BrokerOrder, OrderRequest } from '../../src/contracts/order';

/** An order as Alpaca sends it (shape from docs.alpaca.markets/reference/orders): every number a string. */
const alpacaOrder = {
  id: '61e69015-8549-4bfd-b9c3-01e75843f47d',
  client_order_id: 'trade-sig-abc',
  created_at: '2024-05-01T14:30:00.123456Z',
  updated_at: '2024-05-01T14:30:05.5Z',
  submitted_at: '2024-05-01T14:30:00.2Z',
  filled_at: null,
  expired_at: null,
  canceled_at: null,
  failed_at: null,
  replaced_at: null,
  replaced_by: null,
  replaces: null,
  asset_id: 'b0b6dd9d-8b9b-48a9-ba46-b9d54906e415',
  symbol: 'NVDA',
  asset_class: 'us_equity',
  notional: null,
  qty: '15',
  filled_qty: '5',
  filled_avg_price: '101.2',
  order_class: 'bracket',
  order_type: 'limit',
  type: 'limit',
  side: 'buy',
  time_in_force: 'gtc',
  limit_price: '101.5',
  stop_price: null,
  status: 'partially_filled',
  extended_hours: false,
  legs: [
    {
      id: 'leg-1',
      client_order_id: 'leg-1-cid',
      created_at: '2024-05-01T14:30:00Z',
      updated_at: '2024-05-01T14:30:00Z',
      symbol: 'NVDA',
      qty: '15',
      filled_qty: '0',
      filled_avg_price: null,
      type: 'stop',
      side: 'sell',
      time_in_force: 'gtc',
      limit_price: null,
      stop_price: '95',
      status: 'held',
      legs: null,
    },
  ],
  trail_percent: null,
  trail_price: null,
  hwm: null,
};

describe('Alpaca order JSON → BrokerOrder', () => {
  it('parses strings to numbers, keeps legs, and nulls stay absent', () => {
    const o = orderFromAlpaca(alpacaOrder);
    expect(o).toMatchObject({
      brokerOrderId: alpacaOrder.id,
      clientOrderId: 'trade-sig-abc',
      symbol: 'NVDA',
      side: 'buy',
      qty: 15,
      type: 'limit',
      timeInForce: 'gtc',
      status: 'partially_filled',
      filledQty: 5,
      filledAvgPrice: 101.2,
      limitPrice: 101.5,
      createdAt: alpacaOrder.created_at,
      updatedAt: alpacaOrder.updated_at,
    });
    expect(o.stopPrice).toBeUndefined();
    expect(o.legs).toHaveLength(1);
    expect(o.legs![0]).toMatchObject({
      side: 'sell',
      type: 'stop',
      stopPrice: 95,
      status: 'held',
      filledAvgPrice: null,
    });
  });

  it('maps the rare Alpaca statuses to non-terminal ones', () => {
    expect(statusFromAlpaca('accepted_for_bidding', 0)).toBe('accepted');
    expect(statusFromAlpaca('stopped', 0)).toBe('new');
    expect(statusFromAlpaca('stopped', 3)).toBe('partially_filled');
    expect(statusFromAlpaca('suspended', 0)).toBe('held');
    expect(statusFromAlpaca('calculated', 10)).toBe('done_for_day');
    expect(statusFromAlpaca('filled', 10)).toBe('filled');
  });

  it('refuses a malformed order instead of guessing', () => {
    expect(() => orderFromAlpaca({ ...alpacaOrder, side: 'short' })).toThrow(AlpacaWireError);
    expect(() => orderFromAlpaca({ ...alpacaOrder, id: undefined })).toThrow(AlpacaWireError);
    expect(() => orderFromAlpaca('nope')).toThrow(AlpacaWireError);
  });

  it('round-trips through the compat server encoding', () => {
    const o = orderFromAlpaca(alpacaOrder);
    const back = orderFromAlpaca(orderToAlpaca(o));
    expect(back).toEqual(o);
    const wire = orderToAlpaca(o);
    expect(wire.qty).toBe('15');
    expect(wire.filled_avg_price).toBe('101.2');
    expect(wire.order_class).toBe('bracket');
    expect(wire.stop_price).toBeNull();
  });

  it('stamps terminal timestamps', () => {
    const o: BrokerOrder = { ...orderFromAlpaca(alpacaOrder), status: 'filled', filledQty: 15, legs: undefined };
    const w = orderToAlpaca(o);
    expect(w.filled_at).toBe(o.updatedAt);
    expect(w.canceled_at).toBeNull();
    expect(w.order_class).toBe('simple');
  });
});

describe('OrderRequest ↔ POST /v2/orders body', () => {
  const bracket: OrderRequest = {
    clientOrderId: 'trade-sig-1',
    symbol: 'NVDA',
    side: 'buy',
    qty: 12,
    type: 'limit',
    timeInForce: 'gtc',
    limitPrice: 0.1 + 0.2,
    orderClass: 'bracket',
    takeProfit: { limitPrice: 110 },
    stopLoss: { stopPrice: 95, limitPrice: 94.5 },
  };

  it('sends numbers as strings without float noise', () => {
    const body = orderRequestToAlpaca(bracket);
    expect(body).toEqual({
      symbol: 'NVDA',
      qty: '12',
      side: 'buy',
      type: 'limit',
      time_in_force: 'gtc',
      client_order_id: 'trade-sig-1',
      limit_price: '0.3',
      order_class: 'bracket',
      take_profit: { limit_price: '110' },
      stop_loss: { stop_price: '95', limit_price: '94.5' },
    });
    expect(toWireNumber(123.456789)).toBe('123.456789');
    expect(toWireNumber(1e-7)).toBe('1e-7');
  });

  it('trailing stops carry trail_percent; simple orders carry no order_class', () => {
    const body = orderRequestToAlpaca({
      ...bracket,
      type: 'trailing_stop',
      limitPrice: undefined,
      trailPercent: 2.5,
      orderClass: undefined,
    });
    expect(body.trail_percent).toBe('2.5');
    expect(body.order_class).toBeUndefined();
    expect(body.take_profit).toBeUndefined();
  });

  it('the server side parses what the client sends', () => {
    const parsed = orderRequestFromAlpaca(orderRequestToAlpaca(bracket));
    expect(parsed).toEqual({ ...bracket, limitPrice: 0.3 });
  });

  it.each([
    [{ qty: '0' }, 'qty must be > 0'],
    [{ qty: undefined }, 'qty is required'],
    [{ side: 'hold' }, 'side must be buy or sell'],
    [{ type: 'limit', limit_price: undefined }, 'limit_price is required'],
    [{ client_order_id: 'x'.repeat(49) }, 'no more than 48'],
    [{ notional: '100' }, 'notional'],
    [{ order_class: 'oco' }, 'not supported'],
  ])('validation: %j → %s', (patch, msg) => {
    const body = { ...orderRequestToAlpaca({ ...bracket, orderClass: undefined }), ...patch };
    expect(() => orderRequestFromAlpaca(body)).toThrow(msg);
  });

  it('a missing client_order_id gets a generated one (as Alpaca does)', () => {
    const body: Record<string, unknown> = { ...orderRequestToAlpaca({ ...bracket, orderClass: undefined }) };
    delete body.client_order_id;
    expect(orderRequestFromAlpaca(body).clientOrderId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('events, account, positions, error messages', () => {
  it('maps events both ways', () => {
    expect(eventFromAlpaca('pending_new')).toBe('accepted');
    expect(eventFromAlpaca('partial_fill')).toBe('partial_fill');
    expect(eventFromAlpaca('order_cancel_rejected')).toBeNull();
    expect(eventFromAlpaca('done_for_day')).toBeNull();
    expect(eventToAlpaca('accepted')).toBe('pending_new');
    expect(eventFromAlpaca(eventToAlpaca('accepted'))).toBe('accepted');
  });

  it('parses the account (blocked if either flag is set)', () => {
    const a = accountFromAlpaca({
      cash: '1000.5',
      equity: '1500',
      buying_power: '2000',
      trading_blocked: false,
      account_blocked: true,
    });
    expect(a).toEqual({ cash: 1000.5, equity: 1500, buyingPower: 2000, tradingBlocked: true });
  });

  it('positions: signed qty, shorts negative', () => {
    expect(
      positionFromAlpaca({ symbol: 'NVDA', qty: '-5', side: 'short', avg_entry_price: '100', market_value: '-510' })
        .qty,
    ).toBe(-5);
    expect(
      positionFromAlpaca({ symbol: 'NVDA', qty: '5', side: 'short', avg_entry_price: '100', market_value: '-510' }).qty,
    ).toBe(-5);
    const p = { symbol: 'NVDA', qty: 10, avgEntryPrice: 100, marketValue: 1050 };
    expect(positionFromAlpaca(positionToAlpaca(p))).toEqual(p);
  });

  it('recognises the duplicate client_order_id message', () => {
    expect(isDuplicateClientOrderIdMessage('client_order_id must be unique')).toBe(true);
    expect(isDuplicateClientOrderIdMessage('Client_Order_Id must be unique')).toBe(true);
    expect(isDuplicateClientOrderIdMessage('insufficient buying power')).toBe(false);
    expect(isDuplicateClientOrderIdMessage(undefined)).toBe(false);
  });
});

describe('FILL account activities', () => {
  // Alpaca's documented sample (Broker API account activities, trade activity object).
  const sample = {
    id: '20210510100104650::88b5f678-fef5-447b-af15-f21e367e6d8c',
    activity_type: 'FILL',
    transaction_time: '2021-05-10T14:01:04.650275Z',
    type: 'fill',
    price: '128.33',
    qty: '3',
    side: 'buy',
    symbol: 'AAPL',
    leaves_qty: '0',
    order_id: 'fe060a1b-5b45-4eba-ba46-c3a3345d8255',
    cum_qty: '5',
    order_status: 'filled',
  };

  it('parses the documented shape; no fee field means Alpaca charged none (commission-free)', () => {
    expect(executionFromAlpacaActivity(sample)).toEqual({
      executionId: sample.id,
      brokerOrderId: sample.order_id,
      symbol: 'AAPL',
      side: 'buy',
      qty: 3,
      price: 128.33,
      cumQty: 5,
      leavesQty: 0,
      orderStatus: 'filled',
      timestamp: sample.transaction_time,
      fee: 0,
    });
  });

  it('round-trips through the compat server encoding, with the venue fee extension', () => {
    const e = { ...executionFromAlpacaActivity(sample), fee: 0.015 };
    const json = fillActivityToAlpaca(e);
    expect(json.fee).toBe('0.015');
    expect(json.type).toBe('fill');
    expect(executionFromAlpacaActivity(json)).toEqual(e);
    expect(fillActivityToAlpaca({ ...e, leavesQty: 2 }).type).toBe('partial_fill');
  });

  it('refuses other activity types and malformed numbers', () => {
    expect(() => executionFromAlpacaActivity({ ...sample, activity_type: 'DIV' })).toThrow(AlpacaWireError);
    expect(() => executionFromAlpacaActivity({ ...sample, cum_qty: 'x' })).toThrow(AlpacaWireError);
  });

  it("activity ids have Alpaca's <yyyymmddhhmmssmmm>::<id> form and sort in time order", () => {
    expect(activityIdFor('2021-05-10T14:01:04.650Z', 'abc')).toBe('20210510140104650::abc');
    expect(activityIdFor('2021-05-10T14:01:04.650Z', 'z') < activityIdFor('2021-05-10T14:01:05.000Z', 'a')).toBe(true);
  });
});

describe('FEE activities (regulatory fees charged at end of day)', () => {
  /** A non-trade activity as Alpaca lists it (GET /v2/account/activities/FEE): amounts are decimal strings. */
  const sample = {
    id: '20261127000000000::8f3c2b1a-0d4e-4f5a-9b6c-7d8e9f0a1b2c',
    activity_type: 'FEE',
    date: '2026-11-27',
    net_amount: '-1.39',
    description: 'REG fee',
    symbol: 'NVDA',
    qty: '500',
    per_share_amount: null,
    status: 'executed',
  };

  it('parses the documented shape; the net amount is the signed cash effect', () => {
    expect(feeFromAlpacaActivity(sample)).toEqual({
      activityId: sample.id,
      date: '2026-11-27',
      netAmount: -1.39,
      description: 'REG fee',
      symbol: 'NVDA',
      cancelled: false,
    });
    expect(feeFromAlpacaActivity({ ...sample, symbol: undefined }).symbol).toBeNull();
  });

  it('a cancelled activity is read as cancelled (it moved no money; a booked one is reversed)', () => {
    expect(feeFromAlpacaActivity({ ...sample, status: 'canceled' })).toMatchObject({
      activityId: sample.id,
      netAmount: -1.39,
      cancelled: true,
    });
    expect(feeFromAlpacaActivity({ ...sample, status: 'correct' }).cancelled).toBe(false);
  });

  it('refuses what it cannot read instead of guessing an amount', () => {
    expect(() => feeFromAlpacaActivity({ ...sample, activity_type: 'FILL' })).toThrow(AlpacaWireError);
    expect(() => feeFromAlpacaActivity({ ...sample, net_amount: 'n/a' })).toThrow(AlpacaWireError);
    expect(() => feeFromAlpacaActivity({ ...sample, date: 'yesterday' })).toThrow(AlpacaWireError);
    expect(() => feeFromAlpacaActivity({ ...sample, id: 7 })).toThrow(AlpacaWireError);
  });

  it('round-trips through the compat server encoding, to the cent', () => {
    const f = feeFromAlpacaActivity(sample);
    expect(feeActivityToAlpaca(f)).toMatchObject({ net_amount: '-1.39', activity_type: 'FEE', status: 'executed' });
    expect(feeFromAlpacaActivity(feeActivityToAlpaca(f))).toEqual(f);
    const cancelled = { ...f, cancelled: true };
    expect(feeActivityToAlpaca(cancelled)).toMatchObject({ status: 'canceled' });
    expect(feeFromAlpacaActivity(feeActivityToAlpaca(cancelled))).toEqual(cancelled);
  });
});
