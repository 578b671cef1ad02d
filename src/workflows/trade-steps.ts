import {
  ActivityFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  sleep,
  TemporalFailure,
} from '@temporalio/workflow';
import type { OrderProgress, SubmittedOrder } from '../activities/execution';
import type { BrokerOrder } from '../contracts/order';
import type { RiskDecision } from '../domain/risk';
import { endNeedsLedger, isTradeComplete, tradeEnd, workingPhaseOf, type EndCause } from '../domain/trade-lifecycle';
import { orderDeadlineMs } from './deadlines';
import { buildOrderRequest } from './order-request';
import type { TradeStatus } from './shared';
import {
  brokerRejection,
  call,
  callWith,
  ACTIVITY_OPTIONS,
  failureMessage,
  isOrderNotFound,
  localActivities,
  LOCAL_RISK_OPTIONS,
} from './trade-activities';
import { absorb, FINALIZE_JOINS_FOLLOW, setPhase, showPhase, type TradeState } from './trade-state';

/**
 * The steps of one trade (src/workflows/trade.ts tells the story). Every step works on the one `TradeState`;
 * every end goes through `endTrade`, i.e. through the lifecycle mapping in domain/trade-lifecycle.ts.
 *
 * Replay: the order of activity calls, timers and `setPhase` upserts here IS the trade's command sequence.
 * Reordering them breaks running trades unless guarded by `patched()` (docs/workflow-versioning.md;
 * test/workflow/replay.test.ts replays the recorded histories).
 */

/** Follow returns at least this often, so the history shows the order is alive. */
const FOLLOW_WAIT_MS = 30_000;
/** One submit attempt's start-to-close: after it, no attempt can still be talking to the broker. */
const SUBMIT_ATTEMPT_MS = 30_000;
/** A submit always gets at least this long, even for an order whose deadline is very close. */
const SUBMIT_MIN_WINDOW_MS = 60_000;
/**
 * How long the `current` sequence's submit waits for the accepted order to become final (SubmitOrderInput's
 * awaitCompletionMs). A marketable order fills within it, and the submit books the fill and closes the trade:
 * one activity and one workflow task per trade instead of two each (issue 12). An order still open after it is
 * followed as before, so it only delays the first follow. Shorter than the submit's first heartbeat, and a user's
 * cancel waits at most this long for the non-cancellable submit.
 */
const SUBMIT_AWAITS_COMPLETION_MS = 1_000;

export type RiskOutcome =
  | { kind: 'approved'; decision: RiskDecision }
  | { kind: 'rejected'; decision: RiskDecision }
  /** Risk could not be evaluated in time (the ledger was unreachable): the signal is stale. */
  | { kind: 'unavailable'; why: string };

export type SubmitOutcome =
  | { kind: 'accepted' }
  | { kind: 'rejected'; reason: string }
  /** The submit could not be confirmed before the deadline: the order may or may not exist. */
  | { kind: 'unconfirmed'; why: string };

/**
 * The risk check, non-cancellable: a cancel that lands mid-call must not leave a reservation the workflow
 * never learned about. On the lean path it runs inside this workflow task, whose commands are committed
 * together: an EVALUATING upsert would never be seen by a search, so only the status query shows it.
 */
export async function checkRisk(t: TradeState): Promise<RiskOutcome> {
  const { signal, workflowId, lean } = t;
  if (lean) showPhase(t, 'EVALUATING');
  else setPhase(t, 'EVALUATING');
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
    return { kind: 'unavailable', why: failureMessage(err) };
  }
  return { kind: decision.decision === 'REJECTED' ? 'rejected' : 'approved', decision };
}

/** Risk said no: the trade ends REJECTED. Risk wrote the decision to the ledger; nothing was reserved. */
export function rejectedByRisk(t: TradeState, decision: RiskDecision): Promise<TradeStatus> {
  log.info('trade rejected by risk', { reasonCode: decision.reasonCode, correlation_id: t.signal.correlation_id });
  return endTrade(t, null, { kind: 'risk_rejected', reasonCode: decision.reasonCode }, rejectionReason(decision));
}

/** The order risk sized, and its time-in-force deadline, fixed once: it bounds the submit and the following. */
export function planOrder(t: TradeState, decision: RiskDecision, deadlineOverrideMs?: number): void {
  t.status.requestedQty = decision.qty;
  const request = buildOrderRequest(t.signal, decision.qty, t.clientOrderId);
  const deadlineMs = deadlineOverrideMs ?? orderDeadlineMs(request.timeInForce, Date.now());
  t.plan = { request, deadlineMs, deadlineAt: Date.now() + deadlineMs };
}

