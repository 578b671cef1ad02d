import { log, patched, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { KnownOrderState } from '../activities/execution';
import type { TradeOutcome } from '../domain/trade-lifecycle';
import type { BrokerOrder, OrderRequest } from '../contracts/order';
import type { TradeSignal } from '../contracts/signal';
import { clientOrderIdFor } from '../contracts/trade-ids';
import { tradeEnd } from '../domain/trade-lifecycle';
import { SA_SIDE, SA_STRATEGY, SA_SYMBOL, SA_TRADE_STATUS, type TradePhase, type TradeStatus } from './shared';

/*
 * The one state a trade's steps (trade-steps.ts) work on: how a trade opens, and how its phase is shown — the
 * status query, the Web UI's current details and the TradeStatus search attribute.
 */

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
 * finalize-joins-follow (issue 12, lever 4): the follow that learns the order is complete also closes the trade
 * in the ledger (outcome, reservation released) in the same transaction as its last fills, so a filled trade
 * needs no finalizeTrade activity and no workflow task for it. Decided at the trade's first follow, so a trade
 * that was already following before the patch keeps its finalizeTrade call.
 */
export const FINALIZE_JOINS_FOLLOW = 'finalize-joins-follow';

/**
 * Which command sequence a trade runs. `current` (workflow type tradeWorkflowV2): the lean path and the
 * follow that closes the trade, unconditionally, and the time-in-force deadline checked on the workflow's clock
 * between follows instead of by a timer; no `patched()` call, so no marker and no `TemporalChangeVersion` upsert.
 * `patched` (type tradeWorkflow, trades started before it): each patch decided by `patched()`, as recorded.
 */
export type TradeSequence = 'current' | 'patched';

/** Everything one trade knows. */
export interface TradeState {
  readonly workflowId: string;
  readonly signal: TradeSignal;
  /** The broker's idempotency key: derived from the workflow id, the same on every retry and restart. */
  readonly clientOrderId: string;
  /** Started after the trade-path-lean patch (always, for the `current` sequence). */
  readonly lean: boolean;
  /** The `current` sequence: no patch markers; the deadline is not a timer (trade-steps.ts, the follow loop). */
  readonly current: boolean;
  /** What the `status` query answers and the workflow returns; the steps keep it current. */
  readonly status: TradeStatus;
  /** The TradeStatus search attribute's value (the lean path skips upserting an unchanged value). */
  searchablePhase: string | undefined;
  /** The order as the broker last confirmed it; null until the broker has it. */
  order: BrokerOrder | null;
  /** Cumulative fills and status per client order id (entry and legs), handed to every follow. */
  readonly known: Record<string, KnownOrderState>;
  /** What risk approved, set by `planOrder`: the order and its time-in-force deadline, fixed once. */
  plan: { request: OrderRequest; deadlineMs: number; deadlineAt: number } | null;
  /** Past the finalize-joins-follow patch; null until the first follow asks (`patched()` is called there, on the `patched` sequence). */
  followCloses: boolean | null;
  /** The outcome a follow already closed the trade with in the ledger (finalize-joins-follow), if one did. */
  closedAs: TradeOutcome | null;
}

/** The trade as it starts: the status it reports, and the search attributes the Web UI filters on. */
export function openTrade(signal: TradeSignal, sequence: TradeSequence): TradeState {
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
  const current = sequence === 'current';
  const lean = current || patched(LEAN_TRADE_PATH);
  const preset = workflowInfo().typedSearchAttributes;
  // Signal intake sets these on the start request; a trade started by hand may lack them.
  if (!lean || !preset.get(SA_SYMBOL) || !preset.get(SA_SIDE) || !preset.get(SA_STRATEGY)) {
    upsertSearchAttributes([
      { key: SA_SYMBOL, value: signal.symbol },
      { key: SA_SIDE, value: signal.side },
      { key: SA_STRATEGY, value: signal.strategy },
    ]);
  }
  return {
    workflowId,
    signal,
    clientOrderId,
    lean,
    current,
    status,
    searchablePhase: lean ? preset.get(SA_TRADE_STATUS) : undefined,
    order: null,
    known: {},
    plan: null,
    followCloses: current ? true : null,
    closedAs: null,
  };
}

/**
 * A signal that breaks the contract (a trade started by hand skips intake's validation) ends
 * REJECTED/invalid_signal before the trade opens: no search attribute, no ledger row, no patch marker.
 */
export function invalidSignal(raw: unknown, reason: string): TradeStatus {
  const r = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  const { phase, reasonCode } = tradeEnd(null, { kind: 'invalid_signal' });
  log.warn('invalid signal rejected', { reason });
  return {
    phase,
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
    reasonCode,
    reason,
    legs: [],
  };
}

/** The status query's phase and the Web UI's current details (no search attribute upsert). */
export function showPhase(t: TradeState, phase: TradePhase, details?: string): void {
  t.status.phase = phase;
  setCurrentDetails(details ?? `${phase}: ${t.signal.side} ${t.signal.symbol} (${t.status.filledQty} filled)`);
}

/** A new phase, also in the TradeStatus search attribute (an upsert command: its place is part of replay). */
export function setPhase(t: TradeState, phase: TradePhase, details?: string): void {
  if (phase !== t.searchablePhase || !t.lean) upsertSearchAttributes([{ key: SA_TRADE_STATUS, value: phase }]);
  t.searchablePhase = phase;
  showPhase(t, phase, details);
}

/** Take in a broker snapshot of the order: what the workflow knows and what the status query shows. */
export function absorb(t: TradeState, o: BrokerOrder): void {
  const { known, status } = t;
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
