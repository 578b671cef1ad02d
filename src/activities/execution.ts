import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import { isTerminal, type BrokerOrder, type OrderRequest, type OrderStatus } from '../contracts/order';
import { BrokerRateLimitedError, BrokerRejectedError, type Broker } from '../adapters/brokers/broker';
import { fresher, type OrderTracker } from '../adapters/brokers/order-tracker';
import {
  bookOrderProgress,
  finalizeTrade as finalizeTradeInLedger,
  markOrderRejected,
  recordFills as recordFillsInLedger,
  recordOrderIntent,
  syncOrder,
  updateTradeStatus,
  type OrderContext,
  type OrderRecord,
} from '../adapters/postgres/ledger';
import { fillsToBook, ordersOf, type LedgerFill } from '../domain/fills';
import {
  endSeenByFollow,
  isTradeComplete,
  workingPhaseOf,
  type TradeEnd,
  type TradeOutcome,
} from '../domain/trade-lifecycle';
import { withCorrelation, type Logger } from '../logging';
import { rateLimitWaitSeconds, rateLimitWaits, signalToOrderSeconds, tradesFinished } from '../metrics';

/** Failure types the workflow's retry policies name. Always set explicitly; never rely on class names. */
export const BROKER_REJECTED = 'BrokerRejected';
export const BROKER_RATE_LIMITED = 'BrokerRateLimited';
export const ORDER_NOT_FOUND = 'OrderNotFound';
/**
 * The submit and the bookkeeping calls heartbeat this often while they run, from this long after they started
 * (heartbeatingWhile): far inside their heartbeat timeout (ACTIVITY_OPTIONS, 10 s), and longer than a fast call
 * takes (a submit's POST and its wait of up to 1 s for the order to complete; a cancel; a ledger write), so the
 * trades that go through quickly cost the server no heartbeat.
 */
const HEARTBEAT_EVERY_MS = 2_000;
/** How long before an attempt's start-to-close a submit stops waiting out a 429. */
const SUBMIT_DEADLINE_MARGIN_MS = 3_000;
/** Consecutive "no such order" answers (a second apart) before an order counts as lost. */
const NOT_FOUND_LIMIT = 15;
/**
 * A waiting follow heartbeats from this long after it started, not at once: every heartbeat the server receives
 * is a write of the workflow's state (one more SQLite call on the dev server, the busiest process at
 * saturation), and most follows see their order change well within it (the simulated venue fills at the next
 * bar). Far inside the 10 s heartbeat timeout, so a dead worker is noticed as soon as before; a cancel reaching
 * a follow in its first second waits for this first heartbeat (or the follow's own return) to be delivered.
 */
const FIRST_HEARTBEAT_AFTER_MS = 1000;

export interface ExecutionDeps {
  pool: Pool;
  broker: Broker;
  tracker: OrderTracker;
  accountId: string;
  logger: Logger;
  /**
   * How often followOrder re-checks the tracker and heartbeats while no update comes (no broker request:
   * the broker's own poller covers a stream outage).
   */
  pollIntervalMs?: number;
}

export interface SubmitOrderInput {
  workflowId: string;
  correlationId: string;
  request: OrderRequest;
  /**
   * Set by tradeWorkflowV2 (issue 12, "booking happens where fills are learned"): once the broker has accepted the
   * order, wait up to this long for it to become final (a marketable order fills within moments) before answering.
   * An order that completes in the window is booked and its trade closed in one ledger transaction, as a closing
   * follow does, so the trade needs no followOrder activity and no workflow task for it; the answer is then a
   * SubmittedOrder. Histories recorded before it omit it, and their submitOrder answered with the BrokerOrder.
   */
  awaitCompletionMs?: number;
}

/** submitOrder's answer to a workflow that asked it to await the order's completion (awaitCompletionMs). */
export interface SubmittedOrder {
  order: BrokerOrder;
  /** The outcome the trade was closed with in the ledger by this call, if the order completed in the window. */
  finalized?: TradeOutcome;
}

/** What the workflow already knows about one order (the parent or a bracket leg). */
export interface KnownOrderState {
  cumQty: number;
  avgPrice: number | null;
  status: OrderStatus;
}

export interface FollowOrderInput {
  /** Set by workflows that book where fills are learned; older histories omit it (they book with recordFills). */
  workflowId?: string;
  clientOrderId: string;
  correlationId: string;
  known: Record<string, KnownOrderState>;
  /** Return after this long even if nothing changed, so the workflow's history shows the order is alive. */
  maxWaitMs: number;
  /**
   * Set by workflows past the finalize-joins-follow patch, on the follow whose complete order ends the trade
   * (broker_final): when the order comes back complete, the booking also closes the trade in the ledger and
   * releases the reservation, so no finalizeTrade activity follows.
   */
  finalizeWhenComplete?: boolean;
}

