import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { BrokerOrder, OrderRequest, OrderStatus } from '../contracts/order';
import { isTerminal } from '../contracts/order';
import { BrokerRateLimitedError, BrokerRejectedError, type Broker } from '../adapters/brokers/broker';
import type { OrderTracker } from '../adapters/brokers/order-tracker';
import {
  finalizeTrade as finalizeTradeInLedger,
  recordFills as recordFillsInLedger,
  recordOrderIntent,
  syncOrder,
  updateTradeStatus,
  type LedgerFill,
  type OrderRecord,
  type TradeOutcome,
  tradeAgeSeconds,
} from '../adapters/postgres/ledger';
import { withCorrelation, type Logger } from '../logging';
import { rateLimitWaitSeconds, rateLimitWaits, signalToOrderSeconds, tradesFinished } from '../metrics';

/** Failure types the workflow's retry policies name. Always set explicitly; never rely on class names. */
export const BROKER_REJECTED = 'BrokerRejected';
export const BROKER_RATE_LIMITED = 'BrokerRateLimited';
export const ORDER_NOT_FOUND = 'OrderNotFound';
/** Consecutive "no such order" answers (a second apart) before an order counts as lost. */
const NOT_FOUND_LIMIT = 15;

export interface ExecutionDeps {
  pool: Pool;
  broker: Broker;
  tracker: OrderTracker;
  accountId: string;
  logger: Logger;
  /** How often followOrder re-reads the order when the stream is quiet. */
  pollIntervalMs?: number;
}

export interface SubmitOrderInput {
  workflowId: string;
  correlationId: string;
  request: OrderRequest;
}

/** What the workflow already knows about one order (the parent or a bracket leg). */
export interface KnownOrderState {
  cumQty: number;
  avgPrice: number | null;
  status: OrderStatus;
}

export interface FollowOrderInput {
  clientOrderId: string;
  correlationId: string;
  known: Record<string, KnownOrderState>;
  /** Return after this long even if nothing changed, so the workflow's history shows the order is alive. */
  maxWaitMs: number;
}

