import { createHash, randomUUID } from 'node:crypto';
import type {
  BrokerOrder,
  OrderEventType,
  OrderRequest,
  OrderStatus,
  OrderType,
  Side,
  TimeInForce,
} from '../../../contracts/order';
import { OrderStatusSchema } from '../../../contracts/order';
import type { BrokerAccount, BrokerExecution, BrokerPosition } from '../broker';

/**
 * Alpaca Trading API v2 wire format, shared by the client adapter (AlpacaBroker) and the
 * Alpaca-compatible server (alpaca-compat). Keeping both directions in one module is what makes the
 * simulated venue exercise exactly the parsing the live adapter depends on.
 *
 * Alpaca sends every number as a string ("qty": "10", "filled_avg_price": "101.23"); we parse them
 * leniently (string or number) and always send strings.
 */

export const MAX_CLIENT_ORDER_ID_LENGTH = 48;

/** Error codes Alpaca uses (HTTP status + `code` in the body). */
export const ALPACA_CODES = {
  /** 403: insufficient buying power (also "not allowed to short", covered-call qty). */
  INSUFFICIENT_BUYING_POWER: 40310000,
  /** 403: pattern day trader protection. */
  PATTERN_DAY_TRADER: 40310100,
  /** 422: generic validation failure (bad field, duplicate client_order_id, ...). */
  VALIDATION: 40010001,
  /** 400: request body is not JSON. */
  MALFORMED_BODY: 40010000,
  /** 401 */
  UNAUTHORIZED: 40110000,
  /** 404 */
  NOT_FOUND: 40410000,
  /** 422 on cancel: order already in a terminal state. */
  NOT_CANCELABLE: 42210000,
  /** 429 */
  RATE_LIMITED: 42910000,
  /** 5xx */
  INTERNAL: 50010000,
} as const;

/** The message Alpaca returns when a client_order_id is re-used. Matched case-insensitively. */
export const DUPLICATE_CLIENT_ORDER_ID_MESSAGE = 'client_order_id must be unique';
export function isDuplicateClientOrderIdMessage(message: string | undefined): boolean {
  return !!message && /client[_ ]order[_ ]id.*(must be unique|already exists|duplicate)/i.test(message);
}

export interface AlpacaOrderJson {
  id: string;
  client_order_id: string;
  created_at: string;
  updated_at: string;
  submitted_at: string;
  filled_at: string | null;
  expired_at: string | null;
  canceled_at: string | null;
  failed_at: string | null;
  replaced_at: string | null;
  replaced_by: string | null;
  replaces: string | null;
  asset_id: string;
  symbol: string;
  asset_class: string;
  notional: string | null;
  qty: string | null;
  filled_qty: string;
  filled_avg_price: string | null;
  order_class: string;
  order_type: string;
  type: string;
  side: string;
  time_in_force: string;
  limit_price: string | null;
  stop_price: string | null;
  status: string;
  extended_hours: boolean;
  legs: AlpacaOrderJson[] | null;
  trail_percent: string | null;
  trail_price: string | null;
  hwm: string | null;
}

/** Body of POST /v2/orders. */
export interface AlpacaOrderRequestJson {
  symbol: string;
  qty: string;
  side: Side;
  type: OrderType;
  time_in_force: TimeInForce;
  client_order_id: string;
  limit_price?: string;
  stop_price?: string;
  trail_price?: string;
  trail_percent?: string;
  order_class?: 'simple' | 'bracket';
  take_profit?: { limit_price: string };
  stop_loss?: { stop_price: string; limit_price?: string };
}

export interface AlpacaErrorBody {
  code?: number | string;
  message?: string;
  [extra: string]: unknown;
}

/** A trade_updates stream message. `fee` is a non-Alpaca extension set by the compat server (see docs/brokers.md). */
export interface AlpacaTradeUpdateData {
  event: string;
  execution_id?: string;
  event_id?: string;
  price?: string;
  qty?: string;
  position_qty?: string;
  timestamp: string;
  order: AlpacaOrderJson;
  fee?: string;
}
export interface AlpacaTradeUpdateMessage {
  stream: 'trade_updates';
  data: AlpacaTradeUpdateData;
}