export interface OrderProgress {
  order: BrokerOrder;
  /**
   * With a workflowId: the fills this call booked. Without (older workflows): fills not yet known to the
   * workflow, for its recordFills call.
   */
  fills: LedgerFill[];
  changed: boolean;
  /** True when the fills were booked by this activity. */
  booked?: boolean;
  /** The outcome the trade was closed with in the ledger by this call (finalizeWhenComplete), if it was. */
  finalized?: TradeOutcome;
}

export interface RecordFillsInput {
  workflowId: string;
  correlationId: string;
  order: BrokerOrder;
  fills: LedgerFill[];
  tradeStatus: string;
}

export interface FinalizeTradeInput {
  workflowId: string;
  outcome: TradeOutcome;
  reasonCode?: string;
  filledQty: number;
  avgFillPrice: number | null;
}

/** The close a booking makes of a trade whose end an activity saw (endSeenByFollow), if it saw one. */
function closingOf(end: TradeEnd | null): { outcome: TradeOutcome; reasonCode?: string } | undefined {
  return end ? { outcome: end.outcome, ...(end.reasonCode ? { reasonCode: end.reasonCode } : {}) } : undefined;
}

/** The fresher of two states of the same order, leg by leg. */
function freshestWithLegs(a: BrokerOrder, b: BrokerOrder): BrokerOrder {
  const top = fresher(a, b);
  const other = top === a ? b : a;
  if (!top.legs && !other.legs) return top;
  const legs = (top.legs ?? other.legs ?? []).map((l) =>
    fresher(
      other.legs?.find((x) => x.clientOrderId === l.clientOrderId),
      l,
    ),
  );
  return { ...top, legs };
}

function hasChanged(order: BrokerOrder, known: Record<string, KnownOrderState>): boolean {
  return ordersOf(order).some((o) => {
    const k = known[o.clientOrderId];
    return !k || k.status !== o.status || o.filledQty > k.cumQty;
  });
}

/** Translate broker errors into Temporal semantics: rejections are final, rate limits wait for the reset. */
function toActivityError(err: unknown): unknown {
  if (err instanceof BrokerRejectedError) {
    return ApplicationFailure.create({
      type: BROKER_REJECTED,
      message: `${err.code}: ${err.message}`,
      nonRetryable: true,
      details: [{ code: err.code, httpStatus: err.httpStatus ?? null, message: err.message }],
    });
  }
  if (err instanceof BrokerRateLimitedError) {
    const waitMs = Math.max(1000, err.retryAfterMs);
    rateLimitWaits.inc({ where: 'order_activity' });
    rateLimitWaitSeconds.inc({ where: 'order_activity' }, waitMs / 1000);
    return ApplicationFailure.create({
      type: BROKER_RATE_LIMITED,
      message: err.message,
      nextRetryDelay: waitMs,
    });
  }
  // Timeouts, resets, 5xx: ordinary errors, retried by the workflow's policy. The retry looks the order
  // up by client order id before re-submitting (isRetry), so an order that did land is never doubled.
  return err;
}

