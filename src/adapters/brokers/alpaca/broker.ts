import { isTerminal, type BrokerOrder, type OrderRequest, type OrderUpdate } from '../../../contracts/order';
import type { Logger } from '../../../logging';
import { sleep } from '../../../lib/sleep';
import {
  BrokerRateLimitedError,
  BrokerRejectedError,
  BrokerUnavailableError,
  type Broker,
  type BrokerAccount,
  type BrokerCallOptions,
  type BrokerExecution,
  type BrokerPosition,
  type ListExecutionsOptions,
} from '../broker';
import { OrderUpdateMerger, type StreamFill } from './update-merge';
import { RequestBudget, type BrokerCallPriority } from '../request-budget';
import { AlpacaRestClient } from './rest';
import { streamUrlFor, TradeUpdatesStream, type StreamState } from './stream';
import {
  AlpacaWireError,
  MAX_CLIENT_ORDER_ID_LENGTH,
  accountFromAlpaca,
  eventFromAlpaca,
  executionFromAlpacaActivity,
  fromWireNumber,
  isDuplicateClientOrderIdMessage,
  orderFromAlpaca,
  orderRequestToAlpaca,
  positionFromAlpaca,
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

type Listener = (u: OrderUpdate) => void;

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
 */
export class AlpacaBroker implements Broker {
  readonly name: 'alpaca' | 'simulated';
  private readonly rest: AlpacaRestClient;
  private readonly log: Logger;
  private readonly listeners = new Set<Listener>();
  private readonly merger = new OrderUpdateMerger();
  /**
   * Followed orders: client order id → creation time when known (bounds the one-request poll listing).
   * The adapter's single poller re-reads them while the stream is down (and at the safety period while
   * it is up); followers elsewhere (the followOrder activity) never poll, they wait for its updates.
   */
  private readonly followed = new Map<string, string | undefined>();
  private lastRoundRequests = 1;
  private readonly stream: TradeUpdatesStream;
  private readonly pollIntervalMs: number;
  private readonly safetyPollIntervalMs: number;
  private readonly minPollSpacingMs: number;
  private readonly cancelSettleMs: number;
  private readonly now: () => number;
  private pollTimer: NodeJS.Timeout | undefined;
  private pollDueAt = 0;
  private pollRequestedAt = Number.POSITIVE_INFINITY;
  private polling: Promise<void> | undefined;
  private pollBackoffUntil = 0;
  private closed = false;
  /** Aborts the poller's budget waits on close (a 429 pause can last a minute). */
  private readonly closing = new AbortController();
  private readonly updateWaiters = new Set<{ clientOrderId: string; done: () => void }>();
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
    this.pollIntervalMs = opts.pollIntervalMs ?? 2_000;
    this.safetyPollIntervalMs = opts.safetyPollIntervalMs ?? 30_000;
    this.minPollSpacingMs = opts.minPollSpacingMs ?? 600;
    this.cancelSettleMs = opts.cancelSettleMs ?? 2_000;
    this.stream = new TradeUpdatesStream({
      url: opts.streamUrl ?? streamUrlFor(opts.baseUrl),
      keyId: opts.keyId,
      secretKey: opts.secretKey,
      logger: this.log,
      reconnectInitialMs: opts.reconnectInitialMs,
      reconnectMaxMs: opts.reconnectMaxMs,
      handshakeTimeoutMs: opts.streamHandshakeTimeoutMs,
      heartbeatMs: opts.heartbeatMs,
      onTradeUpdate: (d) => this.onStreamData(d),
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
      const existing = await this.lookup(req.clientOrderId, 'trade', call);
      // A rejected order is not "placed": let the venue answer the POST again (same request, same answer).
      if (existing && existing.status !== 'rejected') {
        this.log.info(
          { clientOrderId: req.clientOrderId, brokerOrderId: existing.brokerOrderId },
          'retry found the order already placed',
        );
        this.follow(existing);
        return existing;
      }
    }
    const path = '/v2/orders';
    // Exactly one POST. Any failure after this point is the caller's to retry (with isRetry).
    const res = await this.rest.request('POST', path, { body: orderRequestToAlpaca(req), priority: 'trade', ...call });
    if (res.status >= 200 && res.status < 300) {
      const order = this.parseOrder(res.body);
      this.follow(order);
      return order;
    }
    const body = (res.body ?? {}) as AlpacaErrorBody;
    if (res.status >= 400 && res.status < 500 && res.status !== 429 && isDuplicateClientOrderIdMessage(body.message)) {
      // Alpaca: the id is taken, i.e. this order already exists (an earlier attempt landed). Idempotent success.
      const existing = await this.lookup(req.clientOrderId, 'trade', call);
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
        this.follow(existing);
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
    return this.lookup(clientOrderId, 'read', opts);
  }

  /** GET by client order id at a given priority (trade: resolving a submit or cancel; poll: the poller). */
  private async lookup(
    clientOrderId: string,
    priority: BrokerCallPriority,
    opts: BrokerCallOptions,
  ): Promise<BrokerOrder | null> {
    const path = '/v2/orders:by_client_order_id';
    const res = await this.rest.request('GET', path, {
      query: { client_order_id: clientOrderId, nested: 'true' },
      priority,
      signal: opts.signal,
      deadlineMs: opts.deadlineMs,
    });
    if (res.status === 404) return null;
    if (res.status >= 200 && res.status < 300) return this.parseOrder(res.body);
    throw this.rest.errorFor('GET', path, res);
  }

  async cancelOrder(clientOrderId: string, opts: BrokerCallOptions = {}): Promise<BrokerOrder | null> {
    const call = { signal: opts.signal, deadlineMs: opts.deadlineMs };
    const order = await this.lookup(clientOrderId, 'trade', call);
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
    let current = (await this.lookup(clientOrderId, 'trade', call)) ?? order;
    while (!isTerminal(current.status) && this.now() < deadline) {
      const left = Math.max(10, deadline - this.now());
      if (this.streamHealthy()) await this.nextUpdateOf(clientOrderId, left);
      else await sleep(Math.min(200, left));
      current = (await this.lookup(clientOrderId, 'trade', call)) ?? current;
    }
    return current;
  }

  /**
   * An order's executions from FILL account activities: the only Alpaca source of real per-execution
   * ids and prices besides the stream (an order's own JSON has only cumulative qty and average price).
   * The activities endpoint cannot filter by order, so this pages through the account's FILLs from the
   * order's creation time on (oldest first, 100 a page) and keeps this order's; it stops at the page
   * that shows the order complete (leaves_qty 0). Sorted by cum_qty: Alpaca lists same-millisecond
   * partial fills in no particular order (Alpaca-API#170).
   */
  async listExecutions(brokerOrderId: string, opts: ListExecutionsOptions = {}): Promise<BrokerExecution[]> {
    const call = { signal: opts.signal, deadlineMs: opts.deadlineMs };
    let since = opts.orderCreatedAt;
    if (!since) {
      const path = `/v2/orders/${encodeURIComponent(brokerOrderId)}`;
      const res = await this.rest.request('GET', path, { priority: 'read', ...call });
      if (res.status === 404) return [];
      if (!(res.status >= 200 && res.status < 300)) throw this.rest.errorFor('GET', path, res);
      since = this.parseOrder(res.body).createdAt;
    }
    // `after` is exclusive and activity times can precede created_at by clock skew: start a minute early.
    const after = new Date(Date.parse(since) - 60_000).toISOString();
    const path = '/v2/account/activities/FILL';
    const out: BrokerExecution[] = [];
    const seen = new Set<string>();
    let pageToken: string | undefined;
    for (let page = 0; page < 1_000; page++) {
      const query: Record<string, string> = { after, direction: 'asc', page_size: '100' };
      if (pageToken) query.page_token = pageToken;
      const res = await this.rest.request('GET', path, { query, priority: 'read', ...call });
      if (!(res.status >= 200 && res.status < 300)) throw this.rest.errorFor('GET', path, res);
      if (!Array.isArray(res.body)) throw new BrokerUnavailableError(`Alpaca GET ${path}: body is not an array`, false);
      const rows = res.body as unknown[];
      let complete = false;
      for (const row of rows) {
        const e = this.parse(() => executionFromAlpacaActivity(row), path);
        if (e.brokerOrderId !== brokerOrderId || seen.has(e.executionId)) continue;
        seen.add(e.executionId);
        out.push(e);
        if (e.leavesQty <= 0) complete = true;
      }
      if (complete || rows.length < 100) break;
      const last = rows[rows.length - 1] as { id?: unknown };
      if (typeof last.id !== 'string' || last.id === pageToken) break;
      pageToken = last.id;
    }
    return out.sort((a, b) => a.cumQty - b.cumQty);
  }

  async listOpenOrders(opts: BrokerCallOptions = {}): Promise<BrokerOrder[]> {
    const path = '/v2/orders';
    const res = await this.rest.request('GET', path, {
      query: { status: 'open', nested: 'true', limit: '500', direction: 'asc' },
      priority: 'read',
      signal: opts.signal,
      deadlineMs: opts.deadlineMs,
    });
    if (res.status >= 200 && res.status < 300 && Array.isArray(res.body))
      return res.body.map((o) => this.parseOrder(o));
    if (res.status >= 200 && res.status < 300)
      throw new BrokerUnavailableError('Alpaca GET /v2/orders: body is not an array', false);
    throw this.rest.errorFor('GET', path, res);
  }

  async getAccount(opts: BrokerCallOptions = {}): Promise<BrokerAccount> {
    const path = '/v2/account';
    const res = await this.rest.request('GET', path, { priority: 'read', ...opts });
    if (res.status >= 200 && res.status < 300) return this.parse(() => accountFromAlpaca(res.body), path);
    throw this.rest.errorFor('GET', path, res);
  }

  async getPositions(opts: BrokerCallOptions = {}): Promise<BrokerPosition[]> {
    const path = '/v2/positions';
    const res = await this.rest.request('GET', path, { priority: 'read', ...opts });
    if (res.status >= 200 && res.status < 300 && Array.isArray(res.body)) {
      const body = res.body as unknown[];
      return this.parse(() => body.map(positionFromAlpaca), path);
    }
    if (res.status >= 200 && res.status < 300)
      throw new BrokerUnavailableError('Alpaca GET /v2/positions: body is not an array', false);
    throw this.rest.errorFor('GET', path, res);
  }

  // -------------------------------------------------------------------------------------------
  // updates

  /** Subscribe to order updates. The first subscription connects the trade_updates stream. */
  onOrderUpdate(listener: Listener): () => void {
    this.listeners.add(listener);
    if (!this.closed) {
      this.stream.start();
      this.scheduleNextPoll();
    }
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Follow an order not placed by this instance (e.g. after a worker restart): it is polled while the
   * stream is down and its fills are emitted once. `baseline` = what the ledger already recorded
   * (cumulative filled qty and notional), so only shares beyond it are emitted.
   */
  watchOrder(clientOrderId: string, baseline: { filledQty?: number; filledNotional?: number } = {}): void {
    this.merger.seed(clientOrderId, baseline);
    if (this.merger.isTerminal(clientOrderId)) return;
    if (!this.followed.has(clientOrderId)) this.followed.set(clientOrderId, undefined);
    this.scheduleNextPoll();
  }

  /** Stop polling an order (stream events for it are still delivered). */
  unwatchOrder(clientOrderId: string): void {
    this.followed.delete(clientOrderId);
  }

  /** Orders currently followed by the poller. */
  watchedOrders(): string[] {
    return [...this.followed.keys()];
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
    this.closing.abort();
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.listeners.clear();
    for (const w of [...this.streamWaiters]) w(false);
    for (const w of [...this.updateWaiters]) w.done();
    await this.stream.stop();
    await this.polling?.catch(() => undefined);
  }

  // -------------------------------------------------------------------------------------------
  // internals

  /**
   * Follow an order this instance placed (or found on retry). Baseline 0 unless updates were already
   * seen: an order that finished before any update reached us still has its fills reported once.
   */
  private follow(order: BrokerOrder): void {
    this.watchOrder(order.clientOrderId);
    if (this.followed.has(order.clientOrderId)) this.followed.set(order.clientOrderId, order.createdAt);
  }

  private parse<T>(fn: () => T, what: string): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof AlpacaWireError)
        throw new BrokerUnavailableError(`Alpaca ${what}: unexpected response (${err.message})`, false);
      throw err;
    }
  }

  private parseOrder(json: unknown): BrokerOrder {
    return this.parse(() => orderFromAlpaca(json), 'order');
  }

  /** Resolves on the next update emitted for this order, or after `ms`. */
  private nextUpdateOf(clientOrderId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.updateWaiters.delete(entry);
        resolve();
      };
      const entry = { clientOrderId, done };
      const t = setTimeout(done, ms);
      t.unref();
      this.updateWaiters.add(entry);
    });
  }

  private emit(updates: OrderUpdate[]): void {
    for (const u of updates) {
      for (const w of [...this.updateWaiters]) if (w.clientOrderId === u.order.clientOrderId) w.done();
      if (isTerminal(u.order.status)) this.unfollowFinished(u.order);
      for (const l of [...this.listeners]) {
        try {
          l(u);
        } catch (err) {
          this.log.error({ err, clientOrderId: u.order.clientOrderId }, 'order update listener threw');
        }
      }
    }
  }

  private onStreamData(data: unknown): void {
    if (!data || typeof data !== 'object') return;
    const d = data as Record<string, unknown>;
    let order: BrokerOrder;
    try {
      order = orderFromAlpaca(d.order);
    } catch (err) {
      this.log.warn(
        { err: { message: (err as Error).message }, event: d.event },
        'trade_updates: malformed order ignored',
      );
      return;
    }
    const rawEvent = typeof d.event === 'string' ? d.event : '';
    const event = eventFromAlpaca(rawEvent);
    const timestamp = typeof d.timestamp === 'string' ? d.timestamp : new Date(this.now()).toISOString();
    let fill: StreamFill | undefined;
    if (event === 'fill' || event === 'partial_fill') {
      const qty = fromWireNumber(d.qty);
      const price = fromWireNumber(d.price);
      if (qty === null || price === null || qty <= 0) {
        // A fill we cannot read: let the cumulative quantity on the order carry it (synthetic fill).
        this.log.warn({ event: rawEvent, clientOrderId: order.clientOrderId }, 'trade_updates: fill without qty/price');
      } else {
        const executionId =
          typeof d.execution_id === 'string' && d.execution_id
            ? d.execution_id
            : `${order.brokerOrderId}:cum:${order.filledQty}`;
        fill = { executionId, qty, price, fee: fromWireNumber(d.fee) ?? 0, timestamp };
      }
    }
    // An unreadable fill is passed as "no event": the merger then reports the shares from filled_qty.
    const isFill = event === 'fill' || event === 'partial_fill';
    this.emit(this.merger.fromStream(isFill && !fill ? null : event, order, fill, timestamp));
  }

  private onStreamState(s: StreamState): void {
    if (s === 'listening') {
      for (const w of [...this.streamWaiters]) w(true);
      // Catch up on anything that happened between the last poll and this connection.
      this.ensurePoll(0);
    } else if (s === 'down') {
      // Events may be lost from now on: poll soon rather than waiting out the (long) safety period.
      this.ensurePoll(Math.min(this.pollIntervalMs, 250));
    }
  }

  /**
   * Make sure a poll round runs within `delayMs`. Never postpones an earlier round and never runs two
   * rounds at once (a round in flight reschedules itself when it ends).
   */
  private ensurePoll(delayMs: number): void {
    if (this.closed || this.listeners.size === 0 || this.followed.size === 0) return;
    // After a 429 nothing polls before the broker's reset time.
    delayMs = Math.max(delayMs, this.pollBackoffUntil - this.now());
    const due = this.now() + delayMs;
    if (this.polling) {
      // Remember the request; the round in flight honours it when it ends.
      this.pollRequestedAt = Math.min(this.pollRequestedAt, due);
      return;
    }
    if (this.pollTimer && this.pollDueAt <= due) return;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollDueAt = due;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.polling = this.pollRound()
        .catch((err: unknown) => this.log.warn({ err }, 'order poll round failed'))
        .finally(() => {
          this.polling = undefined;
          const requested = this.pollRequestedAt;
          this.pollRequestedAt = Number.POSITIVE_INFINITY;
          if (requested !== Number.POSITIVE_INFINITY) this.ensurePoll(Math.max(0, requested - this.now()));
          else this.scheduleNextPoll();
        });
    }, delayMs);
    this.pollTimer.unref();
  }

  private scheduleNextPoll(): void {
    const base = this.stream.state === 'listening' ? this.safetyPollIntervalMs : this.pollIntervalMs;
    if (base <= 0) return;
    // The budget bounds the rate; this only keeps a round that needed many lookups from repeating at once.
    const spacing = this.lastRoundRequests * this.minPollSpacingMs;
    this.ensurePoll(Math.max(base, spacing, this.pollBackoffUntil - this.now()));
  }

  /**
   * A finished order is no longer polled, but its bracket legs that are still working are: they are
   * orders of the same trade whose fills must still arrive when the stream is down.
   */
  private unfollowFinished(order: BrokerOrder): void {
    this.followed.delete(order.clientOrderId);
    for (const leg of order.legs ?? []) {
      if (!isTerminal(leg.status) && !this.merger.isTerminal(leg.clientOrderId))
        this.followed.set(leg.clientOrderId, leg.createdAt);
    }
  }

  /**
   * One pass over followed orders, at the lowest budget priority. Every followed order whose creation
   * time is known is read with ONE request (`GET /v2/orders?status=all&after=<oldest>&nested=true`, up to
   * 500 orders); only orders that listing did not cover are looked up one by one. So following N orders
   * costs about one request per round, not N.
   */
  private async pollRound(): Promise<void> {
    const signal = this.closing.signal;
    const ids = [...this.followed.keys()];
    const snapshots = new Map<string, BrokerOrder>();
    let requests = 0;
    const onError = (err: unknown, clientOrderId?: string): void => {
      if (err instanceof BrokerRateLimitedError) {
        // Only when closing (the budget otherwise waits a 429 out): nothing to reschedule around.
        this.pollBackoffUntil = this.now() + err.retryAfterMs;
        return;
      }
      this.log.warn(
        { err: { name: (err as Error).name, message: (err as Error).message }, clientOrderId },
        'order poll failed',
      );
    };
    const since = ids
      .map((id) => this.followed.get(id))
      .filter((t): t is string => typeof t === 'string' && Number.isFinite(Date.parse(t)))
      .sort()[0];
    if (since && ids.length > 1) {
      try {
        requests++;
        for (const o of await this.listOrdersSince(since, signal)) {
          snapshots.set(o.clientOrderId, o);
          for (const leg of o.legs ?? []) snapshots.set(leg.clientOrderId, leg);
        }
      } catch (err) {
        onError(err);
        return;
      }
    }
    const at = new Date(this.now()).toISOString();
    for (const clientOrderId of ids) {
      if (this.closed) return;
      if (!this.followed.has(clientOrderId)) continue; // finished meanwhile (a stream event)
      let order = snapshots.get(clientOrderId) ?? null;
      if (!order) {
        try {
          requests++;
          order = await this.lookup(clientOrderId, 'poll', { signal });
        } catch (err) {
          onError(err, clientOrderId);
          break;
        }
      }
      if (!order) continue; // not (yet) known at the broker
      if (this.followed.has(clientOrderId)) this.followed.set(clientOrderId, order.createdAt);
      this.emit(this.merger.fromSnapshot(order, at));
      // Legs report their own fills (the parent's snapshot carries them nested).
      for (const leg of order.legs ?? []) {
        if (this.merger.has(leg.clientOrderId) || leg.filledQty > 0 || leg.status !== 'held')
          this.emit(this.merger.fromSnapshot(leg, at));
      }
      if (isTerminal(order.status)) this.unfollowFinished(order);
    }
    this.lastRoundRequests = Math.max(1, requests);
  }

  /** Orders created after `sinceIso` (minus a margin for clock skew), parents with legs nested. */
  private async listOrdersSince(sinceIso: string, signal: AbortSignal): Promise<BrokerOrder[]> {
    const path = '/v2/orders';
    const after = new Date(Date.parse(sinceIso) - 60_000).toISOString();
    const res = await this.rest.request('GET', path, {
      query: { status: 'all', after, direction: 'asc', limit: '500', nested: 'true' },
      priority: 'poll',
      signal,
    });
    if (res.status >= 200 && res.status < 300 && Array.isArray(res.body))
      return (res.body as unknown[]).map((o) => this.parseOrder(o));
    if (res.status >= 200 && res.status < 300)
      throw new BrokerUnavailableError('Alpaca GET /v2/orders: body is not an array', false);
    throw this.rest.errorFor('GET', path, res);
  }
}
