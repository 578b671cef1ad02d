import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  TemporalFailure,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BrokerOrder, OrderRequest } from '../contracts/order';
import { parseTradeSignal, type TradeSignal } from '../contracts/signal';
import type { RiskDecision } from '../domain/risk';
import { clientOrderIdFor } from '../contracts/trade-ids';
import { SA_SIDE, SA_STRATEGY, SA_SYMBOL, SA_TRADE_STATUS, type TradePhase, type TradeStatus } from './shared';
import type { KnownOrderState, OrderProgress } from '../activities/execution';
import { tradeEnd, workingPhaseOf, type EndCause } from '../domain/trade-lifecycle';
import { conservativeTick } from '../domain/money';
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
  // an ambiguous timeout cannot create a second order. A broker's "no" is final. There is no attempt cap:
  // while the order may exist at the broker the submit is never abandoned (429s and outages are waited
  // out, a 429's reset time arriving as the retry's next delay); the workflow bounds it by the
  // time-in-force deadline instead (scheduleToCloseTimeout per call), then resolves the order by id.
  submit: {
    startToCloseTimeout: '30 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
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

/**
 * Patch ids (docs/workflow-versioning.md): a trade started before a patch replays its old command sequence.
 *
 * trade-path-lean (issue 12, docs/benchmarks.md): the order reaches the broker from the first workflow task.
 * Risk runs as a local activity inside that task (same retries, same two-minute staleness bound), so
 * submitOrder is scheduled by the very task that started the trade; the search attributes the starter set
 * (Symbol/Side/Strategy, TradeStatus=RECEIVED) are not upserted again; TradeStatus is upserted only when it
 * changes.
 */
export const LEAN_TRADE_PATH = 'trade-path-lean';

/**
 * Risk as a local activity: the worker that runs the workflow task runs the check and retries it by this
 * policy, with no activity task, no matching and no extra workflow task. The decision is still recorded
 * (a marker in the history) before anything is sent to the broker.
 */
const LOCAL_RISK_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: ACTIVITY_OPTIONS.risk.startToCloseTimeout,
  scheduleToCloseTimeout: ACTIVITY_OPTIONS.risk.scheduleToCloseTimeout,
  // The same backoff, plus an attempt cap: the worker measures a local activity's schedule-to-close by its
  // own clock, the cap bounds the retries in workflow time too (backoffs 0.5, 1, 2, 4, 8, then 10 s: the
  // 17th attempt starts about two minutes after the first).
  retry: { ...ACTIVITY_OPTIONS.risk.retry, maximumAttempts: 17 },
  // Retries after a short backoff run in the worker; a longer backoff (the ledger is down) waits on a durable
  // timer instead, so an outage costs a few timers rather than a workflow task held open.
  localRetryThreshold: '1 second',
};
const localActivities = proxyLocalActivities<Activities>(LOCAL_RISK_OPTIONS);

/** Follow returns at least this often, so the history shows the order is alive. */
const FOLLOW_WAIT_MS = 30_000;
/** One submit attempt's start-to-close: after it, no attempt can still be talking to the broker. */
const SUBMIT_ATTEMPT_MS = 30_000;
/** A submit always gets at least this long, even for an order whose deadline is very close. */
const SUBMIT_MIN_WINDOW_MS = 60_000;

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