export function createExecutionActivities(deps: ExecutionDeps) {
  const { pool, broker, tracker, accountId } = deps;
  const pollIntervalMs = deps.pollIntervalMs ?? 1000;
  const record = (workflowId: string, correlationId: string, request: OrderRequest): OrderRecord => ({
    workflowId,
    correlationId,
    accountId,
    broker: broker.name,
    request,
  });
  const context = (workflowId: string, correlationId: string): OrderContext => ({
    workflowId,
    correlationId,
    accountId,
    broker: broker.name,
  });

  /**
   * Executions known for a trade's orders: the update stream's, and — when the stream did not cover
   * every filled share (events lost, or the order filled before anyone listened) — the broker's own
   * execution listing. What neither explains is inferred by the booking step.
   */
  async function executionsOf(order: BrokerOrder, signal?: AbortSignal): Promise<LedgerFill[]> {
    const out: LedgerFill[] = [];
    for (const o of ordersOf(order)) {
      const streamed = tracker.fillsAfter(o.clientOrderId, 0);
      out.push(...streamed);
      // Covered = the streamed executions' own quantities (distinct by execution id), not the highest
      // cumulative quantity seen: a later event that arrived while an earlier one was lost or is still in
      // flight (reordered) leaves a gap, and only the broker's listing fills it with the real execution and
      // its fee. Measured by the max, such a gap was booked as one inferred fill with an unknown (NULL) fee.
      const covered = streamed.reduce((s, f) => s + f.qty, 0);
      if (covered < o.filledQty) {
        try {
          const listed = await broker.listExecutions(o.brokerOrderId, {
            orderCreatedAt: o.createdAt,
            ...(signal ? { signal } : {}),
          });
          out.push(...listed.map((e) => ({ ...e, clientOrderId: o.clientOrderId })));
        } catch (err) {
          // Not fatal: the booking step infers the missing shares; their fee stays unknown (NULL).
          deps.logger.warn({ err, client_order_id: o.clientOrderId }, 'execution listing failed; inferring fills');
        }
      }
    }
    return out;
  }

  /** The one booking step for every order snapshot an activity learns (ledger.bookOrderProgress). */
  async function book(
    workflowId: string,
    correlationId: string,
    order: BrokerOrder,
    closing?: { outcome: TradeOutcome; reasonCode?: string },
  ): Promise<LedgerFill[]> {
    const { booked, closed } = await bookOrderProgress(
      pool,
      context(workflowId, correlationId),
      order,
      await executionsOf(order, Context.current().cancellationSignal),
      workingPhaseOf(order),
      closing,
    );
    // Counted once per trade: by the close that released the reservation (not by a second close).
    if (closing && closed) tradesFinished.inc({ status: closing.outcome, reason_code: closing.reasonCode ?? 'none' });
    if (booked.length) {
      withCorrelation(deps.logger, correlationId).info(
        {
          workflow_id: workflowId,
          fills: booked.length,
          qty: booked.reduce((s, f) => s + f.qty, 0),
          filled_qty: order.filledQty,
          status: order.status,
        },
        'fills booked',
      );
    }
    return booked;
  }

  /**
   * The order once its entry is final (filled, cancelled, rejected, expired) or `ms` has passed, whichever is
   * first: fresher states from the update stream, or from the broker's poller while the stream is down (an order
   * placed through submitOrder is watched already). A bracket's legs may rest for hours: they are the follow's.
   */
  async function entryFinalOrTimeout(order: BrokerOrder, ms: number, signal: AbortSignal): Promise<BrokerOrder> {
    const until = Date.now() + ms;
    let current = order;
    for (;;) {
      const tracked = tracker.latestWithLegs(order.clientOrderId);
      if (tracked) current = freshestWithLegs(current, tracked);
      const left = until - Date.now();
      if (isTerminal(current.status) || left <= 0 || signal.aborted) return current;
      await tracker.waitForUpdate(
        ordersOf(current).map((o) => o.clientOrderId),
        left,
        signal,
      );
    }
  }

  return {
    /**
     * Place the trade's order, idempotently by client order id; with awaitCompletionMs, also wait (briefly) for it
     * to become final, and book it — closing the trade when it completed — in one transaction.
     */
    async submitOrder(input: SubmitOrderInput): Promise<BrokerOrder | SubmittedOrder> {
      const ctx = Context.current();
      // The retry of a submit whose worker died (same client order id, looked up first) finds and books the order
      // within the heartbeat timeout instead of the 30 s start-to-close.
      return heartbeatingWhile<BrokerOrder | SubmittedOrder>(ctx, async () => {
        const log = withCorrelation(deps.logger, input.correlationId, { workflow_id: input.workflowId });
        const rec = record(input.workflowId, input.correlationId, input.request);
        // The trade's age now (database clock) plus this process's monotonic time until the broker's answer is
        // booked: sat_signal_to_order_seconds without a query of its own.
        const ageAtIntent = await recordOrderIntent(pool, rec);
        const intentAt = performance.now();
        const isRetry = ctx.info.attempt > 1;
        let order: BrokerOrder;
        // Give up waiting out a 429 a few seconds before this attempt's start-to-close, so the rate limit
        // surfaces as BrokerRateLimited and its reset becomes the next retry's delay (a timed-out attempt
        // would tell Temporal nothing about when to come back). Waiting for the order to complete stops there too.
        const attemptEndsAt =
          ctx.info.currentAttemptScheduledTimestampMs + ctx.info.startToCloseTimeoutMs - SUBMIT_DEADLINE_MARGIN_MS;
        try {
          // The signal ends a wait on the request budget or on a 429 reset when the attempt times out or is cancelled.
          order = await broker.submitOrder(input.request, {
            isRetry,
            signal: ctx.cancellationSignal,
            deadlineMs: attemptEndsAt,
          });
        } catch (err) {
          if (err instanceof BrokerRejectedError) {
            await markOrderRejected(pool, input.request.clientOrderId);
            log.warn({ code: err.code, reason: err.message }, 'broker rejected order');
          } else {
            log.warn({ err, attempt: ctx.info.attempt }, 'order submission failed; will retry');
          }
          throw toActivityError(err);
        }
        if (ageAtIntent !== null) signalToOrderSeconds.observe(ageAtIntent + (performance.now() - intentAt) / 1000);
        // Waiting here is bounded well inside this attempt's start-to-close (and heartbeats, above). A crash
        // meanwhile loses nothing: the retry finds the order by client order id and books it.
        const awaitMs = input.awaitCompletionMs;
        const awaiting = awaitMs !== undefined;
        if (awaiting && !isTerminal(order.status)) {
          order = await entryFinalOrTimeout(
            order,
            Math.min(awaitMs, attemptEndsAt - Date.now()),
            ctx.cancellationSignal,
          );
        }
        // A fast broker may have filled the order (wholly or partly) before this call returned, and a lookup
        // after an ambiguous submit may find it filled: book whatever it reports, here, exactly once. A complete
        // order the workflow lets this call close ends the trade in the same transaction (endSeenByFollow: not a
        // cancelled one, whose end the workflow decides).
        const end = awaiting ? endSeenByFollow(order) : null;
        await book(input.workflowId, input.correlationId, order, closingOf(end));
        log.info(
          {
            client_order_id: order.clientOrderId,
            broker_order_id: order.brokerOrderId,
            status: order.status,
            attempt: ctx.info.attempt,
            ...(end ? { closed_as: end.outcome } : {}),
          },
          'order submitted',
        );
        if (!awaiting) return order;
        return end ? { order, finalized: end.outcome } : { order };
      });
    },

    /** Cancel the order's open remainder. Harmless on a terminal or unknown order. */
    async cancelOrder(input: {
      clientOrderId: string;
      correlationId: string;
      workflowId?: string;
    }): Promise<BrokerOrder | null> {
      const ctx = Context.current();
      return heartbeatingWhile(ctx, async () => {
        let order: BrokerOrder | null;
        try {
          order = await broker.cancelOrder(input.clientOrderId, { signal: ctx.cancellationSignal });
        } catch (err) {
          throw toActivityError(err);
        }
        // The order may have filled while the cancel travelled: book that too.
        if (order && input.workflowId) await book(input.workflowId, input.correlationId, order);
        else if (order) await syncOrder(pool, null, order);
        withCorrelation(deps.logger, input.correlationId).info(
          { client_order_id: input.clientOrderId, status: order?.status ?? 'not_found' },
          'cancel requested',
        );
        return order;
      });
    },

    /**
     * Follow an order until it changes (a fill, a status move), is complete, or `maxWaitMs` passes. Heartbeats while
     * waiting, so a dead worker is noticed within the heartbeat timeout and a cancel reaches it.
     *
     * It does not poll the broker. It reads the order once when the tracker knows nothing of it yet (a
     * restart, or no update so far) and then waits for updates: from the stream while it is healthy,
     * else from the broker's single poller, which re-reads every watched order within the process's
     * request budget. So N orders followed cost the budget about one request per poll round, not N.
     */
    async followOrder(input: FollowOrderInput): Promise<OrderProgress> {
      const ctx = Context.current();
      const signal = ctx.cancellationSignal;
      const startedAt = Date.now();
      const deadline = startedAt + input.maxWaitMs;
      broker.watchOrder(input.clientOrderId);
      let order: BrokerOrder | null = null;
      let misses = 0;
      for (;;) {
        const tracked = tracker.latestWithLegs(input.clientOrderId);
        if (tracked) order = order ? freshestWithLegs(order, tracked) : tracked;
        if (!order) {
          try {
            order = await broker.getOrderByClientOrderId(input.clientOrderId, { signal });
          } catch (err) {
            throw toActivityError(err);
          }
          if (order) tracker.noteSnapshot(order);
        }
        if (!order) {
          // Right after a submit a venue may not list the order yet; an order that stays unknown is lost
          // (the venue was reset or the order was purged): final, so the workflow can close the trade and
          // reconciliation flags it, instead of following a ghost forever.
          if (++misses >= NOT_FOUND_LIMIT) {
            throw ApplicationFailure.create({
              type: ORDER_NOT_FOUND,
              message: `order ${input.clientOrderId} not found at broker after ${misses} lookups`,
              nonRetryable: true,
            });
          }
          ctx.heartbeat({ misses });
          await ctx.sleep(1000);
          continue;
        }
        misses = 0;
        // A complete order (final, legs included) never changes again: waiting for a change would only sit out
        // maxWaitMs. The workflow meets one it has not followed yet right after its own cancel, whose answer
        // (already absorbed into `known`) is the final state: cancelAndSettle then sat out 5 s per cancel.
        if (hasChanged(order, input.known) || isTradeComplete(order) || Date.now() >= deadline) {
          const changed = hasChanged(order, input.known);
          if (input.workflowId) {
            // The workflow ends a complete order's trade as broker_final: the same mapping, applied here.
            const end = input.finalizeWhenComplete ? endSeenByFollow(order) : null;
            const fills = await book(input.workflowId, input.correlationId, order, closingOf(end));
            if (!end) return { order, fills, changed, booked: true };
            return { order, fills, changed, booked: true, finalized: end.outcome };
          }
          const known = input.known;
          const fills = ordersOf(order).flatMap((o) =>
            legacyNewFills(
              o,
              known[o.clientOrderId],
              tracker.fillsAfter(o.clientOrderId, known[o.clientOrderId]?.cumQty ?? 0),
            ),
          );
          return { order, fills, changed };
        }
        if (Date.now() - startedAt >= FIRST_HEARTBEAT_AFTER_MS) {
          ctx.heartbeat({ filledQty: order.filledQty, status: order.status, streamHealthy: broker.streamHealthy() });
        }
        const ids = ordersOf(order).map((o) => o.clientOrderId);
        // Wake on the next update for the order or its legs; else re-check (no request) and heartbeat.
        await Promise.race([
          tracker.waitForUpdate(ids, Math.min(pollIntervalMs, Math.max(0, deadline - Date.now())), signal),
          ctx.cancelled,
        ]);
      }
    },

    /**
     * Book fills in the ledger (idempotent by execution id) and mirror the order's state. Used by workflows
     * started before fills were booked where they are learned; kept so they replay and finish.
     */
    async recordFills(input: RecordFillsInput): Promise<{ inserted: number; duplicates: number }> {
      return heartbeatingWhile(Context.current(), async () => {
        const res = await recordFillsInLedger(pool, accountId, input.correlationId, input.fills);
        await syncOrder(pool, record(input.workflowId, input.correlationId, orderAsRequest(input.order)), input.order);
        await updateTradeStatus(
          pool,
          input.workflowId,
          input.tradeStatus,
          input.order.filledQty,
          input.order.filledAvgPrice,
        );
        withCorrelation(deps.logger, input.correlationId).info(
          { workflow_id: input.workflowId, ...res, filled_qty: input.order.filledQty, status: input.order.status },
          'fills recorded',
        );
        return res;
      });
    },

    /** Close the trade in the ledger and release its risk reservation. */
    async finalizeTrade(input: FinalizeTradeInput): Promise<void> {
      await heartbeatingWhile(Context.current(), async () => {
        // Counted by the close that ended the trade (released its reservation, or it never held one): not again
        // on a retry, nor after a follow that closed the trade while a cancel raced it (finalize-joins-follow).
        if (await finalizeTradeInLedger(pool, input)) {
          tradesFinished.inc({ status: input.outcome, reason_code: input.reasonCode ?? 'none' });
        }
      });
    },
  };
}

