import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BrokerOrder, OrderRequest } from '../contracts/order';
import { parseTradeSignal, type TradeSignal } from '../contracts/signal';
import type { RiskDecision } from '../domain/risk';
import { clientOrderIdFor } from '../contracts/trade-ids';
import { SA_SIDE, SA_STRATEGY, SA_SYMBOL, SA_TRADE_STATUS, type TradePhase, type TradeStatus } from './shared';
import type { KnownOrderState, OrderProgress } from '../activities/execution';
import type { TradeOutcome } from '../adapters/postgres/ledger';
import { orderDeadlineMs } from './deadlines';

export interface TradeWorkflowInput {
  signal: TradeSignal;
  /** Override the time-in-force deadline (ms from workflow start); used by tests and manual trades. */
  deadlineMs?: number;
}

export const statusQuery = defineQuery<TradeStatus>('status');

// One proxy; every call states its option class and a readable summary (shown in the Web UI history).
const activities = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds' });

/** Named option sets per activity class (Temporal retry policies replace all hand-written backoff). */
export const ACTIVITY_OPTIONS = {
  // Fast DB-bound risk check. A trade that cannot be evaluated within two minutes is stale: it fails
  // rather than trading on an old signal.
  risk: {
    startToCloseTimeout: '10 seconds',
    scheduleToCloseTimeout: '2 minutes',
    retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '10 seconds' },
  },
  // Broker submission. Each retry re-sends the same client order id and looks it up first, so retrying
  // an ambiguous timeout cannot create a second order. A broker's "no" is final.
  submit: {
    startToCloseTimeout: '30 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: 12,
      nonRetryableErrorTypes: ['BrokerRejected'],
    },
  },
  // Following is read-only and heartbeats: a dead worker is noticed within the heartbeat timeout and the
  // follow resumes on another worker from what the workflow already knows.
  follow: {
    startToCloseTimeout: '90 seconds',
    heartbeatTimeout: '10 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '15 seconds',
      nonRetryableErrorTypes: ['OrderNotFound'],
    },
  },
  // Ledger writes and cancels must eventually happen, whatever the outage: no attempt cap.
  bookkeeping: {
    startToCloseTimeout: '30 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      nonRetryableErrorTypes: ['BrokerRejected'],
    },
  },
} satisfies Record<string, ActivityOptions>;

/** Follow returns at least this often, so the history shows the order is alive. */
const FOLLOW_WAIT_MS = 30_000;

function call<K extends keyof Activities>(
  name: K,
  optionSet: keyof typeof ACTIVITY_OPTIONS,
  summary: string,
  ...args: Parameters<Activities[K]>
): Promise<Awaited<ReturnType<Activities[K]>>> {
  const fn = activities[name] as unknown as {
    executeWithOptions(o: ActivityOptions, a: unknown[]): Promise<Awaited<ReturnType<Activities[K]>>>;
  };
  return fn.executeWithOptions({ ...ACTIVITY_OPTIONS[optionSet], summary }, args);
}

/**
 * One trade, from signal to a settled ledger: risk → submit → follow fills until terminal or the
 * time-in-force deadline → book fills → release the risk reservation. Cancellable from the CLI:
 * cancellation cancels the open broker order and keeps any partial fill.
 */
