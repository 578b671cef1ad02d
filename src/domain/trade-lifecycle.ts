import { isTerminal, type BrokerOrder } from '../contracts/order';

/**
 * One trade lifecycle, defined once and used by the workflow (phases, search attribute), the activities
 * and the ledger (trades.status, with a CHECK constraint listing exactly LEDGER_TRADE_STATUSES).
 *
 * Invariant: every terminal path books what filled and releases the risk reservation. A trade never
 * ends because an activity failed: when the system gives up it ends FAILED, or NEEDS_REVIEW when the
 * broker's state of the order is unknown, with a reason code and an alert.
 */

/** Where a trade is in its life; also the TradeStatus search attribute. */
export const TRADE_PHASES = [
  'RECEIVED',
  'EVALUATING',
  'REJECTED',
  'SUBMITTING',
  'WORKING',
  'PARTIALLY_FILLED',
  'BRACKET_ACTIVE',
  'FILLED',
  'EXPIRING',
  'EXPIRED',
  'EXPIRED_PARTIAL',
  'CANCELLING',
  'CANCELLED',
  'BROKER_REJECTED',
  'ORDER_LOST',
  'FAILED',
  'NEEDS_REVIEW',
] as const;
export type TradePhase = (typeof TRADE_PHASES)[number];

/** How a trade ended, as the ledger records it. */
export const TRADE_OUTCOMES = [
  'FILLED',
  'PARTIALLY_FILLED',
  'CANCELLED',
  'EXPIRED',
  'REJECTED',
  'BROKER_REJECTED',
  'FAILED',
  'NEEDS_REVIEW',
] as const;
export type TradeOutcome = (typeof TRADE_OUTCOMES)[number];

/** Statuses a ledger trade row passes through while it runs (risk writes APPROVED/REJECTED). */
export const LEDGER_RUNNING_STATUSES = [
  'APPROVED',
  'SUBMITTED',
  'WORKING',
  'PARTIALLY_FILLED',
  'BRACKET_ACTIVE',
] as const;
export const LEDGER_TRADE_STATUSES: readonly string[] = [...new Set([...LEDGER_RUNNING_STATUSES, ...TRADE_OUTCOMES])];

/** Why a trade ends. */
export type EndCause =
  /** The signal breaks the contract (a trade started by hand): nothing reached risk or the ledger. */
  | { kind: 'invalid_signal' }
  /** Risk refused the trade; its decision is in the ledger already and nothing was reserved. */
  | { kind: 'risk_rejected'; reasonCode: string }
  /** The broker refused the order at submission: nothing was placed. */
  | { kind: 'broker_rejected' }
  /** The broker reports the order (and any bracket legs) final. */
  | { kind: 'broker_final' }
  /** The time-in-force deadline passed; the remainder was cancelled. */
  | { kind: 'deadline' }
  /** Cancelled by a person (temporal CLI / Web UI). */
  | { kind: 'user_cancel' }
  /** The broker no longer knows the order: nothing more can fill. */
  | { kind: 'order_lost' }
  /** The system gave up on a step it could not complete. */
  | { kind: 'gave_up'; reasonCode: string }
  /** The order's state at the broker could not be established: a person must look. */
  | { kind: 'unresolved'; reasonCode: string };

export interface TradeEnd {
  phase: TradePhase;
  outcome: TradeOutcome;
  reasonCode: string | null;
}

/**
 * A simple order is complete when terminal. A bracket is complete when its entry is terminal and, if the
 * entry filled, every leg is terminal too (one leg fills, the broker cancels the other).
 */
export function isTradeComplete(o: BrokerOrder): boolean {
  if (!isTerminal(o.status)) return false;
  if (!o.legs?.length || o.filledQty === 0) return true;
  return o.legs.every((l) => isTerminal(l.status));
}

/**
 * The end a follow writes itself when the workflow lets it (finalize-joins-follow): the order is complete and
 * the broker did not cancel it. A cancelled order is left to the workflow, because the cancel may be the
 * workflow's own (a user's cancel racing the follow), whose end (user_cancel) the workflow writes.
 */