/**
 * Run an activity's work heartbeating every HEARTBEAT_EVERY_MS while it lasts longer than that (a 429's reset, a
 * slow broker or database, an order not yet complete). With the heartbeat timeout of its options, an attempt whose
 * worker died is retried on another within that timeout instead of its start-to-close; a call that ends sooner
 * sends no heartbeat.
 */
async function heartbeatingWhile<T>(ctx: Context, work: () => Promise<T>): Promise<T> {
  const beating = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(beating);
  }
}

/** The fills an older workflow's recordFills call expects: what its `known` state does not cover yet. */
function legacyNewFills(
  order: BrokerOrder,
  known: KnownOrderState | undefined,
  streamFills: LedgerFill[],
): LedgerFill[] {
  return fillsToBook(
    order,
    { cumQty: known?.cumQty ?? 0, notional: (known?.cumQty ?? 0) * (known?.avgPrice ?? 0) },
    streamFills,
  );
}

function orderAsRequest(o: BrokerOrder): OrderRequest {
  return {
    clientOrderId: o.clientOrderId,
    symbol: o.symbol,
    side: o.side,
    qty: o.qty,
    type: o.type,
    timeInForce: o.timeInForce,
    ...(o.limitPrice !== undefined ? { limitPrice: o.limitPrice } : {}),
    ...(o.stopPrice !== undefined ? { stopPrice: o.stopPrice } : {}),
  };
}

export type ExecutionActivities = ReturnType<typeof createExecutionActivities>;