/**
 * Send the order, non-cancellable (a cancel mid-call must not leave an order the workflow never learned of). On
 * the `current` sequence the submit also waits briefly for the order to complete, and may close the trade.
 */
export async function submitOrder(t: TradeState): Promise<SubmitOutcome> {
  const { request, deadlineMs } = planned(t);
  setPhase(t, 'SUBMITTING');
  let accepted: BrokerOrder;
  try {
    const answer = await CancellationScope.nonCancellable(() =>
      callWith(
        'submitOrder',
        { ...ACTIVITY_OPTIONS.submit, scheduleToCloseTimeout: Math.max(deadlineMs, SUBMIT_MIN_WINDOW_MS) },
        `submit ${request.type} ${request.side} ${request.qty} ${request.symbol} as ${t.clientOrderId}`,
        {
          workflowId: t.workflowId,
          correlationId: t.signal.correlation_id,
          request,
          ...(t.current ? { awaitCompletionMs: SUBMIT_AWAITS_COMPLETION_MS } : {}),
        },
      ),
    );
    // The answer's shape, not this code, says whether the submit closed the trade: a history recorded before the
    // submit awaited completion holds a bare BrokerOrder and replays its follow and finalizeTrade as recorded.
    const submitted = isSubmittedOrder(answer) ? answer : { order: answer };
    if (submitted.finalized) t.closedAs = submitted.finalized;
    accepted = submitted.order;
  } catch (err) {
    const rejection = brokerRejection(err);
    if (rejection) {
      t.status.reason = rejection;
      return { kind: 'rejected', reason: rejection };
    }
    if (!(err instanceof ActivityFailure)) throw err;
    return { kind: 'unconfirmed', why: failureMessage(err) };
  }
  t.order = accepted;
  absorb(t, accepted);
  setPhase(t, workingPhaseOf(accepted));
  return { kind: 'accepted' };
}

/**
 * Follow the order until the broker reports it complete or its time-in-force deadline passes; returns
 * whether it completed. Each follow is bounded by the time left, so the loop notices the deadline without
 * cancelling an activity that may be completing at that very moment: the follow returns by the deadline (a
 * retried attempt within FOLLOW_WAIT_MS of it), and the next workflow task's clock is past it.
 *
 * The `patched` sequence also races a durable timer for the deadline; it adds nothing the bounded follows do not
 * (the loop only reads it between follows, and a timer cannot cancel an order with no worker running), but costs
 * a timer task and a history event per trade, so the `current` sequence has none.
 */
export async function followUntilCompleteOrDeadline(t: TradeState): Promise<boolean> {
  const { request, deadlineAt } = planned(t);
  let current = t.order!;
  let deadlineReached = false;
  const deadlineTimer = t.current
    ? null
    : sleep(Math.max(0, deadlineAt - Date.now()), {
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
      if (deadlineTimer) await Promise.race([deadlineTimer, condition(() => deadlineReached)]);
      else deadlineReached = true;
      await throwIfCancelled();
      continue;
    }
    // finalize-joins-follow: a follow that finds the order complete also closes the trade (see endTrade).
    t.followCloses ??= patched(FINALIZE_JOINS_FOLLOW);
    const progress = await call(
      'followOrder',
      'follow',
      `follow ${t.clientOrderId} (${t.status.filledQty}/${t.status.requestedQty} filled)`,
      {
        ...followInput(t, Math.min(FOLLOW_WAIT_MS, remaining)),
        ...(t.followCloses ? { finalizeWhenComplete: true } : {}),
      },
    );
    await book(t, progress);
    current = t.order = progress.order;
  }
  return isTradeComplete(current);
}

/** The deadline passed with the order still open: cancel the remainder, keep what filled. */
export async function expireRemainder(t: TradeState): Promise<BrokerOrder> {
  const { filledQty, requestedQty } = t.status;
  setPhase(t, 'EXPIRING', `deadline reached with ${filledQty}/${requestedQty} filled: cancelling remainder`);
  t.order = await cancelAndSettle(t, t.order!);
  return t.order;
}

