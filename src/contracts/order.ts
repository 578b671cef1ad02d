import { z } from 'zod';

/**
 * The order vocabulary shared by the signal contract, the risk engine, the simulated exchange,
 * the Alpaca adapter and the trade workflow. Quantities are whole shares; prices are dollars.
 */

// The value lists are exported beside their schemas so that a module can build schemas of its own over the same
// vocabulary (contracts/signal.ts, signalSchemas: the workflow sandbox's preloaded copy).
export const SIDES = ['buy', 'sell'] as const;
export const SideSchema = z.enum(SIDES);
export type Side = z.infer<typeof SideSchema>;

export const ORDER_TYPES = ['market', 'limit', 'stop', 'stop_limit', 'trailing_stop'] as const;
export const OrderTypeSchema = z.enum(ORDER_TYPES);
export type OrderType = z.infer<typeof OrderTypeSchema>;

export const TIMES_IN_FORCE = ['day', 'gtc', 'ioc', 'fok'] as const;
export const TimeInForceSchema = z.enum(TIMES_IN_FORCE);
export type TimeInForce = z.infer<typeof TimeInForceSchema>;

export const OrderClassSchema = z.enum(['simple', 'bracket']);
export type OrderClass = z.infer<typeof OrderClassSchema>;

/** What the caller asks a broker for. `clientOrderId` is the idempotency key. */
export interface OrderRequest {
  clientOrderId: string;
  symbol: string;
  side: Side;
  qty: number;
  type: OrderType;
  timeInForce: TimeInForce;
  limitPrice?: number;
  stopPrice?: number;
  trailPrice?: number;
  trailPercent?: number;
  orderClass?: OrderClass;
  /** Bracket legs: active only after the entry fills; one cancels the other. */
  takeProfit?: { limitPrice: number };
  stopLoss?: { stopPrice: number; limitPrice?: number };
}

/** Broker order lifecycle, normalised (Alpaca names). */
export const OrderStatusSchema = z.enum([
  'pending_new',
  'accepted',
  'new',
  'partially_filled',
  'filled',
  'done_for_day',
  'canceled',
  'expired',
  'rejected',
  'replaced',
  'pending_cancel',
  'pending_replace',
  'held',
]);
export type OrderStatus = z.infer<typeof OrderStatusSchema>;

/** Terminal for an order id: no further fills can arrive. */
export const TERMINAL_STATUSES: ReadonlySet<OrderStatus> = new Set([
  'filled',
  'canceled',
  'expired',
  'rejected',
  'replaced',
]);
export function isTerminal(status: OrderStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** One execution. `executionId` is unique per broker; the ledger has a unique constraint on it. */
export interface Fill {
  executionId: string;
  clientOrderId: string;
  brokerOrderId: string;
  symbol: string;
  side: Side;
  qty: number;
  price: number;
  fee: number;
  timestamp: string;
}

/** Broker's view of one order. `filledQty` is cumulative. */
export interface BrokerOrder {
  brokerOrderId: string;
  clientOrderId: string;
  symbol: string;
  side: Side;
  qty: number;
  type: OrderType;
  timeInForce: TimeInForce;
  status: OrderStatus;
  filledQty: number;
  filledAvgPrice: number | null;
  limitPrice?: number;
  stopPrice?: number;
  createdAt: string;
  updatedAt: string;
  /** Bracket child orders (take-profit, stop-loss). */
  legs?: BrokerOrder[];
  /** Why the broker rejected or cancelled it, when known. */
  reason?: string;
}

export type OrderEventType =
  'accepted' | 'partial_fill' | 'fill' | 'canceled' | 'expired' | 'rejected' | 'replaced' | 'pending_cancel' | 'new';

/** One event of the order-update stream. Fills carry their own execution id. */
export interface OrderUpdate {
  event: OrderEventType;
  order: BrokerOrder;
  fill?: Fill;
  timestamp: string;
}
