import type { BrokerOrder, OrderRequest, OrderStatus, OrderUpdate, Side } from '../../contracts/order';

/**
 * Per-call options every broker method accepts. A call waits for the process's request budget and
 * waits out broker 429s (never counted as failures); these bound that wait. When `signal` fires, or a
 * wait would end after `deadlineMs`, the call fails with BrokerRateLimitedError(retryAfterMs) instead.
 * An activity passes its cancellation signal and a deadline a little before its start-to-close timeout.
 */
export interface BrokerCallOptions {
  signal?: AbortSignal;
  /** Epoch ms. */
  deadlineMs?: number;
}

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
  submitOrder(req: OrderRequest, opts?: { isRetry?: boolean } & BrokerCallOptions): Promise<BrokerOrder>;
  /** null when the broker has no order with this client order id. */
  getOrderByClientOrderId(clientOrderId: string, opts?: BrokerCallOptions): Promise<BrokerOrder | null>;
  /** Idempotent: cancelling a terminal order returns it unchanged. Returns the order after the request. */
  cancelOrder(clientOrderId: string, opts?: BrokerCallOptions): Promise<BrokerOrder | null>;
  /**
   * The executions of one order as the broker's own records list them (Alpaca: FILL account activities;
   * the simulated venue: its fill log), oldest first by cumulative quantity. This is where real execution
   * ids, prices and fees come from for fills the update stream never delivered.
   */
  listExecutions(brokerOrderId: string, opts?: ListExecutionsOptions): Promise<BrokerExecution[]>;
  /** Subscribe to order updates. Returns an unsubscribe function. */
  onOrderUpdate(listener: (update: OrderUpdate) => void): () => void;
  /**
   * True while order updates are being pushed reliably (Alpaca: the trade_updates stream is listening).
   * While true, followers wait for updates instead of polling; while false the broker's own poller
   * re-reads followed orders (see watchOrder) within the request budget.
   */
  streamHealthy(): boolean;
  /**
   * Make sure updates for this order keep coming even while the stream is down (the broker's single
   * poller re-reads it until it is terminal). Orders placed through submitOrder are watched already;
   * this is for orders found after a restart. Idempotent.
   */
  watchOrder(clientOrderId: string): void;
  listOpenOrders(opts?: BrokerCallOptions): Promise<BrokerOrder[]>;
  getAccount(opts?: BrokerCallOptions): Promise<BrokerAccount>;
  getPositions(opts?: BrokerCallOptions): Promise<BrokerPosition[]>;
  close(): Promise<void>;
}

/**
 * A venue that can list every execution on the account, oldest first (the simulated venue, the fake
 * Alpaca). The Alpaca-compatible server serves FILL account activities from it.
 */
export interface ExecutionLog {
  listAllExecutions(): Promise<BrokerExecution[]>;
}

export function hasExecutionLog(b: unknown): b is ExecutionLog {
  return typeof (b as Partial<ExecutionLog> | null)?.listAllExecutions === 'function';
}

/**
 * A cash amount the broker booked on the account outside any fill. On Alpaca these are FEE account activities:
 * equities are commission-free, but the regulatory fees on sells (SEC "REG", FINRA "TAF"; CAT) accrue during
 * the day and are charged at end of day, per symbol and each rounded up to the cent. A ledger that books only
 * fills drifts from the broker's cash by them every day a position is sold.
 */
export interface BrokerFee {
  /** The broker's activity id (Alpaca: `<yyyymmddhhmmssmmm>::<uuid>`): what booking is idempotent on. */
  activityId: string;
  /** The trading day it was charged for (YYYY-MM-DD). */
  date: string;
  /** Signed effect on cash in dollars, as the broker states it: negative for a charge, positive for a refund. */
  netAmount: number;
  /** The broker's description (Alpaca: "REG fee", "TAF fee", …). */
  description: string;
  symbol: string | null;
  /**
   * The broker cancelled the charge (Alpaca: status `canceled`). It moved no money; the ledger reverses it if it
   * was booked while it stood.
   */
  cancelled: boolean;
}

/**
 * A broker that lists fees charged outside fills (Alpaca). The simulated venue charges its commission on each fill
 * and reports it there (BrokerExecution.fee), so it has nothing to list and does not implement this.
 */
export interface FeeActivities {
  /** Fees charged on trading days after `afterDate` (YYYY-MM-DD), oldest first; cancelled activities left out. */
  listFees(afterDate: string, opts?: BrokerCallOptions): Promise<BrokerFee[]>;
}

export function hasFeeActivities(b: unknown): b is FeeActivities {
  return typeof (b as Partial<FeeActivities> | null)?.listFees === 'function';
}

/** A venue that can list every fee it charged outside fills (the fake Alpaca): the compat server serves them. */
export interface FeeLog {
  listAllFees(): Promise<BrokerFee[]>;
}

export function hasFeeLog(b: unknown): b is FeeLog {
  return typeof (b as Partial<FeeLog> | null)?.listAllFees === 'function';
}

export interface ListExecutionsOptions extends BrokerCallOptions {
  /** The order's creation time (ISO), when known: saves a lookup and bounds the activity scan. */
  orderCreatedAt?: string;
}

/**
 * One execution (fill) from the broker's records. For Alpaca this is a FILL account activity:
 * `executionId` is the activity id (`<yyyymmddhhmmssmmm>::<uuid>`), which is NOT documented to equal the
 * trade_updates `execution_id`; match a stream fill to it by (brokerOrderId, cumQty), which both carry.
 */
export interface BrokerExecution {
  executionId: string;
  brokerOrderId: string;
  symbol: string;
  side: Side;
  qty: number;
  price: number;
  /** The order's cumulative filled quantity after this execution. */
  cumQty: number;
  /** Quantity still open on the order after this execution. */
  leavesQty: number;
  /** The order's status right after this execution, when the broker says (Alpaca: `order_status`). */
  orderStatus: OrderStatus | null;
  /** When it executed (ISO). */
  timestamp: string;
  /**
   * Fee charged on this execution, in dollars. Alpaca equities are commission-free, so a real Alpaca FILL
   * has no fee (0 here); regulatory fees (SEC/TAF/CAT) are charged separately as FEE activities at end of
   * day. The simulated venue charges a per-fill commission (SIM_FEE_PER_SHARE/SIM_FEE_BPS) and reports it
   * in a `fee` field the compat server adds to its FILL activities (a non-Alpaca extension).
   */
  fee: number;
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