/**
 * The submit could not be confirmed before the time-in-force deadline. Wait out any attempt still in
 * flight (one attempt's start-to-close), then cancel by client order id: the answer says whether the
 * order exists; if it does, book what filled and settle it; if not, nothing can fill any more.
 */
export async function resolveUnconfirmedSubmit(t: TradeState, why: string): Promise<TradeStatus> {
  const { clientOrderId } = t;
  setPhase(t, 'EXPIRING', `submit unconfirmed at the deadline (${why}): resolving ${clientOrderId} at the broker`);
  await sleep(SUBMIT_ATTEMPT_MS, { summary: 'let any in-flight submit attempt time out' });
  let found: BrokerOrder | null;
  try {
    found = await call('cancelOrder', 'bookkeeping', `resolve ${clientOrderId}: cancel by client order id`, {
      workflowId: t.workflowId,
      clientOrderId,
      correlationId: t.signal.correlation_id,
    });
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    return endTrade(t, null, { kind: 'unresolved', reasonCode: 'submit_unresolved' }, failureMessage(err));
  }
  if (!found) return endTrade(t, null, { kind: 'gave_up', reasonCode: 'submit_unconfirmed' }, why);
  t.order = found;
  absorb(t, found);
  const settled = await cancelAndSettle(t, found);
  return endTrade(t, settled, { kind: 'deadline' });
}

/**
 * Cancelled from the CLI/UI: cancel at the broker, book whatever filled meanwhile, record CANCELLED. None of
 * this may itself be cancelled; the caller then lets the workflow end as cancelled.
 */
export async function cancelByUser(t: TradeState): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    setPhase(t, 'CANCELLING', 'cancel requested: cancelling the open broker order');
    const settled = t.order ? await cancelAndSettle(t, t.order) : null;
    await endTrade(
      t,
      settled,
      { kind: 'user_cancel' },
      `cancel requested with ${t.status.filledQty}/${t.status.requestedQty} filled`,
    );
  });
}

/**
 * The broker no longer knows the order (e.g. the simulated venue was restarted). Nothing more can fill;
 * close the trade with what was booked and leave the rest to reconciliation, which flags it.
 */
export function orderLost(t: TradeState, err: ActivityFailure): Promise<TradeStatus> {
  return endTrade(t, t.order, { kind: 'order_lost' }, err.cause?.message);
}

/**
 * A step failed for good (a non-retryable error nobody expected). The workflow never ends on an activity
 * failure: settle what the broker has, book it, release the reservation, and say so loudly.
 */
export function giveUp(t: TradeState, why: string): Promise<TradeStatus> {
  return CancellationScope.nonCancellable(async () => {
    const order = t.order;
    if (!order) return endTrade(t, null, { kind: 'gave_up', reasonCode: 'execution_failed' }, why);
    try {
      const settled = await cancelAndSettle(t, order);
      return await endTrade(t, settled, { kind: 'gave_up', reasonCode: 'execution_failed' }, why);
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const unknown = `${why}; ${failureMessage(err)}`;
      return endTrade(t, order, { kind: 'unresolved', reasonCode: 'broker_state_unknown' }, unknown);
    }
  });
}

/**
 * Every way a trade ends comes through here: one lifecycle mapping (domain/trade-lifecycle.ts), the
 * outcome written to the ledger with the reservation released, and an alert when the system gave up.
 */
export async function endTrade(
  t: TradeState,
  o: BrokerOrder | null,
  cause: EndCause,
  reason?: string,
): Promise<TradeStatus> {
  const { status } = t;
  if (o) absorb(t, o);
  const { phase, outcome, reasonCode } = tradeEnd(o, cause);
  status.reasonCode = reasonCode;
  if (reason) status.reason = reason;
  if (cause.kind === 'risk_rejected') setPhase(t, phase, `REJECTED by risk: ${reasonCode}`);
  else setPhase(t, phase, reason ? `${phase}: ${reason}` : undefined);
  // Risk recorded its own rejection and reserved nothing: no ledger write follows.
  if (!endNeedsLedger(cause)) return status;
  if (outcome === 'FAILED' || outcome === 'NEEDS_REVIEW') {
    log.error('ALERT: trade gave up', {
      correlation_id: t.signal.correlation_id,
      outcome,
      reasonCode: status.reasonCode,
      reason: status.reason,
      filledQty: status.filledQty,
    });
  }
  // The follow that learned the order was complete closed the trade already, with this same outcome, in the
  // transaction that booked its last fills (the reservation is released there). Any other end (a cancel that
  // raced it) still finalises: the outcome is rewritten, the reservation is released only if still held.
  if (t.closedAs === outcome) return status;
  await CancellationScope.nonCancellable(() =>
    call('finalizeTrade', 'bookkeeping', `ledger: trade ${outcome}, risk reservation released`, {
      workflowId: t.workflowId,
      outcome,
      ...(status.reasonCode ? { reasonCode: status.reasonCode } : {}),
      filledQty: status.filledQty,
      avgFillPrice: status.avgFillPrice,
    }),
  );
  return status;
}