export async function tradeWorkflow(input: TradeWorkflowInput): Promise<TradeStatus> {
  // A trade started by hand (temporal CLI) skips intake's validation: check the contract here, so a bad
  // signal ends REJECTED/invalid_signal instead of failing workflow tasks forever.
  const parsed = parseTradeSignal(input?.signal);
  if (!parsed.ok) return invalidSignal(input?.signal, parsed.reason);
  const signal = parsed.value;
  const { workflowId } = workflowInfo();
  const clientOrderId = clientOrderIdFor(workflowId);
  const status: TradeStatus = {
    phase: 'RECEIVED',
    workflowId,
    signalId: signal.signal_id,
    correlationId: signal.correlation_id,
    symbol: signal.symbol,
    side: signal.side,
    strategy: signal.strategy,
    requestedQty: 0,
    clientOrderId,
    brokerOrderId: null,
    brokerStatus: null,
    filledQty: 0,
    avgFillPrice: null,
    reasonCode: null,
    reason: null,
    legs: [],
  };
  setHandler(statusQuery, () => status);

  const setPhase = (phase: TradePhase, details?: string) => {
    status.phase = phase;
    upsertSearchAttributes([{ key: SA_TRADE_STATUS, value: phase }]);
    setCurrentDetails(details ?? `${phase}: ${signal.side} ${signal.symbol} (${status.filledQty} filled)`);
  };
  upsertSearchAttributes([
    { key: SA_SYMBOL, value: signal.symbol },
    { key: SA_SIDE, value: signal.side },
    { key: SA_STRATEGY, value: signal.strategy },
  ]);

  // Mutating steps run non-cancellable: a cancel that lands mid-call must not leave a reservation or an
  // order the workflow never learned about. Cancellation is observed between steps.
  setPhase('EVALUATING');
  const decision: RiskDecision = await CancellationScope.nonCancellable(() =>
    call('evaluateRisk', 'risk', `risk check: ${signal.side} ${signal.symbol} @ ${signal.price}`, {
      workflowId,
      signal,
    }),
  );
  if (decision.decision === 'REJECTED') {
    status.reasonCode = decision.reasonCode;
    status.reason = rejectionReason(decision);
    setPhase('REJECTED', `REJECTED by risk: ${decision.reasonCode}`);
    log.info('trade rejected by risk', { reasonCode: decision.reasonCode, correlationId: signal.correlation_id });
    return status;
  }
  status.requestedQty = decision.qty;

  let order: BrokerOrder | null = null;
  const known: Record<string, KnownOrderState> = {};
  try {
    await throwIfCancelled();
    setPhase('SUBMITTING');
    const request = buildOrderRequest(signal, decision.qty, clientOrderId);
    let current: BrokerOrder;
    try {
      current = await CancellationScope.nonCancellable(() =>
        call(
          'submitOrder',
          'submit',
          `submit ${request.type} ${request.side} ${request.qty} ${request.symbol} as ${clientOrderId}`,
          {
            workflowId,
            correlationId: signal.correlation_id,
            request,
          },
        ),
      );
    } catch (err) {
      const rejection = brokerRejection(err);
      if (!rejection) throw err;
      status.reasonCode = 'broker_rejected';
      status.reason = rejection;
      setPhase('BROKER_REJECTED', `BROKER_REJECTED: ${rejection}`);
      await finalize('BROKER_REJECTED', 'broker_rejected');
      return status;
    }
    order = current;
    absorb(current, []);
    setPhase(phaseOf(current));

    // The time-in-force deadline is a durable timer: it survives worker restarts and fires on time even
    // if no worker is running, after which the remainder is cancelled and partial fills are kept.
    // Each follow is bounded by the time left, so the loop notices the deadline without cancelling an
    // activity that may be completing at that very moment.
    const deadlineMs = input.deadlineMs ?? orderDeadlineMs(request.timeInForce, Date.now());
    const deadlineAt = Date.now() + deadlineMs;
    let deadlineReached = false;
    const deadlineTimer = sleep(deadlineMs, { summary: `time-in-force deadline (${request.timeInForce})` }).then(
      () => {
        deadlineReached = true;
      },
      (err: unknown) => {
        if (!isCancellation(err)) throw err;
      },
    );

    while (!isTradeComplete(current) && !deadlineReached) {
      const remaining = deadlineAt - Date.now();
      if (remaining <= 0) {
        await Promise.race([deadlineTimer, condition(() => deadlineReached)]);
        await throwIfCancelled();
        continue;
      }
      const progress = await call(
        'followOrder',
        'follow',
        `follow ${clientOrderId} (${status.filledQty}/${status.requestedQty} filled)`,
        {
          clientOrderId,
          correlationId: signal.correlation_id,
          known: { ...known },
          maxWaitMs: Math.min(FOLLOW_WAIT_MS, remaining),
        },
      );
      await book(progress);
      current = order = progress.order;
    }

    if (!isTradeComplete(current) && deadlineReached) {
      setPhase(
        'EXPIRING',
        `deadline reached with ${status.filledQty}/${status.requestedQty} filled: cancelling remainder`,
      );
      current = order = await cancelAndSettle(current);
      const outcome = status.filledQty > 0 ? 'PARTIALLY_FILLED' : 'EXPIRED';
      status.reasonCode = 'time_in_force_expired';
      setPhase(outcome === 'PARTIALLY_FILLED' ? 'EXPIRED_PARTIAL' : 'EXPIRED');
      await finalize(outcome, 'time_in_force_expired');
      return status;
    }

    const final = finalPhaseOf(current);
    setPhase(final);
    await finalize(
      final === 'FILLED'
        ? 'FILLED'
        : final === 'EXPIRED'
          ? 'EXPIRED'
          : status.filledQty > 0
            ? 'PARTIALLY_FILLED'
            : 'CANCELLED',
      current.reason,
    );
    return status;
  } catch (err) {
    if (activityFailureType(err) === 'OrderNotFound') {
      // The broker no longer knows the order (e.g. the simulated venue was restarted). Nothing more can
      // fill; close the trade with what was booked and leave the rest to reconciliation, which flags it.
      status.reasonCode = 'order_not_found_at_broker';
      status.reason = (err as ActivityFailure).cause?.message ?? 'order not found at broker';
      setPhase('ORDER_LOST', `ORDER_LOST: ${status.reason}`);
      await finalize('FAILED', 'order_not_found_at_broker');
      return status;
    }
    if (!isCancellation(err)) throw err;
    // Cancelled from the CLI/UI: cancel at the broker, book whatever filled meanwhile, record CANCELLED,
    // then let the workflow end as cancelled. None of this may itself be cancelled.
    await CancellationScope.nonCancellable(async () => {
      setPhase('CANCELLING', 'cancel requested: cancelling the open broker order');
      const settled = order ? await cancelAndSettle(order) : null;
      const fullyFilled = settled !== null && finalPhaseOf(settled) === 'FILLED';
      status.reasonCode = 'cancelled_by_user';
      setPhase(
        fullyFilled ? 'FILLED' : 'CANCELLED',
        `cancel requested with ${status.filledQty}/${status.requestedQty} filled`,
      );
      // If the order filled completely before the cancel reached the broker, the ledger records the truth.
      await finalize(fullyFilled ? 'FILLED' : 'CANCELLED', 'cancelled_by_user');
    });
    throw err;
  }

  async function throwIfCancelled(): Promise<void> {
    // Awaiting a zero-length operation in the root scope surfaces a pending cancellation as an exception.
    if (CancellationScope.current().consideredCancelled) await CancellationScope.current().cancelRequested;
  }

  function absorb(o: BrokerOrder, _fills: unknown[]): void {
    for (const x of [o, ...(o.legs ?? [])]) {
      known[x.clientOrderId] = { cumQty: x.filledQty, avgPrice: x.filledAvgPrice, status: x.status };
    }
    status.brokerOrderId = o.brokerOrderId;
    status.brokerStatus = o.status;
    status.filledQty = o.filledQty;
    status.avgFillPrice = o.filledAvgPrice;
    status.legs = (o.legs ?? []).map((l) => ({
      clientOrderId: l.clientOrderId,
      type: l.type,
      status: l.status,
      filledQty: l.filledQty,
      avgFillPrice: l.filledAvgPrice,
    }));
  }

  async function book(p: OrderProgress): Promise<void> {
    if (p.fills.length > 0 || p.changed) {
      absorb(p.order, p.fills);
      const phase = phaseOf(p.order);
      await call(
        'recordFills',
        'bookkeeping',
        `ledger: book ${p.fills.length} fill(s), ${p.order.filledQty}/${p.order.qty} filled`,
        {
          workflowId,
          correlationId: signal.correlation_id,
          order: p.order,
          fills: p.fills,
          tradeStatus: phase,
        },
      );
      setPhase(phase);
    }
  }

  /** Cancel the open remainder (entry and any legs), then follow until the broker confirms a final state. */
  async function cancelAndSettle(o: BrokerOrder): Promise<BrokerOrder> {
    let current = o;
    const follow = async (summary: string, maxWaitMs: number): Promise<boolean> => {
      try {
        const p = await call('followOrder', 'follow', summary, {
          clientOrderId,
          correlationId: signal.correlation_id,
          known: { ...known },
          maxWaitMs,
        });
        await book(p);
        current = p.order;
        return true;
      } catch (err) {
        // An order the broker no longer knows cannot fill any more: settle with what was booked.
        if (activityFailureType(err) === 'OrderNotFound') return false;
        throw err;
      }
    };
    if (!isTradeComplete(current)) {
      await call('cancelOrder', 'bookkeeping', `cancel open remainder of ${clientOrderId}`, {
        clientOrderId,
        correlationId: signal.correlation_id,
      });
    }
    for (let i = 0; i < 20 && !isTradeComplete(current); i++) {
      if (!(await follow(`await cancel confirmation for ${clientOrderId}`, 5_000))) return current;
      if (i === 9 && !isTradeComplete(current)) {
        // A bracket leg that became active after the first cancel needs its own cancel.
        await call('cancelOrder', 'bookkeeping', `cancel legs of ${clientOrderId}`, {
          clientOrderId,
          correlationId: signal.correlation_id,
        });
      }
    }
    // Book anything that filled between the last change and the cancel.
    await follow(`final state of ${clientOrderId}`, 0);
    return current;
  }

  async function finalize(outcome: TradeOutcome, reasonCode?: string | null) {
    await CancellationScope.nonCancellable(() =>
      call('finalizeTrade', 'bookkeeping', `ledger: trade ${outcome}, risk reservation released`, {
        workflowId,
        outcome,
        ...(reasonCode ? { reasonCode } : {}),
        filledQty: status.filledQty,
        avgFillPrice: status.avgFillPrice,
      }),
    );
  }
}

