import { ActivityFailure, defineQuery, isCancellation, setHandler } from '@temporalio/workflow';
import { parseTradeSignal, type TradeSignal } from '../contracts/signal';
import type { TradeStatus } from './shared';
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
import { invalidSignal, openTrade } from './trade-state';

export interface TradeWorkflowInput {
  signal: TradeSignal;
  /** Override the time-in-force deadline (ms from workflow start); used by tests and manual trades. */
  deadlineMs?: number;
}

export const statusQuery = defineQuery<TradeStatus>('status');

/**
 * One trade, from signal to a settled ledger: risk → submit → follow fills until complete or the
 * time-in-force deadline → the end, booked, with the risk reservation released. Cancellable from the
 * CLI/UI: cancellation cancels the open broker order and keeps any partial fill. The steps are in
 * trade-steps.ts; their order is the trade's command sequence (replayed by test/workflow/replay.test.ts).
 */
export async function tradeWorkflow(input: TradeWorkflowInput): Promise<TradeStatus> {
  // A trade started by hand (temporal CLI) skips intake's validation: a bad signal ends
  // REJECTED/invalid_signal instead of failing workflow tasks forever.
  const parsed = parseTradeSignal(input?.signal);
  if (!parsed.ok) return invalidSignal(input?.signal, parsed.reason);
  const trade = openTrade(parsed.value);
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
