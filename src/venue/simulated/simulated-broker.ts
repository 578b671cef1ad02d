import type { OhlcvBar } from '../../contracts/bar';
import type { BrokerOrder, Fill, OrderRequest, OrderUpdate } from '../../contracts/order';
import type { SimVenueConfig } from '../../config';
import {
  SimulatedExchange,
  type OrderRejection,
  type RejectCode,
  type SimulatedExchangeOptions,
} from '../../domain/exchange';
import {
  BrokerRejectedError,
  BrokerUnavailableError,
  type Broker,
  type BrokerAccount,
  type BrokerExecution,
  type BrokerPosition,
  type ExecutionLog,
} from '../../adapters/brokers/broker';
import { activityIdFor } from '../alpaca-compat/wire';
import { sleep as realSleep } from '../../lib/sleep';

/**
 * SimulatedBroker: the Broker interface over an in-process SimulatedExchange (the paper venue).
 *
 * - Market data drives it: `feedBar(bar)` (or `feedBars`) matches working orders; fills arrive through
 *   `onOrderUpdate` exactly like Alpaca's trade_updates stream (events new, partial_fill, fill, canceled,
 *   expired, rejected; cumulative filledQty; one unique executionId per fill).
 * - Synchronous rejections: `submitOrder` throws BrokerRejectedError (code = the venue's RejectCode, httpStatus
 *   403 for buying power / qty like Alpaca's 40310000, 422 otherwise), AND the order stays on record with status
 *   `rejected`: getOrderByClientOrderId returns it and a `rejected` update is emitted. Re-submitting a rejected
 *   client order id throws the same error again (same request, same answer); it never creates a second order.
 * - Idempotency: a known client order id returns the existing order; concurrent submits with the same id while
 *   the first is still "in flight" (latencyMs) share one result.
 * - Latency: with latencyMs > 0, submit and cancel wait that long (via the injectable `sleep`) before reaching the
 *   venue, so bars fed meanwhile are already known to the venue and the order cannot fill on them. Default 0:
 *   no timers at all.
 * - Timestamps: `clock()` (default: the timestamp of the last bar fed, i.e. simulated time; wall clock only
 *   before the first bar).
 */

export interface SimulatedBrokerOptions extends SimulatedExchangeOptions {
  /** Wall-clock delay before a submit or cancel reaches the venue, ms. Default 0 (SIM_LATENCY_MS). */
  latencyMs?: number;
  /** Source of `now` for submits and cancels. */
  clock?: () => string;
  /** Delay implementation (tests inject a fake). Default: setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Use this engine instead of building one from the options (the exchange options are then ignored). */
  exchange?: SimulatedExchange;
}

/** HTTP status an equivalent Alpaca rejection would carry. */
const HTTP_STATUS: Record<RejectCode, number> = {
  insufficient_buying_power: 403,
  insufficient_qty: 403,
  invalid_order: 422,
  unknown_symbol: 422,
  symbol_halted: 422,
  no_market_data: 422,
};

export function toBrokerRejectedError(rejection: OrderRejection): BrokerRejectedError {
  return new BrokerRejectedError(rejection.message, rejection.code, HTTP_STATUS[rejection.code]);
}

export class SimulatedBroker implements Broker, ExecutionLog {
  readonly name = 'simulated' as const;
  readonly exchange: SimulatedExchange;
  private readonly latencyMs: number;
  private readonly clock: () => string;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly inFlight = new Map<string, Promise<BrokerOrder>>();
  private readonly subscriptions = new Set<() => void>();
  private lastBarTimestamp: string | undefined;
  private closed = false;

  constructor(opts: SimulatedBrokerOptions = {}) {
    const { latencyMs = 0, clock, sleep, exchange, ...exchangeOptions } = opts;
    if (!Number.isInteger(latencyMs) || latencyMs < 0)
      throw new RangeError('SimulatedBroker: latencyMs must be an integer >= 0');
    this.exchange = exchange ?? new SimulatedExchange(exchangeOptions);
    this.latencyMs = latencyMs;
    this.clock = clock ?? (() => this.lastBarTimestamp ?? new Date().toISOString());
    this.sleep = sleep ?? realSleep;
  }

  /**
   * The paper venue of the `sim` config section (its fill model, plus the ledger's starting cash and RiskOps'
   * short-selling rule, so venue and ledger agree). Broker order ids get a per-process prefix so execution ids
   * stay unique in the ledger across restarts (pass `orderIdPrefix` in overrides for reproducible ids).
   */
  static fromConfig(venue: SimVenueConfig, overrides: SimulatedBrokerOptions = {}): SimulatedBroker {
    return new SimulatedBroker({
      ...venue,
      orderIdPrefix: `SIM-${Date.now().toString(36).toUpperCase()}`,
      ...overrides,
    });
  }

  // ------------------------------------------------------------------ market data (simulator only)

  /** Drive the venue with one bar; returns the order updates it caused (also sent to listeners). */
  feedBar(bar: OhlcvBar): OrderUpdate[] {
    const updates = this.exchange.onBar(bar);
    if (this.lastBarTimestamp === undefined || bar.timestamp > this.lastBarTimestamp)
      this.lastBarTimestamp = bar.timestamp;
    return updates;
  }

