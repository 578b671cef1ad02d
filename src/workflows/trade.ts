import { ActivityFailure, defineQuery, isCancellation, setHandler } from '@temporalio/workflow';
import type { TradeSignal } from '../contracts/signal';
import type { TradeStatus } from './shared';
import { parseSignalInWorkflow } from './signal-check';
import { failureMessage, isOrderNotFound } from './trade-activities';
import {
  cancelByUser,
  checkRisk,
  endTrade,
  expireRemainder,
  followUntilCompleteOrDeadline,
  giveUp,
  orderLost,
  planOrder,
  rejectedByRisk,
  resolveUnconfirmedSubmit,
  submitOrder,
  throwIfCancelled,
} from './trade-steps';
import { invalidSignal, openTrade, type TradeSequence } from './trade-state';

export interface TradeWorkflowInput {
  signal: TradeSignal;
  /** Override the time-in-force deadline (ms from workflow start); used by tests and manual trades. */
  deadlineMs?: number;
}

export const statusQuery = defineQuery<TradeStatus>('status');

/**
 * The trade workflow type signal intake starts (`TRADE_WORKFLOW_TYPE`). The current command sequence with no
 * `patched()` branch: a new type needs no patch marker to tell new runs from old histories, so a trade costs
 * neither the markers nor the `TemporalChangeVersion` upserts the SDK adds for each `patched()` call, and the
 * time-in-force deadline needs no timer (docs/workflow-versioning.md, "Workflow types").
 */
export async function tradeWorkflowV2(input: TradeWorkflowInput): Promise<TradeStatus> {
  return runTrade(input, 'current');
}

/**
 * The type every trade started before tradeWorkflowV2 runs as: kept so that those trades, and their histories,
 * replay with their own `patched()` branches until none is running (then remove it and its fixtures).
 */
export async function tradeWorkflow(input: TradeWorkflowInput): Promise<TradeStatus> {
  return runTrade(input, 'patched');
}

/**
 * One trade, from signal to a settled ledger: risk → submit → follow fills until complete or the
 * time-in-force deadline → the end, booked, with the risk reservation released. Cancellable from the
 * CLI/UI: cancellation cancels the open broker order and keeps any partial fill. The steps are in
 * trade-steps.ts; their order is the trade's command sequence (replayed by test/workflow/replay.test.ts).
 */
async function runTrade(input: TradeWorkflowInput, sequence: TradeSequence): Promise<TradeStatus> {
  // A trade started by hand (temporal CLI) skips intake's validation: a bad signal ends
  // REJECTED/invalid_signal instead of failing workflow tasks forever.
  const parsed = parseSignalInWorkflow(input?.signal);
  if (!parsed.ok) return invalidSignal(input?.signal, parsed.reason);
  const trade = openTrade(parsed.value, sequence);
  setHandler(statusQuery, () => trade.status);

  // Risk first. Nothing has reached the broker yet; a stale signal (risk unreachable for two minutes)
  // gives up, and finalising releases any reservation a lost completion may have left.
  const risk = await checkRisk(trade);
  if (risk.kind === 'unavailable') {
    return endTrade(trade, null, { kind: 'gave_up', reasonCode: 'risk_unavailable' }, risk.why);
  }
  if (risk.kind === 'rejected') return rejectedByRisk(trade, risk.decision);
  planOrder(trade, risk.decision, input.deadlineMs);

  // From here an order may exist at the broker: however the trade ends, it ends settled and booked.
  try {
    await throwIfCancelled();
    const submitted = await submitOrder(trade);
    if (submitted.kind === 'rejected') return endTrade(trade, null, { kind: 'broker_rejected' }, submitted.reason);
    if (submitted.kind === 'unconfirmed') return await resolveUnconfirmedSubmit(trade, submitted.why);

    if (await followUntilCompleteOrDeadline(trade)) {
      return await endTrade(trade, trade.order, { kind: 'broker_final' });
    }
    return await endTrade(trade, await expireRemainder(trade), { kind: 'deadline' });
  } catch (err) {
    if (isOrderNotFound(err)) return await orderLost(trade, err);
    if (isCancellation(err)) {
      await cancelByUser(trade);
      throw err; // the workflow ends as cancelled
    }
    if (!(err instanceof ActivityFailure)) throw err;
    return await giveUp(trade, failureMessage(err));
  }
}