/** The order the signal asks for, sized by risk. */
export function buildOrderRequest(signal: TradeSignal, qty: number, clientOrderId: string): OrderRequest {
  const spec = signal.order;
  const req: OrderRequest = {
    clientOrderId,
    symbol: signal.symbol,
    side: signal.side,
    qty,
    type: spec?.type ?? 'market',
    timeInForce: spec?.time_in_force ?? 'day',
  };
  if (spec?.limit_price !== undefined) req.limitPrice = spec.limit_price;
  if (spec?.stop_price !== undefined) req.stopPrice = spec.stop_price;
  if (spec?.trail_price !== undefined) req.trailPrice = spec.trail_price;
  if (spec?.trail_percent !== undefined) req.trailPercent = spec.trail_percent;
  if (spec?.take_profit && spec.stop_loss) {
    req.orderClass = 'bracket';
    req.takeProfit = { limitPrice: spec.take_profit.limit_price };
    req.stopLoss = {
      stopPrice: spec.stop_loss.stop_price,
      ...(spec.stop_loss.limit_price !== undefined ? { limitPrice: spec.stop_loss.limit_price } : {}),
    };
  }
  return req;
}

const TERMINAL = new Set(['filled', 'canceled', 'expired', 'rejected', 'replaced']);

/**
 * A simple order is complete when terminal. A bracket is complete when its entry is terminal and, if the
 * entry filled, every leg is terminal too (one leg fills, the broker cancels the other).
 */