function callWith<K extends keyof Activities>(
  name: K,
  options: ActivityOptions,
  summary: string,
  ...args: Parameters<Activities[K]>
): Promise<Awaited<ReturnType<Activities[K]>>> {
  const fn = activities[name] as unknown as {
    executeWithOptions(o: ActivityOptions, a: unknown[]): Promise<Awaited<ReturnType<Activities[K]>>>;
  };
  return fn.executeWithOptions({ ...options, summary }, args);
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

  const lean = patched(LEAN_TRADE_PATH);
  // What the TradeStatus search attribute holds (the lean path skips upserting an unchanged value).
  const preset = workflowInfo().typedSearchAttributes;
  let searchablePhase = lean ? preset.get(SA_TRADE_STATUS) : undefined;
  const showPhase = (phase: TradePhase, details?: string) => {
    status.phase = phase;
    setCurrentDetails(details ?? `${phase}: ${signal.side} ${signal.symbol} (${status.filledQty} filled)`);
  };
  const setPhase = (phase: TradePhase, details?: string) => {
    if (phase !== searchablePhase || !lean) upsertSearchAttributes([{ key: SA_TRADE_STATUS, value: phase }]);
    searchablePhase = phase;
    showPhase(phase, details);
  };
  // Signal intake sets these on the start request; a trade started by hand may lack them.
  if (!lean || !preset.get(SA_SYMBOL) || !preset.get(SA_SIDE) || !preset.get(SA_STRATEGY)) {
    upsertSearchAttributes([
      { key: SA_SYMBOL, value: signal.symbol },
      { key: SA_SIDE, value: signal.side },
      { key: SA_STRATEGY, value: signal.strategy },
    ]);
  }

  // Mutating steps run non-cancellable: a cancel that lands mid-call must not leave a reservation or an
  // order the workflow never learned about. Cancellation is observed between steps.
  // On the lean path the check runs inside this workflow task, whose commands are committed together: an
  // EVALUATING upsert would never be seen by a search, so only the status query shows it.
  if (lean) showPhase('EVALUATING');
  else setPhase('EVALUATING');
  let decision: RiskDecision;
  try {
    const riskSummary = `risk check: ${signal.side} ${signal.symbol} @ ${signal.price}`;
    decision = await CancellationScope.nonCancellable(() =>
      lean
        ? localActivities.evaluateRisk.executeWithOptions({ ...LOCAL_RISK_OPTIONS, summary: riskSummary }, [
            { workflowId, signal },
          ])
        : call('evaluateRisk', 'risk', riskSummary, { workflowId, signal }),
    );
  } catch (err) {
    // A local activity that used up its retries may surface as its last failure itself, not wrapped in an
    // ActivityFailure: any failure from the check (never a cancellation) means the same here.
    const riskFailed =
      err instanceof ActivityFailure || (lean && err instanceof TemporalFailure && !isCancellation(err));
    if (!riskFailed) throw err;
    // Risk could not be evaluated in time (the ledger was unreachable): the signal is stale. Nothing was
    // sent to the broker; finalising releases a reservation a lost completion may have left.
    return end(null, { kind: 'gave_up', reasonCode: 'risk_unavailable' }, failureMessage(err));
  }
  if (decision.decision === 'REJECTED') {
    status.reasonCode = decision.reasonCode;
    status.reason = rejectionReason(decision);
    setPhase('REJECTED', `REJECTED by risk: ${decision.reasonCode}`);
    log.info('trade rejected by risk', { reasonCode: decision.reasonCode, correlation_id: signal.correlation_id });
    return status;
  }
  status.requestedQty = decision.qty;

  let order: BrokerOrder | null = null;
  const known: Record<string, KnownOrderState> = {};
  const request = buildOrderRequest(signal, decision.qty, clientOrderId);
  // The time-in-force deadline, fixed once: it bounds the submit and the following alike.
  const deadlineMs = input.deadlineMs ?? orderDeadlineMs(request.timeInForce, Date.now());
  const deadlineAt = Date.now() + deadlineMs;
  try {
    await throwIfCancelled();
    setPhase('SUBMITTING');
    let current: BrokerOrder;
    try {
      current = await CancellationScope.nonCancellable(() =>
        callWith(
          'submitOrder',
          { ...ACTIVITY_OPTIONS.submit, scheduleToCloseTimeout: Math.max(deadlineMs, SUBMIT_MIN_WINDOW_MS) },
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
      if (rejection) {
        status.reason = rejection;
        return end(null, { kind: 'broker_rejected' }, rejection);
      }
      if (!(err instanceof ActivityFailure)) throw err;
      // The submit could not be confirmed before the deadline: the order may or may not exist.
      return await resolveUnconfirmedSubmit(failureMessage(err));
    }
    order = current;
    absorb(current);
    setPhase(workingPhaseOf(current));

    // The time-in-force deadline is a durable timer: it survives worker restarts and fires on time even
    // if no worker is running, after which the remainder is cancelled and partial fills are kept.
    // Each follow is bounded by the time left, so the loop notices the deadline without cancelling an
    // activity that may be completing at that very moment.
    let deadlineReached = false;
    const deadlineTimer = sleep(Math.max(0, deadlineAt - Date.now()), {
      summary: `time-in-force deadline (${request.timeInForce})`,
    }).then(
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
        followInput(Math.min(FOLLOW_WAIT_MS, remaining)),
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
      return await end(current, { kind: 'deadline' });
    }
    return await end(current, { kind: 'broker_final' });
  } catch (err) {
    if (activityFailureType(err) === 'OrderNotFound') {
      // The broker no longer knows the order (e.g. the simulated venue was restarted). Nothing more can
      // fill; close the trade with what was booked and leave the rest to reconciliation, which flags it.
      return await end(order, { kind: 'order_lost' }, (err as ActivityFailure).cause?.message);
    }
    if (isCancellation(err)) {
      // Cancelled from the CLI/UI: cancel at the broker, book whatever filled meanwhile, record CANCELLED,
      // then let the workflow end as cancelled. None of this may itself be cancelled.
      await CancellationScope.nonCancellable(async () => {
        setPhase('CANCELLING', 'cancel requested: cancelling the open broker order');
        const settled = order ? await cancelAndSettle(order) : null;
        await end(
          settled,
          { kind: 'user_cancel' },
          `cancel requested with ${status.filledQty}/${status.requestedQty} filled`,
        );
      });
      throw err;
    }
    if (!(err instanceof ActivityFailure)) throw err;
    // A step failed for good (a non-retryable error nobody expected). The workflow never ends on an
    // activity failure: settle what the broker has, book it, release the reservation, and say so loudly.
    return await giveUp(failureMessage(err));
  }

  async function throwIfCancelled(): Promise<void> {
    // Awaiting a zero-length operation in the root scope surfaces a pending cancellation as an exception.
    if (CancellationScope.current().consideredCancelled) await CancellationScope.current().cancelRequested;
  }

  function absorb(o: BrokerOrder): void {
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

  function followInput(maxWaitMs: number) {
    return { workflowId, clientOrderId, correlationId: signal.correlation_id, known: { ...known }, maxWaitMs };
  }

  /**
   * Take in what a follow learned. The activity books fills where it learns them; histories recorded
   * before that (no `booked` flag in the result) booked through a recordFills activity, which their
   * replay must still schedule.
   */
  async function book(p: OrderProgress): Promise<void> {
    if (p.fills.length > 0 || p.changed) {
      absorb(p.order);
      const phase = workingPhaseOf(p.order);
      if (!p.booked) {
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
      }
      setPhase(phase);
    }
  }

  async function cancelAtBroker(summary: string): Promise<void> {
    try {
      const after = await call('cancelOrder', 'bookkeeping', summary, {
        workflowId,
        clientOrderId,
        correlationId: signal.correlation_id,
      });
      if (after) absorb(after);
    } catch (err) {
      // "Already filled" / "not cancelable" is the broker telling us the order's final state is near:
      // the follow that comes next reads it. Anything else is not expected here.
      if (!brokerRejection(err)) throw err;
    }
  }

  /** Cancel the open remainder (entry and any legs), then follow until the broker confirms a final state. */
  async function cancelAndSettle(o: BrokerOrder): Promise<BrokerOrder> {
    let current = o;
    const follow = async (summary: string, maxWaitMs: number): Promise<boolean> => {
      try {
        const p = await call('followOrder', 'follow', summary, followInput(maxWaitMs));
        await book(p);
        current = p.order;
        return true;
      } catch (err) {
        // An order the broker no longer knows cannot fill any more: settle with what was booked.
        if (activityFailureType(err) === 'OrderNotFound') return false;
        throw err;
      }
    };
    if (!isTradeComplete(current)) await cancelAtBroker(`cancel open remainder of ${clientOrderId}`);
    for (let i = 0; i < 20 && !isTradeComplete(current); i++) {
      if (!(await follow(`await cancel confirmation for ${clientOrderId}`, 5_000))) return current;
      if (i === 9 && !isTradeComplete(current)) {
        // A bracket leg that became active after the first cancel needs its own cancel.
        await cancelAtBroker(`cancel legs of ${clientOrderId}`);
      }
    }
    // Book anything that filled between the last change and the cancel.
    await follow(`final state of ${clientOrderId}`, 0);
    return current;
  }

  /**
   * The submit could not be confirmed before the time-in-force deadline. Wait out any attempt still in
   * flight (one attempt's start-to-close), then cancel by client order id: the answer says whether the
   * order exists; if it does, book what filled and settle it; if not, nothing can fill any more.
   */
  async function resolveUnconfirmedSubmit(why: string): Promise<TradeStatus> {
    setPhase('EXPIRING', `submit unconfirmed at the deadline (${why}): resolving ${clientOrderId} at the broker`);
    await sleep(SUBMIT_ATTEMPT_MS, { summary: 'let any in-flight submit attempt time out' });
    let found: BrokerOrder | null;
    try {
      found = await call('cancelOrder', 'bookkeeping', `resolve ${clientOrderId}: cancel by client order id`, {
        workflowId,
        clientOrderId,
        correlationId: signal.correlation_id,
      });
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      return end(null, { kind: 'unresolved', reasonCode: 'submit_unresolved' }, failureMessage(err));
    }
    if (!found) return end(null, { kind: 'gave_up', reasonCode: 'submit_unconfirmed' }, why);
    order = found;
    absorb(found);
    const settled = await cancelAndSettle(found);
    return end(settled, { kind: 'deadline' });
  }

  /** Give up after an unexpected failure, leaving the ledger consistent and the broker settled. */
  async function giveUp(why: string): Promise<TradeStatus> {
    return CancellationScope.nonCancellable(async () => {
      if (!order) return end(null, { kind: 'gave_up', reasonCode: 'execution_failed' }, why);
      try {
        const settled = await cancelAndSettle(order);
        return await end(settled, { kind: 'gave_up', reasonCode: 'execution_failed' }, why);
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        return end(order, { kind: 'unresolved', reasonCode: 'broker_state_unknown' }, `${why}; ${failureMessage(err)}`);
      }
    });
  }

  /**
   * Every way a trade ends comes through here: one lifecycle mapping (domain/trade-lifecycle.ts), the
   * outcome written to the ledger with the reservation released, and an alert when the system gave up.
   */
  async function end(o: BrokerOrder | null, cause: EndCause, reason?: string): Promise<TradeStatus> {
    if (o) absorb(o);
    const { phase, outcome, reasonCode } = tradeEnd(o, cause);
    status.reasonCode = reasonCode;
    if (reason) status.reason = reason;
    setPhase(phase, reason ? `${phase}: ${reason}` : undefined);
    if (outcome === 'FAILED' || outcome === 'NEEDS_REVIEW') {
      log.error('ALERT: trade gave up', {
        correlation_id: signal.correlation_id,
        outcome,
        reasonCode: status.reasonCode,
        reason: status.reason,
        filledQty: status.filledQty,
      });
    }
    await CancellationScope.nonCancellable(() =>
      call('finalizeTrade', 'bookkeeping', `ledger: trade ${outcome}, risk reservation released`, {
        workflowId,
        outcome,
        ...(status.reasonCode ? { reasonCode: status.reasonCode } : {}),
        filledQty: status.filledQty,
        avgFillPrice: status.avgFillPrice,
      }),
    );
    return status;
  }
}

/**
 * The order the signal asks for, sized by risk. Limit and stop prices go to the broker on the tick
 * ($0.01 at or above $1: brokers reject sub-penny prices), rounded so the order is never more aggressive
 * than the signal asked; bracket legs are orders on the opposite side.
 */
export function buildOrderRequest(signal: TradeSignal, qty: number, clientOrderId: string): OrderRequest {
  const spec = signal.order;
  const side = signal.side;
  const exitSide = side === 'buy' ? 'sell' : 'buy';
  const req: OrderRequest = {
    clientOrderId,
    symbol: signal.symbol,
    side,
    qty,
    type: spec?.type ?? 'market',
    timeInForce: spec?.time_in_force ?? 'day',
  };
  if (spec?.limit_price !== undefined) req.limitPrice = conservativeTick(spec.limit_price, side, 'limit');
  if (spec?.stop_price !== undefined) req.stopPrice = conservativeTick(spec.stop_price, side, 'stop');
  if (spec?.trail_price !== undefined) req.trailPrice = spec.trail_price;
  if (spec?.trail_percent !== undefined) req.trailPercent = spec.trail_percent;
  if (spec?.take_profit && spec.stop_loss) {
    req.orderClass = 'bracket';
    req.takeProfit = { limitPrice: conservativeTick(spec.take_profit.limit_price, exitSide, 'limit') };
    req.stopLoss = {
      stopPrice: conservativeTick(spec.stop_loss.stop_price, exitSide, 'stop'),
      ...(spec.stop_loss.limit_price !== undefined
        ? { limitPrice: conservativeTick(spec.stop_loss.limit_price, exitSide, 'limit') }
        : {}),
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

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure) return err.cause?.message ?? err.message;
  return err instanceof Error ? err.message : String(err);
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