// ---------------------------------------------------------------------------------------------
// numbers

/**
 * Decimal string for the wire. Strips binary-float noise (0.1 + 0.2) without changing any price
 * a caller could legitimately mean: 9 significant decimals is far below the sub-penny tick.
 * Tick rounding is the caller's job (it changes the order's economics; an adapter must not).
 */
export function toWireNumber(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`not a finite number: ${n}`);
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toFixed(9)));
}

/** Lenient parse of a wire number ("10", 10, null). */
export function fromWireNumber(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

function req(v: unknown, field: string): number {
  const n = fromWireNumber(v);
  if (n === null) throw new AlpacaWireError(`${field} is not a number: ${JSON.stringify(v)}`);
  return n;
}

export class AlpacaWireError extends Error {
  override readonly name = 'AlpacaWireError';
}

// ---------------------------------------------------------------------------------------------
// statuses and events

const KNOWN_STATUSES: ReadonlySet<string> = new Set<OrderStatus>(OrderStatusSchema.options);

/**
 * Alpaca status → our normalised status. The rarer Alpaca states have no exact twin; all of them are
 * non-terminal, so they map to a non-terminal status (never to one that would stop fill tracking).
 */
export function statusFromAlpaca(status: string, filledQty: number): OrderStatus {
  if (KNOWN_STATUSES.has(status)) return status as OrderStatus;
  switch (status) {
    case 'accepted_for_bidding':
      return 'accepted';
    case 'stopped':
      return filledQty > 0 ? 'partially_filled' : 'new';
    case 'suspended':
      return 'held';
    case 'calculated':
      return 'done_for_day';
    default:
      return filledQty > 0 ? 'partially_filled' : 'new';
  }
}

/** Alpaca trade_updates event → our event. null = an event we do not surface (state is still tracked). */
export function eventFromAlpaca(event: string): OrderEventType | null {
  switch (event) {
    case 'new':
      return 'new';
    case 'pending_new':
    case 'accepted':
      return 'accepted';
    case 'fill':
      return 'fill';
    case 'partial_fill':
      return 'partial_fill';
    case 'canceled':
      return 'canceled';
    case 'expired':
      return 'expired';
    case 'rejected':
      return 'rejected';
    case 'replaced':
      return 'replaced';
    case 'pending_cancel':
      return 'pending_cancel';
    default:
      // done_for_day, pending_replace, stopped, suspended, calculated, order_cancel_rejected,
      // order_replace_rejected: no order-lifecycle consequence for our pipeline.
      return null;
  }
}

/** Our event → Alpaca event name (compat server). `accepted` has no Alpaca event; `pending_new` is the twin. */
export function eventToAlpaca(event: OrderEventType): string {
  return event === 'accepted' ? 'pending_new' : event;
}

const ORDER_TYPES: ReadonlySet<string> = new Set<OrderType>(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']);
const TIFS: ReadonlySet<string> = new Set<TimeInForce>(['day', 'gtc', 'ioc', 'fok']);

function orderTypeFromAlpaca(t: string): OrderType {
  if (ORDER_TYPES.has(t)) return t as OrderType;
  throw new AlpacaWireError(`unsupported order type "${t}"`);
}

/** opg/cls (auction orders, never sent by us but possibly placed by hand) are single-session like `day`. */
function tifFromAlpaca(t: string): TimeInForce {
  if (TIFS.has(t)) return t as TimeInForce;
  if (t === 'opg' || t === 'cls') return 'day';
  throw new AlpacaWireError(`unsupported time_in_force "${t}"`);
}

function sideFromAlpaca(s: string): Side {
  if (s === 'buy' || s === 'sell') return s;
  throw new AlpacaWireError(`unsupported side "${s}"`);
}

// ---------------------------------------------------------------------------------------------
// orders

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new AlpacaWireError(`${field} missing or not a string`);
  return v;
}

/** Alpaca order JSON (any source: REST body or stream `order`) → BrokerOrder. Throws AlpacaWireError if malformed. */
export function orderFromAlpaca(json: unknown): BrokerOrder {
  if (!isRecord(json)) throw new AlpacaWireError('order is not an object');
  const filledQty = fromWireNumber(json.filled_qty) ?? 0;
  const order: BrokerOrder = {
    brokerOrderId: str(json.id, 'id'),
    clientOrderId: str(json.client_order_id, 'client_order_id'),
    symbol: str(json.symbol, 'symbol'),
    side: sideFromAlpaca(str(json.side, 'side')),
    // notional orders have qty null; we never place them, treat as 0 shares requested.
    qty: fromWireNumber(json.qty) ?? 0,
    type: orderTypeFromAlpaca(str(json.type ?? json.order_type, 'type')),
    timeInForce: tifFromAlpaca(str(json.time_in_force, 'time_in_force')),
    status: statusFromAlpaca(str(json.status, 'status'), filledQty),
    filledQty,
    filledAvgPrice: fromWireNumber(json.filled_avg_price),
    createdAt: str(json.created_at, 'created_at'),
    updatedAt: typeof json.updated_at === 'string' ? json.updated_at : str(json.created_at, 'created_at'),
  };
  const limit = fromWireNumber(json.limit_price);
  if (limit !== null) order.limitPrice = limit;
  const stop = fromWireNumber(json.stop_price);
  if (stop !== null) order.stopPrice = stop;
  if (Array.isArray(json.legs) && json.legs.length > 0) order.legs = json.legs.map(orderFromAlpaca);
  // Not an Alpaca field; the compat server passes the venue's reason through when it has one.
  if (typeof json.reason === 'string' && json.reason) order.reason = json.reason;
  return order;
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

/** OrderRequest → POST /v2/orders body. */
export function orderRequestToAlpaca(r: OrderRequest): AlpacaOrderRequestJson {
  const body: AlpacaOrderRequestJson = {
    symbol: r.symbol,
    qty: toWireNumber(r.qty),
    side: r.side,
    type: r.type,
    time_in_force: r.timeInForce,
    client_order_id: r.clientOrderId,
  };
  if (r.limitPrice !== undefined) body.limit_price = toWireNumber(r.limitPrice);
  if (r.stopPrice !== undefined) body.stop_price = toWireNumber(r.stopPrice);
  if (r.trailPrice !== undefined) body.trail_price = toWireNumber(r.trailPrice);
  if (r.trailPercent !== undefined) body.trail_percent = toWireNumber(r.trailPercent);
  if (r.orderClass === 'bracket') {
    body.order_class = 'bracket';
    if (r.takeProfit) body.take_profit = { limit_price: toWireNumber(r.takeProfit.limitPrice) };
    if (r.stopLoss) {
      body.stop_loss = { stop_price: toWireNumber(r.stopLoss.stopPrice) };
      if (r.stopLoss.limitPrice !== undefined) body.stop_loss.limit_price = toWireNumber(r.stopLoss.limitPrice);
    }
  }
  return body;
}

/**
 * POST /v2/orders body → OrderRequest (compat server). Throws AlpacaWireError with an Alpaca-style
 * validation message; the server answers 422 / 40010001 with it.
 */
export function orderRequestFromAlpaca(json: unknown): OrderRequest {
  if (!isRecord(json)) throw new AlpacaWireError('request body must be a JSON object');
  if (json.notional !== undefined && json.notional !== null)
    throw new AlpacaWireError('notional orders are not supported');
  if (typeof json.symbol !== 'string' || !json.symbol) throw new AlpacaWireError('symbol is required');
  const qty = fromWireNumber(json.qty);
  if (qty === null) throw new AlpacaWireError('qty is required');
  if (!(qty > 0)) throw new AlpacaWireError('qty must be > 0');
  const side = json.side;
  if (side !== 'buy' && side !== 'sell') throw new AlpacaWireError('side must be buy or sell');
  const type = typeof json.type === 'string' ? json.type : undefined;
  if (!type || !ORDER_TYPES.has(type)) throw new AlpacaWireError(`invalid order type "${String(json.type)}"`);
  const tif = typeof json.time_in_force === 'string' ? json.time_in_force : undefined;
  if (!tif || !TIFS.has(tif)) throw new AlpacaWireError(`invalid time_in_force "${String(json.time_in_force)}"`);
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
    if (!isRecord(tp) || !isRecord(sl)) throw new AlpacaWireError('bracket orders require take_profit and stop_loss');
    r.takeProfit = { limitPrice: req(tp.limit_price, 'take_profit.limit_price') };
    r.stopLoss = { stopPrice: req(sl.stop_price, 'stop_loss.stop_price') };
    const slLimit = fromWireNumber(sl.limit_price);
    if (slLimit !== null) r.stopLoss.limitPrice = slLimit;
  } else if (cls !== undefined && cls !== null && cls !== '' && cls !== 'simple') {
    throw new AlpacaWireError(`order_class "${String(cls)}" is not supported`);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// account and positions

export function accountFromAlpaca(json: unknown): BrokerAccount {
  if (!isRecord(json)) throw new AlpacaWireError('account is not an object');
  return {
    cash: req(json.cash, 'cash'),
    equity: req(json.equity ?? json.portfolio_value, 'equity'),
    buyingPower: req(json.buying_power, 'buying_power'),
    tradingBlocked: json.trading_blocked === true || json.account_blocked === true,
  };
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

export function positionFromAlpaca(json: unknown): BrokerPosition {
  if (!isRecord(json)) throw new AlpacaWireError('position is not an object');
  let qty = req(json.qty, 'qty');
  // Alpaca reports short qty as negative; normalise in case a source sends side + positive qty.
  if (json.side === 'short' && qty > 0) qty = -qty;
  return {
    symbol: str(json.symbol, 'symbol'),
    qty,
    avgEntryPrice: req(json.avg_entry_price, 'avg_entry_price'),
    marketValue: req(json.market_value, 'market_value'),
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

// ---------------------------------------------------------------------------------------------
// account activities (FILL)

/**
 * A FILL account activity (`GET /v2/account/activities/FILL`), as Alpaca documents it:
 * `{"id":"20210510100104650::88b5…","activity_type":"FILL","transaction_time":"2021-05-10T14:01:04.650275Z",
 *   "type":"fill","price":"128.33","qty":"0.38962051","side":"buy","symbol":"AAPL","leaves_qty":"0",
 *   "order_id":"fe06…","cum_qty":"0.38962051","order_status":"filled"}`.
 * `fee` is a non-Alpaca extension written by the compat server (the simulated venue's commission).
 */
export interface AlpacaFillActivityJson {
  id: string;
  activity_type: 'FILL';
  transaction_time: string;
  type: 'fill' | 'partial_fill';
  price: string;
  qty: string;
  side: 'buy' | 'sell';
  symbol: string;
  leaves_qty: string;
  order_id: string;
  cum_qty: string;
  order_status: string;
  fee?: string;
}

/** Activity id the way Alpaca forms it: `<yyyymmddhhmmssmmm>::<uuid>` (also the page_token for paging). */
export function activityIdFor(timestamp: string, uuid: string): string {
  const digits = new Date(timestamp).toISOString().replace(/[-:TZ.]/g, '');
  return `${digits}::${uuid}`;
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

/** A FILL activity → BrokerExecution. Non-FILL activities are a caller error (they carry no execution). */
export function executionFromAlpacaActivity(json: unknown): BrokerExecution {
  if (!isRecord(json)) throw new AlpacaWireError('activity is not an object');
  if (json.activity_type !== 'FILL')
    throw new AlpacaWireError(`activity_type ${String(json.activity_type)} is not FILL`);
  const qty = req(json.qty, 'qty');
  const cumQty = req(json.cum_qty, 'cum_qty');
  const leavesQty = fromWireNumber(json.leaves_qty) ?? 0;
  const status = typeof json.order_status === 'string' ? json.order_status : null;
  return {
    executionId: str(json.id, 'id'),
    brokerOrderId: str(json.order_id, 'order_id'),
    symbol: str(json.symbol, 'symbol'),
    side: sideFromAlpaca(str(json.side, 'side')),
    qty,
    price: req(json.price, 'price'),
    cumQty,
    leavesQty,
    orderStatus: status === null ? null : statusFromAlpaca(status, cumQty),
    timestamp: str(json.transaction_time, 'transaction_time'),
    // Alpaca equities: commission-free, no per-fill fee field. Only the simulated venue sends one.
    fee: fromWireNumber(json.fee) ?? 0,
  };
}
