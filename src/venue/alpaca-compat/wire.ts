import { createHash, randomUUID } from 'node:crypto';
import type {
  BrokerOrder,
  OrderEventType,
  OrderRequest,
  OrderStatus,
  OrderType,
  TimeInForce,
} from '../../contracts/order';
import type { BrokerAccount, BrokerExecution, BrokerFee, BrokerPosition } from '../../adapters/brokers/broker';
import {
  ALPACA_ORDER_TYPES,
  ALPACA_TIMES_IN_FORCE,
  AlpacaWireError,
  MAX_CLIENT_ORDER_ID_LENGTH,
  fromWireNumber,
  isWireObject,
  requiredWireNumber,
  toWireNumber,
  type AlpacaFillActivityJson,
  type AlpacaOrderJson,
} from '../../adapters/brokers/alpaca/wire';

/**
 * Alpaca Trading API v2 wire format, server side: what the Alpaca-compatible venue parses (POST /v2/orders
 * bodies) and answers with (orders, account, positions, FILL activities, trade_updates events, activity ids).
 * Each mapping mirrors a client-side parser in src/adapters/brokers/alpaca/wire.ts (orderToAlpaca ↔
 * orderFromAlpaca, orderRequestFromAlpaca ↔ orderRequestToAlpaca, ...) and reuses its vocabulary, so what the
 * venue sends is exactly what the live adapter parses; test/unit/alpaca-wire.test.ts round-trips the pairs.
 * Numbers go out as strings, like Alpaca's.
 */

/** Our event → Alpaca event name (compat server). `accepted` has no Alpaca event; `pending_new` is the twin. */
export function eventToAlpaca(event: OrderEventType): string {
  return event === 'accepted' ? 'pending_new' : event;
}

