import { isTerminal, type BrokerOrder, type OrderRequest } from '../../../contracts/order';
import type { Logger } from '../../../logging';
import { sleep } from '../../../lib/sleep';
import {
  BrokerRejectedError,
  BrokerUnavailableError,
  type Broker,
  type BrokerAccount,
  type BrokerCallOptions,
  type BrokerExecution,
  type BrokerPosition,
  type ListExecutionsOptions,
  type BrokerFee,
  type FeeActivities,
} from '../broker';
import { RequestBudget } from '../request-budget';
import { OrderFollower, type OrderUpdateListener } from './order-follower';
import { AlpacaReads, parseOrderResponse } from './reads';
import { AlpacaRestClient } from './rest';
import { streamUrlFor, TradeUpdatesStream, type StreamState } from './stream';
import {
  MAX_CLIENT_ORDER_ID_LENGTH,
  isDuplicateClientOrderIdMessage,
  orderRequestToAlpaca,
  type AlpacaErrorBody,
} from './wire';

export interface AlpacaBrokerOptions {
  /** REST base URL, e.g. https://paper-api.alpaca.markets (ALPACA_BASE_URL). */
  baseUrl: string;
  /** APCA-API-KEY-ID (BROKER_API_KEY). */
  keyId: string;
  /** APCA-API-SECRET-KEY (BROKER_API_SECRET). */
  secretKey: string;
  logger: Logger;
  /** trade_updates URL (ALPACA_STREAM_URL); default: base URL with ws(s):// and `/stream`. */
  streamUrl?: string;
  /** Reported as Broker.name: 'simulated' when pointed at the local simulated venue. Default 'alpaca'. */
  name?: 'alpaca' | 'simulated';
  /** Per-request timeout (BROKER_HTTP_TIMEOUT_MS). Default 10 000. */
  httpTimeoutMs?: number;
  /** Poll period for followed orders while the stream is not listening. Default 2 000. */
  pollIntervalMs?: number;
  /** Poll period while the stream IS listening (catches events Alpaca never sent). 0 = off. Default 30 000. */
  safetyPollIntervalMs?: number;
  /**
   * Minimum spacing per request of the last poll round before the next one starts. A round is one
   * `GET /v2/orders?status=all&after=…` for every followed order (plus a lookup per order it did not
   * cover), so this rarely matters; the request budget is what bounds the rate. Default 600.
   */
  minPollSpacingMs?: number;
  /** How long cancelOrder waits for pending_cancel to become terminal. Default 2 000. */
  cancelSettleMs?: number;
  /** Stream reconnect backoff (exponential, jittered). Defaults 500 → 30 000. */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  streamHandshakeTimeoutMs?: number;
  heartbeatMs?: number;
  /**
   * The process's broker request budget (shared by every call of this adapter, including its poller).
   * Default: a budget of `rateLimitPerMinute`.
   */
  budget?: RequestBudget;
  /** Requests per minute when no `budget` is given (BROKER_RATE_LIMIT_PER_MIN). 0 = unlimited. Default 0. */
  rateLimitPerMinute?: number;
  /** Injected for tests. */
  fetch?: typeof fetch;
  now?: () => number;
}

/**
 * Alpaca Trading API v2 as a `Broker`. See docs/brokers.md for the full contract; the money rules:
 *
 * 1. POST /v2/orders is sent at most once per submitOrder call; nothing here retries it. A lost
 *    response surfaces as BrokerUnavailableError(ambiguous=true); the caller retries with
 *    `{ isRetry: true }`, which looks the order up by client order id before any new POST.
 * 2. Alpaca refuses a reused client_order_id ("client_order_id must be unique"); that answer means
 *    "you already placed this", so we return the existing order instead of failing.
 * 3. Fills reach listeners once per share: stream events are deduplicated (execution id and
 *    cumulative quantity), and followed orders are polled while the stream is down.
 *
 * Following orders: every order placed through submitOrder is followed until it is terminal.
 * Orders from before a restart are followed with `watchOrder(clientOrderId, baseline)`.
 * The stream connects when the first listener subscribes (onOrderUpdate).
 *
 * Parts: this file places and cancels orders (the writes and their money rules); reads.ts parses the read
 * endpoints; order-follower.ts follows orders to their end (stream + poller, one merge).
 */
export class AlpacaBroker implements Broker, FeeActivities {
  readonly name: 'alpaca' | 'simulated';
  private readonly rest: AlpacaRestClient;
  private readonly reads: AlpacaReads;
  private readonly follower: OrderFollower;
  private readonly log: Logger;
  private readonly stream: TradeUpdatesStream;
  private readonly cancelSettleMs: number;
  private readonly now: () => number;
  private closed = false;
  private readonly streamWaiters = new Set<(ok: boolean) => void>();

