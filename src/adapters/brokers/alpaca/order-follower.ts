import { isTerminal, type BrokerOrder, type OrderUpdate } from '../../../contracts/order';
import type { Logger } from '../../../logging';
import { BrokerRateLimitedError } from '../broker';
import type { AlpacaReads } from './reads';
import { OrderUpdateMerger, type StreamFill } from './update-merge';
import type { StreamState } from './stream';
import { eventFromAlpaca, fromWireNumber, orderFromAlpaca } from './wire';

export type OrderUpdateListener = (u: OrderUpdate) => void;

export interface OrderFollowerOptions {
  reads: AlpacaReads;
  logger: Logger;
  now: () => number;
  /** The trade_updates stream's state now (decides the poll period). */
  streamState: () => StreamState;
  /** Poll period for followed orders while the stream is not listening. */
  pollIntervalMs: number;
  /** Poll period while the stream IS listening (catches events Alpaca never sent). 0 = off. */
  safetyPollIntervalMs: number;
  /** Minimum spacing per request of the last poll round before the next one starts. */
  minPollSpacingMs: number;
}

/**
 * Following orders until they are terminal, so that their fills reach listeners once per share whatever
 * the stream does: trade_updates events and poll snapshots both go through one merge (OrderUpdateMerger in
 * update-merge.ts: execution ids and cumulative quantity), and the single poller re-reads followed orders
 * while the stream is down (and at the safety period while it is up). Followers elsewhere (the followOrder activity) never
 * poll; they wait for these updates.
 */
export class OrderFollower {
  private readonly listeners = new Set<OrderUpdateListener>();
  private readonly merger = new OrderUpdateMerger();
  /**
   * Followed orders: client order id → creation time when known (bounds the one-request poll listing).
   */
  private readonly followed = new Map<string, string | undefined>();
  private readonly updateWaiters = new Set<{ clientOrderId: string; done: () => void }>();
  private readonly log: Logger;
  private readonly now: () => number;
  private lastRoundRequests = 1;
  private pollTimer: NodeJS.Timeout | undefined;
  private pollDueAt = 0;
  private pollRequestedAt = Number.POSITIVE_INFINITY;
  private polling: Promise<void> | undefined;
  private pollBackoffUntil = 0;
  private closed = false;
  /** Aborts the poller's budget waits on close (a 429 pause can last a minute). */
  private readonly closing = new AbortController();

  constructor(private readonly opts: OrderFollowerOptions) {
    this.log = opts.logger;
    this.now = opts.now;
  }

  subscribe(listener: OrderUpdateListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** See AlpacaBroker.watchOrder. */
  watch(clientOrderId: string, baseline: { filledQty?: number; filledNotional?: number } = {}): void {
    this.merger.seed(clientOrderId, baseline);
    if (this.merger.isTerminal(clientOrderId)) return;
    if (!this.followed.has(clientOrderId)) this.followed.set(clientOrderId, undefined);
    this.scheduleNextPoll();
  }

  /**
   * Follow an order this instance placed (or found on retry). Baseline 0 unless updates were already
   * seen: an order that finished before any update reached us still has its fills reported once.
   */
  follow(order: BrokerOrder): void {
    this.watch(order.clientOrderId);
    if (this.followed.has(order.clientOrderId)) this.followed.set(order.clientOrderId, order.createdAt);
  }

  unwatch(clientOrderId: string): void {
    this.followed.delete(clientOrderId);
  }

  watched(): string[] {
    return [...this.followed.keys()];
  }

  /** Resolves on the next update emitted for this order, or after `ms`. */
  nextUpdateOf(clientOrderId: string, ms: number): Promise<void> {
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

  /** One trade_updates message's `data`. */
  onStreamData(data: unknown): void {
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

  onStreamState(s: StreamState): void {
    if (s === 'listening') {
      // Catch up on anything that happened between the last poll and this connection.
      this.ensurePoll(0);
    } else if (s === 'down') {
      // Events may be lost from now on: poll soon rather than waiting out the (long) safety period.
      this.ensurePoll(Math.min(this.opts.pollIntervalMs, 250));
    }
  }

  scheduleNextPoll(): void {
    const base = this.opts.streamState() === 'listening' ? this.opts.safetyPollIntervalMs : this.opts.pollIntervalMs;
    if (base <= 0) return;
    // The budget bounds the rate; this only keeps a round that needed many lookups from repeating at once.
    const spacing = this.lastRoundRequests * this.opts.minPollSpacingMs;
    this.ensurePoll(Math.max(base, spacing, this.pollBackoffUntil - this.now()));
  }

  /** Stop polling and delivering: no listener is called after this; waiters are released. */
  stop(): void {
    this.closed = true;
    this.closing.abort();
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.listeners.clear();
    for (const w of [...this.updateWaiters]) w.done();
  }

  /** Resolves when a poll round in flight has ended. */
  async idle(): Promise<void> {
    await this.polling?.catch(() => undefined);
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
        for (const o of await this.opts.reads.ordersSince(since, signal)) {
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
          order = await this.opts.reads.orderByClientOrderId(clientOrderId, 'poll', { signal });
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
}