export function isTradeComplete(o: BrokerOrder): boolean {
  if (!TERMINAL.has(o.status)) return false;
  if (!o.legs?.length || o.filledQty === 0) return true;
  return o.legs.every((l) => TERMINAL.has(l.status));
}

function phaseOf(o: BrokerOrder): TradePhase {
  if (o.status === 'filled' && o.legs?.length && !isTradeComplete(o)) return 'BRACKET_ACTIVE';
  if (o.status === 'filled') return 'FILLED';
  if (o.filledQty > 0) return 'PARTIALLY_FILLED';
  return 'WORKING';
}

function finalPhaseOf(o: BrokerOrder): TradePhase {
  switch (o.status) {
    case 'filled':
      return 'FILLED';
    case 'expired':
      return o.filledQty > 0 ? 'EXPIRED_PARTIAL' : 'EXPIRED';
    case 'rejected':
      return 'BROKER_REJECTED';
    default:
      return 'CANCELLED';
  }
}

function rejectionReason(d: RiskDecision): string {
  const failed = d.checks.find((c) => !c.passed);
  return failed
    ? `${d.reasonCode}: ${failed.name} ${String(failed.value)} vs limit ${String(failed.limit)}`
    : d.reasonCode;
}

function invalidSignal(raw: unknown, reason: string): TradeStatus {
  const r = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  log.warn('invalid signal rejected', { reason });
  return {
    phase: 'REJECTED',
    workflowId: workflowInfo().workflowId,
    signalId: text(r.signal_id),
    correlationId: text(r.correlation_id),
    symbol: text(r.symbol),
    side: r.side === 'sell' ? 'sell' : 'buy',
    strategy: text(r.strategy),
    requestedQty: 0,
    clientOrderId: '',
    brokerOrderId: null,
    brokerStatus: null,
    filledQty: 0,
    avgFillPrice: null,
    reasonCode: 'invalid_signal',
    reason,
    legs: [],
  };
}

function activityFailureType(err: unknown): string | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
    ? (err.cause.type ?? undefined)
    : undefined;
}

function brokerRejection(err: unknown): string | null {
  if (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === 'BrokerRejected'
  ) {
    return err.cause.message;
  }
  return null;
}