  constructor(opts: AlpacaBrokerOptions) {
    this.name = opts.name ?? 'alpaca';
    this.log = opts.logger.child({ broker: this.name });
    this.now = opts.now ?? Date.now;
    this.rest = new AlpacaRestClient({
      baseUrl: opts.baseUrl,
      keyId: opts.keyId,
      secretKey: opts.secretKey,
      timeoutMs: opts.httpTimeoutMs ?? 10_000,
      logger: this.log,
      fetch: opts.fetch,
      now: this.now,
      budget: opts.budget ?? new RequestBudget({ limitPerMinute: opts.rateLimitPerMinute ?? 0, now: this.now }),
    });
    this.reads = new AlpacaReads(this.rest);
    this.cancelSettleMs = opts.cancelSettleMs ?? 2_000;
    this.follower = new OrderFollower({
      reads: this.reads,
      logger: this.log,
      now: this.now,
      streamState: () => this.stream.state,
      pollIntervalMs: opts.pollIntervalMs ?? 2_000,
      safetyPollIntervalMs: opts.safetyPollIntervalMs ?? 30_000,
      minPollSpacingMs: opts.minPollSpacingMs ?? 600,
    });
    this.stream = new TradeUpdatesStream({
      url: opts.streamUrl ?? streamUrlFor(opts.baseUrl),
      keyId: opts.keyId,
      secretKey: opts.secretKey,
      logger: this.log,
      reconnectInitialMs: opts.reconnectInitialMs,
      reconnectMaxMs: opts.reconnectMaxMs,
      handshakeTimeoutMs: opts.streamHandshakeTimeoutMs,
      heartbeatMs: opts.heartbeatMs,
      onTradeUpdate: (d) => this.follower.onStreamData(d),
      onStateChange: (s) => this.onStreamState(s),
    });
  }

  // -------------------------------------------------------------------------------------------
  // orders

  async submitOrder(req: OrderRequest, opts: { isRetry?: boolean } & BrokerCallOptions = {}): Promise<BrokerOrder> {
    const call = { signal: opts.signal, deadlineMs: opts.deadlineMs };
    if (!req.clientOrderId || req.clientOrderId.length > MAX_CLIENT_ORDER_ID_LENGTH) {
      // Without a valid idempotency key the order could not be retried safely: refuse before sending.
      throw new BrokerRejectedError(
        `client_order_id must be 1..${MAX_CLIENT_ORDER_ID_LENGTH} characters (got ${req.clientOrderId.length})`,
        'invalid_client_order_id',
      );
    }
    if (opts.isRetry) {
      // A previous attempt may have landed (its response was lost). Find it before placing anything.
      const existing = await this.reads.orderByClientOrderId(req.clientOrderId, 'trade', call);
      // A rejected order is not "placed": let the venue answer the POST again (same request, same answer).
      if (existing && existing.status !== 'rejected') {
        this.log.info(
          { clientOrderId: req.clientOrderId, brokerOrderId: existing.brokerOrderId },
          'retry found the order already placed',
        );
        this.follower.follow(existing);
        return existing;
      }
    }
    const path = '/v2/orders';
    // Exactly one POST. Any failure after this point is the caller's to retry (with isRetry).
    const res = await this.rest.request('POST', path, { body: orderRequestToAlpaca(req), priority: 'trade', ...call });
    if (res.status >= 200 && res.status < 300) {
      const order = parseOrderResponse(res.body);
      this.follower.follow(order);
      return order;
    }
    const body = (res.body ?? {}) as AlpacaErrorBody;
    if (res.status >= 400 && res.status < 500 && res.status !== 429 && isDuplicateClientOrderIdMessage(body.message)) {
      // Alpaca: the id is taken, i.e. this order already exists (an earlier attempt landed). Idempotent success.
      const existing = await this.reads.orderByClientOrderId(req.clientOrderId, 'trade', call);
      if (existing?.status === 'rejected') {
        // The id is spent on an order the venue refused: that is this request's answer.
        throw new BrokerRejectedError(
          existing.reason ?? `order ${req.clientOrderId} was rejected`,
          'rejected',
          res.status,
        );
      }
      if (existing) {
        if (existing.symbol !== req.symbol || existing.side !== req.side || existing.qty !== req.qty) {
          this.log.warn(
            {
              clientOrderId: req.clientOrderId,
              existing: { symbol: existing.symbol, side: existing.side, qty: existing.qty },
            },
            'client_order_id reused with different order parameters; returning the existing order',
          );
        }
        this.log.info(
          { clientOrderId: req.clientOrderId, brokerOrderId: existing.brokerOrderId },
          'duplicate client_order_id: returning existing order',
        );
        this.follower.follow(existing);
        return existing;
      }
      // "must be unique" but not found: cannot tell what happened. Treat as unresolved, never as rejected.
      throw new BrokerUnavailableError(
        `Alpaca reported client_order_id ${req.clientOrderId} as taken but the lookup found no order`,
        true,
      );
    }
    throw this.rest.errorFor('POST', path, res);
  }

  async getOrderByClientOrderId(clientOrderId: string, opts: BrokerCallOptions = {}): Promise<BrokerOrder | null> {
    return this.reads.orderByClientOrderId(clientOrderId, 'read', opts);
  }