/** Awaiting a zero-length operation in the root scope surfaces a pending cancellation as an exception. */
export async function throwIfCancelled(): Promise<void> {
  if (CancellationScope.current().consideredCancelled) await CancellationScope.current().cancelRequested;
}

function isSubmittedOrder(a: BrokerOrder | SubmittedOrder): a is SubmittedOrder {
  return 'order' in a;
}

function planned(t: TradeState): NonNullable<TradeState['plan']> {
  if (!t.plan) throw new Error('tradeWorkflow: no order planned before submitting');
  return t.plan;
}

function followInput(t: TradeState, maxWaitMs: number) {
  return {
    workflowId: t.workflowId,
    clientOrderId: t.clientOrderId,
    correlationId: t.signal.correlation_id,
    known: { ...t.known },
    maxWaitMs,
  };
}

/**
 * Take in what a follow learned. The activity books fills where it learns them; histories recorded
 * before that (no `booked` flag in the result) booked through a recordFills activity, which their
 * replay must still schedule.
 */
async function book(t: TradeState, p: OrderProgress): Promise<void> {
  if (p.finalized) t.closedAs = p.finalized;
  if (p.fills.length > 0 || p.changed) {
    absorb(t, p.order);
    const phase = workingPhaseOf(p.order);
    if (!p.booked) {
      await call(
        'recordFills',
        'bookkeeping',
        `ledger: book ${p.fills.length} fill(s), ${p.order.filledQty}/${p.order.qty} filled`,
        {
          workflowId: t.workflowId,
          correlationId: t.signal.correlation_id,
          order: p.order,
          fills: p.fills,
          tradeStatus: phase,
        },
      );
    }
    setPhase(t, phase);
  }
}

async function cancelAtBroker(t: TradeState, summary: string): Promise<void> {
  try {
    const after = await call('cancelOrder', 'bookkeeping', summary, {
      workflowId: t.workflowId,
      clientOrderId: t.clientOrderId,
      correlationId: t.signal.correlation_id,
    });
    if (after) absorb(t, after);
  } catch (err) {
    // "Already filled" / "not cancelable" is the broker telling us the order's final state is near:
    // the follow that comes next reads it. Anything else is not expected here.
    if (!brokerRejection(err)) throw err;
  }
}

/** Cancel the open remainder (entry and any legs), then follow until the broker confirms a final state. */
async function cancelAndSettle(t: TradeState, o: BrokerOrder): Promise<BrokerOrder> {
  const { clientOrderId } = t;
  let current = o;
  const follow = async (summary: string, maxWaitMs: number): Promise<boolean> => {
    try {
      const p = await call('followOrder', 'follow', summary, followInput(t, maxWaitMs));
      await book(t, p);
      current = p.order;
      return true;
    } catch (err) {
      // An order the broker no longer knows cannot fill any more: settle with what was booked.
      if (isOrderNotFound(err)) return false;
      throw err;
    }
  };
  if (!isTradeComplete(current)) await cancelAtBroker(t, `cancel open remainder of ${clientOrderId}`);
  for (let i = 0; i < 20 && !isTradeComplete(current); i++) {
    if (!(await follow(`await cancel confirmation for ${clientOrderId}`, 5_000))) return current;
    if (i === 9 && !isTradeComplete(current)) {
      // A bracket leg that became active after the first cancel needs its own cancel.
      await cancelAtBroker(t, `cancel legs of ${clientOrderId}`);
    }
  }
  // Book anything that filled between the last change and the cancel.
  await follow(`final state of ${clientOrderId}`, 0);
  return current;
}

function rejectionReason(d: RiskDecision): string {
  const failed = d.checks.find((c) => !c.passed);
  return failed
    ? `${d.reasonCode}: ${failed.name} ${String(failed.value)} vs limit ${String(failed.limit)}`
    : d.reasonCode;
}
