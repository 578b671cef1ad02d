import type { BrokerOrder, OrderRequest, OrderUpdate } from '../../contracts/order';

/**
 * One interface for every broker (simulated exchange, Alpaca v2). The contract test suite
 * (test/integration/broker-contract.ts) runs the same cases against each implementation.
 *
 * Idempotency contract: `submitOrder` with a `clientOrderId` the broker already knows must never create
 * a second order; it returns the existing one. When `isRetry` is set (a previous attempt may have reached
 * the broker), the adapter looks the order up by client order id before any re-submit.
 */
export interface Broker {
  readonly name: 'simulated' | 'alpaca';
  submitOrder(req: OrderRequest, opts?: { isRetry?: boolean }): Promise<BrokerOrder>;
  /** null when the broker has no order with this client order id. */
  getOrderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null>;
  /** Idempotent: cancelling a terminal order returns it unchanged. Returns the order after the request. */
  cancelOrder(clientOrderId: string): Promise<BrokerOrder | null>;
  /** Subscribe to order updates. Returns an unsubscribe function. */
  onOrderUpdate(listener: (update: OrderUpdate) => void): () => void;
  listOpenOrders(): Promise<BrokerOrder[]>;
  getAccount(): Promise<BrokerAccount>;
  getPositions(): Promise<BrokerPosition[]>;
  close(): Promise<void>;
}

export interface BrokerAccount {
  cash: number;
  equity: number;
  buyingPower: number;
  tradingBlocked: boolean;
}

export interface BrokerPosition {
  symbol: string;
  /** Signed: negative is short. */
  qty: number;
  avgEntryPrice: number;
  marketValue: number;
}

/**
 * A definitive "no" from the broker (buying power, PDT, validation, unknown or halted symbol).
 * Never retried: the same request would be refused again. Keeps the broker's own code and message.
 */
export class BrokerRejectedError extends Error {
  override readonly name = 'BrokerRejectedError';
  constructor(
    message: string,
    readonly code: string,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

/** 429: wait until the broker's reset time before the next attempt. */
export class BrokerRateLimitedError extends Error {
  override readonly name = 'BrokerRateLimitedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/**
 * Timeout, connection reset or 5xx: the request may or may not have reached the broker.
 * Retryable, but the retry must look the order up by client order id first.
 */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
  constructor(
    message: string,
    readonly ambiguous: boolean,
  ) {
    super(message);
  }
}
