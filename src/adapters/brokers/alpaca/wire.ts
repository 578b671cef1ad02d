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
import type { BrokerAccount, BrokerExecution, BrokerFee, BrokerPosition } from '../broker';

/**
 * Alpaca Trading API v2 wire format, client side: what the AlpacaBroker adapter sends (order requests) and
 * parses (orders, account, positions, FILL activities, trade_updates), plus the vocabulary both ends of the
 * wire share (JSON shapes, error codes, wire numbers, AlpacaWireError). The server side — the mirror-image
 * mappings the Alpaca-compatible venue answers with — is src/venue/alpaca-compat/wire.ts; it builds on this
 * module, so the simulated venue speaks exactly the dialect the live adapter parses.
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

/** A wire number that must be present; AlpacaWireError naming the field otherwise. */
export function requiredWireNumber(v: unknown, field: string): number {
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

/** The order types and times in force we place and accept (the venue validates requests against the same sets). */
export const ALPACA_ORDER_TYPES: ReadonlySet<string> = new Set<OrderType>([
  'market',
  'limit',
  'stop',
  'stop_limit',
  'trailing_stop',
]);
export const ALPACA_TIMES_IN_FORCE: ReadonlySet<string> = new Set<TimeInForce>(['day', 'gtc', 'ioc', 'fok']);

function orderTypeFromAlpaca(t: string): OrderType {
  if (ALPACA_ORDER_TYPES.has(t)) return t as OrderType;
  throw new AlpacaWireError(`unsupported order type "${t}"`);
}

/** opg/cls (auction orders, never sent by us but possibly placed by hand) are single-session like `day`. */
function tifFromAlpaca(t: string): TimeInForce {
  if (ALPACA_TIMES_IN_FORCE.has(t)) return t as TimeInForce;
  if (t === 'opg' || t === 'cls') return 'day';
  throw new AlpacaWireError(`unsupported time_in_force "${t}"`);
}

function sideFromAlpaca(s: string): Side {
  if (s === 'buy' || s === 'sell') return s;
  throw new AlpacaWireError(`unsupported side "${s}"`);
}

// ---------------------------------------------------------------------------------------------
// orders

export function isWireObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new AlpacaWireError(`${field} missing or not a string`);
  return v;
}

/** Alpaca order JSON (any source: REST body or stream `order`) → BrokerOrder. Throws AlpacaWireError if malformed. */
export function orderFromAlpaca(json: unknown): BrokerOrder {
  if (!isWireObject(json)) throw new AlpacaWireError('order is not an object');
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

// ---------------------------------------------------------------------------------------------
// account and positions

export function accountFromAlpaca(json: unknown): BrokerAccount {
  if (!isWireObject(json)) throw new AlpacaWireError('account is not an object');
  return {
    cash: requiredWireNumber(json.cash, 'cash'),
    equity: requiredWireNumber(json.equity ?? json.portfolio_value, 'equity'),
    buyingPower: requiredWireNumber(json.buying_power, 'buying_power'),
    tradingBlocked: json.trading_blocked === true || json.account_blocked === true,
  };
}

export function positionFromAlpaca(json: unknown): BrokerPosition {
  if (!isWireObject(json)) throw new AlpacaWireError('position is not an object');
  let qty = requiredWireNumber(json.qty, 'qty');
  // Alpaca reports short qty as negative; normalise in case a source sends side + positive qty.
  if (json.side === 'short' && qty > 0) qty = -qty;
  return {
    symbol: str(json.symbol, 'symbol'),
    qty,
    avgEntryPrice: requiredWireNumber(json.avg_entry_price, 'avg_entry_price'),
    marketValue: requiredWireNumber(json.market_value, 'market_value'),
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

/** A FILL activity → BrokerExecution. Non-FILL activities are a caller error (they carry no execution). */
export function executionFromAlpacaActivity(json: unknown): BrokerExecution {
  if (!isWireObject(json)) throw new AlpacaWireError('activity is not an object');
  if (json.activity_type !== 'FILL')
    throw new AlpacaWireError(`activity_type ${String(json.activity_type)} is not FILL`);
  const qty = requiredWireNumber(json.qty, 'qty');
  const cumQty = requiredWireNumber(json.cum_qty, 'cum_qty');
  const leavesQty = fromWireNumber(json.leaves_qty) ?? 0;
  const status = typeof json.order_status === 'string' ? json.order_status : null;
  return {
    executionId: str(json.id, 'id'),
    brokerOrderId: str(json.order_id, 'order_id'),
    symbol: str(json.symbol, 'symbol'),
    side: sideFromAlpaca(str(json.side, 'side')),
    qty,
    price: requiredWireNumber(json.price, 'price'),
    cumQty,
    leavesQty,
    orderStatus: status === null ? null : statusFromAlpaca(status, cumQty),
    timestamp: str(json.transaction_time, 'transaction_time'),
    // Alpaca equities: commission-free, no per-fill fee field. Only the simulated venue sends one.
    fee: fromWireNumber(json.fee) ?? 0,
  };
}

/**
 * A FEE account activity (a non-trade activity: `id`, `activity_type`, `date`, `net_amount`, `description`,
 * `symbol`, `qty`, `per_share_amount`, `status`). A cancelled one (status `canceled`) is returned marked as such:
 * it moved no money, but one booked while it stood must be reversed. Amounts are decimal strings; the net amount is
 * kept to the cent it was charged in (Alpaca rounds each fee up to the cent).
 */
export function feeFromAlpacaActivity(json: unknown): BrokerFee {
  if (!isWireObject(json)) throw new AlpacaWireError('activity is not an object');
  if (json.activity_type !== 'FEE') throw new AlpacaWireError(`activity_type ${String(json.activity_type)} is not FEE`);
  const date = str(json.date, 'date');
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date.slice(0, 10))) throw new AlpacaWireError(`date ${date} is not a day`);
  return {
    activityId: str(json.id, 'id'),
    date: date.slice(0, 10),
    netAmount: requiredWireNumber(json.net_amount, 'net_amount'),
    description: typeof json.description === 'string' ? json.description : 'fee',
    symbol: typeof json.symbol === 'string' && json.symbol !== '' ? json.symbol : null,
    cancelled: json.status === 'canceled',
  };
}