/** Deterministic pseudo asset id (a UUID-shaped hash of the symbol) for the compat server. */
export function assetIdFor(symbol: string): string {
  const h = createHash('sha256').update(`asset:${symbol}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function optNum(n: number | undefined | null): string | null {
  return n === undefined || n === null ? null : toWireNumber(n);
}

/** BrokerOrder → Alpaca order JSON (compat server). */
export function orderToAlpaca(o: BrokerOrder): AlpacaOrderJson & { reason?: string } {
  const at = (s: OrderStatus) => (o.status === s ? o.updatedAt : null);
  const json: AlpacaOrderJson & { reason?: string } = {
    id: o.brokerOrderId,
    client_order_id: o.clientOrderId,
    created_at: o.createdAt,
    updated_at: o.updatedAt,
    submitted_at: o.createdAt,
    filled_at: at('filled'),
    expired_at: at('expired'),
    canceled_at: at('canceled'),
    failed_at: at('rejected'),
    replaced_at: at('replaced'),
    replaced_by: null,
    replaces: null,
    asset_id: assetIdFor(o.symbol),
    symbol: o.symbol,
    asset_class: 'us_equity',
    notional: null,
    qty: toWireNumber(o.qty),
    filled_qty: toWireNumber(o.filledQty),
    filled_avg_price: optNum(o.filledAvgPrice),
    order_class: o.legs && o.legs.length > 0 ? 'bracket' : 'simple',
    order_type: o.type,
    type: o.type,
    side: o.side,
    time_in_force: o.timeInForce,
    limit_price: optNum(o.limitPrice),
    stop_price: optNum(o.stopPrice),
    status: o.status,
    extended_hours: false,
    legs: o.legs && o.legs.length > 0 ? o.legs.map((l) => orderToAlpaca(l)) : null,
    trail_percent: null,
    trail_price: null,
    hwm: null,
  };
  if (o.reason) json.reason = o.reason;
  return json;
}

/**
 * POST /v2/orders body → OrderRequest (compat server). Throws AlpacaWireError with an Alpaca-style
 * validation message; the server answers 422 / 40010001 with it.
 */
export function orderRequestFromAlpaca(json: unknown): OrderRequest {
  if (!isWireObject(json)) throw new AlpacaWireError('request body must be a JSON object');
  if (json.notional !== undefined && json.notional !== null)
    throw new AlpacaWireError('notional orders are not supported');
  if (typeof json.symbol !== 'string' || !json.symbol) throw new AlpacaWireError('symbol is required');
  const qty = fromWireNumber(json.qty);
  if (qty === null) throw new AlpacaWireError('qty is required');
  if (!(qty > 0)) throw new AlpacaWireError('qty must be > 0');
  const side = json.side;
  if (side !== 'buy' && side !== 'sell') throw new AlpacaWireError('side must be buy or sell');
  const type = typeof json.type === 'string' ? json.type : undefined;
  if (!type || !ALPACA_ORDER_TYPES.has(type)) throw new AlpacaWireError(`invalid order type "${String(json.type)}"`);
  const tif = typeof json.time_in_force === 'string' ? json.time_in_force : undefined;
  if (!tif || !ALPACA_TIMES_IN_FORCE.has(tif))
    throw new AlpacaWireError(`invalid time_in_force "${String(json.time_in_force)}"`);
  let clientOrderId: string;
  if (json.client_order_id === undefined || json.client_order_id === null || json.client_order_id === '') {
    clientOrderId = randomUUID();
  } else if (typeof json.client_order_id !== 'string') {
    throw new AlpacaWireError('client_order_id must be a string');
  } else {
    clientOrderId = json.client_order_id;
  }
  if (clientOrderId.length > MAX_CLIENT_ORDER_ID_LENGTH) {
    throw new AlpacaWireError(`client_order_id must be no more than ${MAX_CLIENT_ORDER_ID_LENGTH} characters`);
  }
  const r: OrderRequest = {
    clientOrderId,
    symbol: json.symbol,
    side,
    qty,
    type: type as OrderType,
    timeInForce: tif as TimeInForce,
  };
  const price = (field: string): number | undefined => {
    const v = json[field];
    if (v === undefined || v === null) return undefined;
    const n = fromWireNumber(v);
    if (n === null || !(n > 0)) throw new AlpacaWireError(`${field} must be a positive number`);
    return n;
  };
  const limit = price('limit_price');
  const stop = price('stop_price');
  const trailPrice = price('trail_price');
  const trailPercent = price('trail_percent');
  if (limit !== undefined) r.limitPrice = limit;
  if (stop !== undefined) r.stopPrice = stop;
  if (trailPrice !== undefined) r.trailPrice = trailPrice;
  if (trailPercent !== undefined) r.trailPercent = trailPercent;
  if ((type === 'limit' || type === 'stop_limit') && limit === undefined)
    throw new AlpacaWireError('limit_price is required');
  if ((type === 'stop' || type === 'stop_limit') && stop === undefined)
    throw new AlpacaWireError('stop_price is required');
  if (type === 'trailing_stop' && trailPrice === undefined && trailPercent === undefined) {
    throw new AlpacaWireError('trail_price or trail_percent is required');
  }
  const cls = json.order_class;
  if (cls === 'bracket') {
    r.orderClass = 'bracket';
    const tp = json.take_profit;
    const sl = json.stop_loss;
    if (!isWireObject(tp) || !isWireObject(sl))
      throw new AlpacaWireError('bracket orders require take_profit and stop_loss');
    r.takeProfit = { limitPrice: requiredWireNumber(tp.limit_price, 'take_profit.limit_price') };
    r.stopLoss = { stopPrice: requiredWireNumber(sl.stop_price, 'stop_loss.stop_price') };
    const slLimit = fromWireNumber(sl.limit_price);
    if (slLimit !== null) r.stopLoss.limitPrice = slLimit;
  } else if (cls !== undefined && cls !== null && cls !== '' && cls !== 'simple') {
    throw new AlpacaWireError(`order_class "${String(cls)}" is not supported`);
  }
  return r;
}

export function accountToAlpaca(a: BrokerAccount, id = 'compat-account'): Record<string, unknown> {
  return {
    id,
    account_number: id,
    status: 'ACTIVE',
    currency: 'USD',
    cash: toWireNumber(a.cash),
    equity: toWireNumber(a.equity),
    portfolio_value: toWireNumber(a.equity),
    last_equity: toWireNumber(a.equity),
    buying_power: toWireNumber(a.buyingPower),
    regt_buying_power: toWireNumber(a.buyingPower),
    daytrading_buying_power: '0',
    non_marginable_buying_power: toWireNumber(a.buyingPower),
    multiplier: '1',
    pattern_day_trader: false,
    trading_blocked: a.tradingBlocked,
    transfers_blocked: false,
    account_blocked: false,
    trade_suspended_by_user: false,
    shorting_enabled: false,
    daytrade_count: 0,
    created_at: '1970-01-01T00:00:00Z',
  };
}

export function positionToAlpaca(p: BrokerPosition): Record<string, unknown> {
  const currentPrice = p.qty !== 0 ? p.marketValue / p.qty : p.avgEntryPrice;
  const costBasis = p.qty * p.avgEntryPrice;
  return {
    asset_id: assetIdFor(p.symbol),
    symbol: p.symbol,
    exchange: 'SIM',
    asset_class: 'us_equity',
    asset_marginable: false,
    qty: toWireNumber(p.qty),
    qty_available: toWireNumber(p.qty),
    avg_entry_price: toWireNumber(p.avgEntryPrice),
    side: p.qty < 0 ? 'short' : 'long',
    market_value: toWireNumber(p.marketValue),
    cost_basis: toWireNumber(costBasis),
    unrealized_pl: toWireNumber(p.marketValue - costBasis),
    current_price: toWireNumber(currentPrice),
  };
}

/** Activity id the way Alpaca forms it: `<yyyymmddhhmmssmmm>::<uuid>` (also the page_token for paging). */
export function activityIdFor(timestamp: string, uuid: string): string {
  const digits = new Date(timestamp).toISOString().replace(/[-:TZ.]/g, '');
  return `${digits}::${uuid}`;
}

/** A FEE (non-trade) account activity as Alpaca lists it. */
export interface AlpacaFeeActivityJson {
  id: string;
  activity_type: 'FEE';
  date: string;
  net_amount: string;
  description: string;
  symbol?: string;
  status: 'executed' | 'canceled';
}

export function feeActivityToAlpaca(f: BrokerFee): AlpacaFeeActivityJson {
  const json: AlpacaFeeActivityJson = {
    id: f.activityId,
    activity_type: 'FEE',
    date: f.date,
    net_amount: f.netAmount.toFixed(2),
    description: f.description,
    status: f.cancelled ? 'canceled' : 'executed',
  };
  if (f.symbol !== null) json.symbol = f.symbol;
  return json;
}

export function fillActivityToAlpaca(e: BrokerExecution): AlpacaFillActivityJson {
  const json: AlpacaFillActivityJson = {
    id: e.executionId,
    activity_type: 'FILL',
    transaction_time: e.timestamp,
    type: e.leavesQty > 0 ? 'partial_fill' : 'fill',
    price: toWireNumber(e.price),
    qty: toWireNumber(e.qty),
    side: e.side,
    symbol: e.symbol,
    leaves_qty: toWireNumber(e.leavesQty),
    order_id: e.brokerOrderId,
    cum_qty: toWireNumber(e.cumQty),
    order_status: e.orderStatus ?? (e.leavesQty > 0 ? 'partially_filled' : 'filled'),
  };
  if (e.fee !== 0) json.fee = toWireNumber(e.fee);
  return json;
}