export function endSeenByFollow(o: BrokerOrder): TradeEnd | null {
  if (!isTradeComplete(o)) return null;
  const end = tradeEnd(o, { kind: 'broker_final' });
  return end.phase === 'CANCELLED' ? null : end;
}

/** Phase of a live order (not yet complete). */
export function workingPhaseOf(o: BrokerOrder): TradePhase {
  if (o.status === 'filled' && o.legs?.length && o.filledQty > 0) return 'BRACKET_ACTIVE';
  if (o.status === 'filled') return 'FILLED';
  if (o.filledQty > 0) return 'PARTIALLY_FILLED';
  return 'WORKING';
}

/** Ledger status while the trade runs. */
export function ledgerStatusOf(phase: TradePhase): string {
  return (LEDGER_RUNNING_STATUSES as readonly string[]).includes(phase) || phase === 'FILLED' ? phase : 'SUBMITTED';
}

/**
 * Whether the workflow still has to write the trade's end to the ledger (finalizeTrade: outcome, reservation
 * released). Not for ends before a reservation: risk wrote its rejection itself, an invalid signal has no row.
 */
export function endNeedsLedger(cause: EndCause): boolean {
  return cause.kind !== 'invalid_signal' && cause.kind !== 'risk_rejected';
}

/** The one mapping from how a trade ended to its final phase, ledger outcome and reason code. */
export function tradeEnd(order: BrokerOrder | null, cause: EndCause): TradeEnd {
  const filled = order?.filledQty ?? 0;
  const fullyFilled = order !== null && order.status === 'filled';
  switch (cause.kind) {
    case 'invalid_signal':
      return { phase: 'REJECTED', outcome: 'REJECTED', reasonCode: 'invalid_signal' };
    case 'risk_rejected':
      return { phase: 'REJECTED', outcome: 'REJECTED', reasonCode: cause.reasonCode };
    case 'broker_rejected':
      return { phase: 'BROKER_REJECTED', outcome: 'BROKER_REJECTED', reasonCode: 'broker_rejected' };
    case 'broker_final': {
      const o = order;
      switch (o?.status) {
        case 'filled':
          return { phase: 'FILLED', outcome: 'FILLED', reasonCode: null };
        case 'expired':
          return filled > 0
            ? { phase: 'EXPIRED_PARTIAL', outcome: 'PARTIALLY_FILLED', reasonCode: 'expired_at_broker' }
            : { phase: 'EXPIRED', outcome: 'EXPIRED', reasonCode: 'expired_at_broker' };
        case 'rejected':
          return {
            phase: 'BROKER_REJECTED',
            outcome: filled > 0 ? 'PARTIALLY_FILLED' : 'BROKER_REJECTED',
            reasonCode: 'broker_rejected',
          };
        default:
          return {
            phase: 'CANCELLED',
            outcome: filled > 0 ? 'PARTIALLY_FILLED' : 'CANCELLED',
            reasonCode: 'cancelled_at_broker',
          };
      }
    }
    case 'deadline':
      if (fullyFilled) return { phase: 'FILLED', outcome: 'FILLED', reasonCode: null };
      return filled > 0
        ? { phase: 'EXPIRED_PARTIAL', outcome: 'PARTIALLY_FILLED', reasonCode: 'time_in_force_expired' }
        : { phase: 'EXPIRED', outcome: 'EXPIRED', reasonCode: 'time_in_force_expired' };
    case 'user_cancel':
      // If the order filled completely before the cancel reached the broker, the ledger records the truth.
      return fullyFilled
        ? { phase: 'FILLED', outcome: 'FILLED', reasonCode: 'cancelled_by_user' }
        : { phase: 'CANCELLED', outcome: 'CANCELLED', reasonCode: 'cancelled_by_user' };
    case 'order_lost':
      return { phase: 'ORDER_LOST', outcome: 'FAILED', reasonCode: 'order_not_found_at_broker' };
    case 'gave_up':
      return { phase: 'FAILED', outcome: 'FAILED', reasonCode: cause.reasonCode };
    case 'unresolved':
      return { phase: 'NEEDS_REVIEW', outcome: 'NEEDS_REVIEW', reasonCode: cause.reasonCode };
  }
}