  feedBars(bars: Iterable<OhlcvBar>): OrderUpdate[] {
    const out: OrderUpdate[] = [];
    for (const b of bars) out.push(...this.feedBar(b));
    return out;
  }

  halt(symbol: string): void {
    this.exchange.halt(symbol);
  }

  resume(symbol: string): void {
    this.exchange.resume(symbol);
  }

  // ------------------------------------------------------------------ Broker

  async submitOrder(req: OrderRequest, _opts?: { isRetry?: boolean }): Promise<BrokerOrder> {
    // isRetry needs no special path: the venue itself answers a known client order id with the existing order.
    this.assertOpen();
    const id = req.clientOrderId;
    const pending = typeof id === 'string' ? this.inFlight.get(id) : undefined;
    if (pending) return pending;
    const attempt = this.deliverSubmit(req);
    if (typeof id === 'string') {
      this.inFlight.set(id, attempt);
      const cleanup = () => {
        if (this.inFlight.get(id) === attempt) this.inFlight.delete(id);
      };
      attempt.then(cleanup, cleanup);
    }
    return attempt;
  }

  private async deliverSubmit(req: OrderRequest): Promise<BrokerOrder> {
    if (this.latencyMs > 0) await this.sleep(this.latencyMs);
    this.assertOpen();
    const result = this.exchange.submit(req, this.clock());
    if (result.rejection) throw toBrokerRejectedError(result.rejection);
    return result.order;
  }

  async getOrderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null> {
    return this.exchange.getOrder(clientOrderId);
  }

  async cancelOrder(clientOrderId: string): Promise<BrokerOrder | null> {
    this.assertOpen();
    if (this.latencyMs > 0) await this.sleep(this.latencyMs);
    this.assertOpen();
    return this.exchange.cancel(clientOrderId, this.clock());
  }

  onOrderUpdate(listener: (update: OrderUpdate) => void): () => void {
    const unsubscribe = this.exchange.onUpdate(listener);
    const wrapped = () => {
      unsubscribe();
      this.subscriptions.delete(wrapped);
    };
    this.subscriptions.add(wrapped);
    return wrapped;
  }

  /** The venue's fills of one order with the venue's fee for each (SIM_FEE_PER_SHARE / SIM_FEE_BPS). */
  async listExecutions(brokerOrderId: string): Promise<BrokerExecution[]> {
    return this.executionsFrom(this.exchange.fills().filter((f) => f.brokerOrderId === brokerOrderId));
  }

  /** Every fill on the account, oldest first (served as FILL account activities by the compat server). */
  async listAllExecutions(): Promise<BrokerExecution[]> {
    return this.executionsFrom(this.exchange.fills());
  }

  /**
   * Fills → executions with cumulative and leaves quantities. The id has Alpaca's activity form
   * (`<timestamp digits>::<id>`) with the stream's execution id after the `::`.
   */
  private executionsFrom(fills: Fill[]): BrokerExecution[] {
    const cum = new Map<string, number>();
    return fills.map((f) => {
      const qty = this.exchange.getOrder(f.clientOrderId)?.qty ?? f.qty;
      const c = (cum.get(f.brokerOrderId) ?? 0) + f.qty;
      cum.set(f.brokerOrderId, c);
      return {
        executionId: activityIdFor(f.timestamp, f.executionId),
        brokerOrderId: f.brokerOrderId,
        symbol: f.symbol,
        side: f.side,
        qty: f.qty,
        price: f.price,
        cumQty: c,
        leavesQty: Math.max(0, qty - c),
        orderStatus: c >= qty ? 'filled' : 'partially_filled',
        timestamp: f.timestamp,
        fee: f.fee,
      };
    });
  }

  /** In-process: updates are delivered synchronously, never lost. */
  streamHealthy(): boolean {
    return true;
  }

  /** Nothing to do: every update reaches listeners directly. */
  watchOrder(_clientOrderId: string): void {}

  async listOpenOrders(): Promise<BrokerOrder[]> {
    return this.exchange.listOrders({ status: 'open' });
  }

  async getAccount(): Promise<BrokerAccount> {
    const a = this.exchange.account();
    return { cash: a.cash, equity: a.equity, buyingPower: a.buyingPower, tradingBlocked: a.tradingBlocked };
  }

  async getPositions(): Promise<BrokerPosition[]> {
    return this.exchange.positions().map((p) => ({
      symbol: p.symbol,
      qty: p.qty,
      avgEntryPrice: p.avgEntryPrice,
      marketValue: p.marketValue,
    }));
  }

  /** Stop accepting submits and cancels and drop every listener. Reads keep working. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const unsubscribe of [...this.subscriptions]) unsubscribe();
  }

  private assertOpen(): void {
    // Not ambiguous: a closed simulator never received the request.
    if (this.closed) throw new BrokerUnavailableError('simulated broker is closed', false);
  }
}