  async cancelOrder(clientOrderId: string, opts: BrokerCallOptions = {}): Promise<BrokerOrder | null> {
    const call = { signal: opts.signal, deadlineMs: opts.deadlineMs };
    const order = await this.reads.orderByClientOrderId(clientOrderId, 'trade', call);
    if (!order) return null;
    // Cancelling a finished order is a no-op by contract (a fill may have raced the cancel).
    if (isTerminal(order.status)) return order;
    const path = `/v2/orders/${encodeURIComponent(order.brokerOrderId)}`;
    const res = await this.rest.request('DELETE', path, { priority: 'trade', ...call });
    // 204: accepted. 404/422: already gone or not cancelable (filled/canceled meanwhile) → report current state.
    if (!(res.status >= 200 && res.status < 300) && res.status !== 404 && res.status !== 422) {
      throw this.rest.errorFor('DELETE', path, res);
    }
    // Alpaca cancels asynchronously (pending_cancel → canceled); wait briefly for the final state. While
    // the stream is healthy, wait for its next update of this order instead of re-reading every 200 ms:
    // a cancel then costs three requests (lookup, DELETE, lookup), not a dozen.
    const deadline = this.now() + this.cancelSettleMs;
    let current = (await this.reads.orderByClientOrderId(clientOrderId, 'trade', call)) ?? order;
    while (!isTerminal(current.status) && this.now() < deadline) {
      const left = Math.max(10, deadline - this.now());
      if (this.streamHealthy()) await this.follower.nextUpdateOf(clientOrderId, left);
      else await sleep(Math.min(200, left));
      current = (await this.reads.orderByClientOrderId(clientOrderId, 'trade', call)) ?? current;
    }
    return current;
  }

  /** An order's executions from FILL account activities (reads.ts: paging and order). */
  async listExecutions(brokerOrderId: string, opts: ListExecutionsOptions = {}): Promise<BrokerExecution[]> {
    return this.reads.executionsOf(brokerOrderId, opts);
  }

  /** Regulatory fees (FEE activities), charged at end of day outside any fill: reconciliation books them. */
  async listFees(afterDate: string, opts: BrokerCallOptions = {}): Promise<BrokerFee[]> {
    return this.reads.fees(afterDate, opts);
  }

  async listOpenOrders(opts: BrokerCallOptions = {}): Promise<BrokerOrder[]> {
    return this.reads.openOrders(opts);
  }

  async getAccount(opts: BrokerCallOptions = {}): Promise<BrokerAccount> {
    return this.reads.account(opts);
  }

  async getPositions(opts: BrokerCallOptions = {}): Promise<BrokerPosition[]> {
    return this.reads.positions(opts);
  }

  // -------------------------------------------------------------------------------------------
  // updates

  /** Subscribe to order updates. The first subscription connects the trade_updates stream. */
  onOrderUpdate(listener: OrderUpdateListener): () => void {
    const unsubscribe = this.follower.subscribe(listener);
    if (!this.closed) {
      this.stream.start();
      this.follower.scheduleNextPoll();
    }
    return unsubscribe;
  }

  /**
   * Follow an order not placed by this instance (e.g. after a worker restart): it is polled while the
   * stream is down and its fills are emitted once. `baseline` = what the ledger already recorded
   * (cumulative filled qty and notional), so only shares beyond it are emitted.
   */
  watchOrder(clientOrderId: string, baseline: { filledQty?: number; filledNotional?: number } = {}): void {
    this.follower.watch(clientOrderId, baseline);
  }

  /** Stop polling an order (stream events for it are still delivered). */
  unwatchOrder(clientOrderId: string): void {
    this.follower.unwatch(clientOrderId);
  }

  /** Orders currently followed by the poller. */
  watchedOrders(): string[] {
    return this.follower.watched();
  }

  get streamState(): StreamState {
    return this.stream.state;
  }

  /** The trade_updates stream is authorised and listening: updates arrive without polling. */
  streamHealthy(): boolean {
    return this.stream.state === 'listening';
  }

  /**
   * Resolves true once the trade_updates stream is listening (false on timeout). Callers that want
   * LEAN's "gate orders on stream readiness" behaviour await this before submitting.
   */
  async waitForStream(timeoutMs: number): Promise<boolean> {
    if (this.stream.state === 'listening') return true;
    if (this.closed) return false;
    this.stream.start();
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.streamWaiters.delete(done);
        resolve(ok);
      };
      const t = setTimeout(() => done(false), timeoutMs);
      this.streamWaiters.add(done);
    });
  }

  /** The request budget every call of this adapter draws from. */
  get budget(): RequestBudget {
    return this.rest.budget;
  }

  /** 429 answers received (each waited out and resent, never a failure by itself). */
  get rateLimitedResponses(): number {
    return this.rest.rateLimitedResponses;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.follower.stop();
    for (const w of [...this.streamWaiters]) w(false);
    await this.stream.stop();
    await this.follower.idle();
  }

  private onStreamState(s: StreamState): void {
    if (s === 'listening') for (const w of [...this.streamWaiters]) w(true);
    this.follower.onStreamState(s);
  }
}
