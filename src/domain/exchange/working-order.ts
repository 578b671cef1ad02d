import type { OrderClass, OrderRequest, OrderStatus, OrderType, Side, TimeInForce } from '../../contracts/order';
import type { OrderRejection, SimulatedOrder } from './types';

/** The engine's own view of an order (internal to domain/exchange; callers only ever get snapshots). */

export type LegRole = 'take_profit' | 'stop_loss';

/** Mutable engine-side order. Never handed out: callers get SimulatedOrder snapshots. */
export interface WorkingOrder {
  /** Time priority: creation sequence. Bracket legs: entry n, stop-loss n+1, take-profit n+2. */
  seq: number;
  brokerOrderId: string;
  clientOrderId: string;
  symbol: string;
  side: Side;
  qty: number;
  type: OrderType;
  timeInForce: TimeInForce;
  orderClass: OrderClass;
  limitPrice?: number;
  stopPrice?: number;
  trailPrice?: number;
  trailPercent?: number;
  /** Trailing stops: high-water mark (sell) / low-water mark (buy). */
  hwm?: number;
  status: OrderStatus;
  filledQty: number;
  /** Σ fill qty × price, for the average price. */
  filledNotional: number;
  fees: number;
  createdAt: string;
  updatedAt: string;
  reason?: string;
  rejection?: OrderRejection;
  /** First bar number (per symbol, 1-based) this order may be matched against. */
  eligibleFromBar: number;
  /** Day orders: the trading day they work for, fixed at their first eligible bar. */
  tradingDay?: string;
  /** Stop, stop-limit and trailing-stop orders: the stop has been triggered. */
  triggered: boolean;
  /** Fills so far (the n of the next execution id). */
  executions: number;
  /** Part of a sell that opens a short (needs buying power); 0 for ordinary sells. */
  shortQty: number;
  /** Bracket entry: its legs. */
  legs?: { takeProfit: WorkingOrder; stopLoss: WorkingOrder };
  /** Bracket leg: its entry and role. */
  parent?: WorkingOrder;
  legRole?: LegRole;
}

/** Client order id of a bracket leg: `<entry id>-tp` / `<entry id>-sl`. */
export function legClientOrderId(entryClientOrderId: string, role: LegRole): string {
  return `${entryClientOrderId}-${role === 'take_profit' ? 'tp' : 'sl'}`;
}

/** What callers see of an order: an immutable copy, bracket legs nested under their entry. */
export function snapshotOf(o: WorkingOrder): SimulatedOrder {
  const s: SimulatedOrder = {
    brokerOrderId: o.brokerOrderId,
    clientOrderId: o.clientOrderId,
    symbol: o.symbol,
    side: o.side,
    qty: o.qty,
    type: o.type,
    timeInForce: o.timeInForce,
    status: o.status,
    filledQty: o.filledQty,
    filledAvgPrice: o.filledQty > 0 ? o.filledNotional / o.filledQty : null,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    orderClass: o.orderClass,
    feesPaid: o.fees,
  };
  if (o.limitPrice !== undefined) s.limitPrice = o.limitPrice;
  if (o.stopPrice !== undefined) s.stopPrice = o.stopPrice;
  if (o.trailPrice !== undefined) s.trailPrice = o.trailPrice;
  if (o.trailPercent !== undefined) s.trailPercent = o.trailPercent;
  if (o.hwm !== undefined) s.hwm = o.hwm;
  if (o.reason !== undefined) s.reason = o.reason;
  if (o.parent) s.parentClientOrderId = o.parent.clientOrderId;
  if (o.legRole) s.legRole = o.legRole;
  if (o.legs) s.legs = [snapshotOf(o.legs.takeProfit), snapshotOf(o.legs.stopLoss)];
  return s;
}

/** A rejected order that cannot be stored (no usable client order id): answered, never recorded. */
export function detachedRejection(req: OrderRequest, now: string, message: string): SimulatedOrder {
  const r = (req ?? {}) as Partial<OrderRequest>;
  return {
    brokerOrderId: '',
    clientOrderId: typeof r.clientOrderId === 'string' ? r.clientOrderId : '',
    symbol: String(r.symbol ?? ''),
    side: r.side ?? 'buy',
    qty: typeof r.qty === 'number' ? r.qty : 0,
    type: r.type ?? 'market',
    timeInForce: r.timeInForce ?? 'day',
    status: 'rejected',
    filledQty: 0,
    filledAvgPrice: null,
    createdAt: now,
    updatedAt: now,
    orderClass: r.orderClass ?? 'simple',
    feesPaid: 0,
    reason: message,
  };
}