export interface OrderProgress {
  order: BrokerOrder;
  /** Fills not yet known to the workflow, parent and legs, in execution order per order. */
  fills: LedgerFill[];
  changed: boolean;
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

/** Every order of a trade: the entry and, for a bracket, its take-profit and stop-loss legs. */
export function ordersOf(order: BrokerOrder): BrokerOrder[] {
  return [order, ...(order.legs ?? [])];
}

/**
 * Turn what the broker reports into ledger fills the workflow has not seen yet. Stream fills keep the
 * broker's execution id. Whatever the stream missed (it was down, or the fill streamed before anyone
 * listened) is inferred from the cumulative quantity and average price, with an execution id derived
 * from that cumulative quantity — the ledger's UNIQUE(client_order_id, cum_qty) stops a later stream
 * copy of the same fill from counting twice.
 */
export function newFillsFor(
  order: BrokerOrder,
  known: KnownOrderState | undefined,
  streamFills: LedgerFill[],
): LedgerFill[] {
  const knownCum = known?.cumQty ?? 0;
  if (order.filledQty <= knownCum) return [];
  const out: LedgerFill[] = [];
  let cum = knownCum;
  let value = knownCum * (known?.avgPrice ?? 0);
  for (const f of streamFills) {
    if (f.cumQty <= cum || f.cumQty > order.filledQty) continue;
    out.push(f);
    cum = f.cumQty;
    value += f.qty * f.price;
  }
  if (cum < order.filledQty) {
    const qty = order.filledQty - cum;
    const totalValue = (order.filledAvgPrice ?? 0) * order.filledQty;
    const inferred = totalValue > value ? (totalValue - value) / qty : (order.filledAvgPrice ?? 0);
    out.push({
      executionId: `${order.brokerOrderId}:cum:${order.filledQty}`,
      clientOrderId: order.clientOrderId,
      brokerOrderId: order.brokerOrderId,
      symbol: order.symbol,
      side: order.side,
      qty,
      price: Math.round(inferred * 1e6) / 1e6,
      fee: 0,
      cumQty: order.filledQty,
      timestamp: order.updatedAt,
    });
  }
  return out;
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

  return {
    /** Place the trade's order, idempotently by client order id. */
    async submitOrder(input: SubmitOrderInput): Promise<BrokerOrder> {
      const ctx = Context.current();
      const log = withCorrelation(deps.logger, input.correlationId, { workflow_id: input.workflowId });
      const rec = record(input.workflowId, input.correlationId, input.request);
      await recordOrderIntent(pool, rec);
      const isRetry = ctx.info.attempt > 1;
      let order: BrokerOrder;
      try {
        // The signal ends a wait on the request budget or on a 429 reset when the attempt times out or is cancelled.
        order = await broker.submitOrder(input.request, { isRetry, signal: ctx.cancellationSignal });
      } catch (err) {
        if (err instanceof BrokerRejectedError) {
          await pool.query(`UPDATE orders SET status = 'rejected', updated_at = now() WHERE client_order_id = $1`, [
            input.request.clientOrderId,
          ]);
          log.warn({ code: err.code, reason: err.message }, 'broker rejected order');
        } else {
          log.warn({ err, attempt: ctx.info.attempt }, 'order submission failed; will retry');
        }
        throw toActivityError(err);
      }
      await syncOrder(pool, rec, order);
      await updateTradeStatus(pool, input.workflowId, 'SUBMITTED', order.filledQty, order.filledAvgPrice);
      const age = await tradeAgeSeconds(pool, input.workflowId);
      if (age !== null) signalToOrderSeconds.observe(age);
      log.info(
        {
          client_order_id: order.clientOrderId,
          broker_order_id: order.brokerOrderId,
          status: order.status,
          attempt: ctx.info.attempt,
        },
        'order submitted',
      );
      return order;
    },

    /** Cancel the order's open remainder. Harmless on a terminal or unknown order. */
    async cancelOrder(input: { clientOrderId: string; correlationId: string }): Promise<BrokerOrder | null> {
      let order: BrokerOrder | null;
      try {
        order = await broker.cancelOrder(input.clientOrderId, { signal: Context.current().cancellationSignal });
      } catch (err) {
        throw toActivityError(err);
      }
      if (order) await syncOrder(pool, null, order);
      withCorrelation(deps.logger, input.correlationId).info(
        { client_order_id: input.clientOrderId, status: order?.status ?? 'not_found' },
        'cancel requested',
      );
      return order;
    },

    /**
     * Follow an order until it changes (a fill, a status move) or `maxWaitMs` passes. Heartbeats while
     * waiting, so a dead worker is noticed within the heartbeat timeout and a cancel reaches it.
     */
    async followOrder(input: FollowOrderInput): Promise<OrderProgress> {
      const ctx = Context.current();
      const deadline = Date.now() + input.maxWaitMs;
      let misses = 0;
      for (;;) {
        let order: BrokerOrder | null;
        try {
          order = await broker.getOrderByClientOrderId(input.clientOrderId);
        } catch (err) {
          throw toActivityError(err);
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
        if (hasChanged(order, input.known) || Date.now() >= deadline) {
          const fills = ordersOf(order).flatMap((o) =>
            newFillsFor(
              o,
              input.known[o.clientOrderId],
              tracker.fillsAfter(o.clientOrderId, input.known[o.clientOrderId]?.cumQty ?? 0),
            ),
          );
          return { order, fills, changed: hasChanged(order, input.known) };
        }
        ctx.heartbeat({ filledQty: order.filledQty, status: order.status });
        const ids = ordersOf(order).map((o) => o.clientOrderId);
        await Promise.race([
          tracker.waitForUpdate(
            ids,
            Math.min(pollIntervalMs, Math.max(0, deadline - Date.now())),
            ctx.cancellationSignal,
          ),
          ctx.cancelled,
        ]);
      }
    },

    /** Book fills in the ledger (idempotent by execution id) and mirror the order's state. */
    async recordFills(input: RecordFillsInput): Promise<{ inserted: number; duplicates: number }> {
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
    },

    /** Close the trade in the ledger and release its risk reservation. */
    async finalizeTrade(input: FinalizeTradeInput): Promise<void> {
      await finalizeTradeInLedger(pool, input);
      // Counted per activity completion: a retry after a crash between the write and here may count twice,
      // the ledger stays the source of truth for exact numbers.
      tradesFinished.inc({ status: input.outcome, reason_code: input.reasonCode ?? 'none' });
    },
  };
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

export { isTerminal };
export type ExecutionActivities = ReturnType<typeof createExecutionActivities>;
