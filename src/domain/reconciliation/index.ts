import { diffCash, diffPositions } from './balances';
import { diffOrders } from './orders';
import type { BrokerState, LedgerState, ReconcileOptions, ReconcileResult } from './types';

/**
 * Ledger ↔ broker reconciliation: the pure diff. No I/O; src/services/reconciliation.ts loads both sides,
 * calls `reconcile`, applies the adoptions and records every finding. The diff is split into its orders half
 * (orders.ts) and its balances half (balances.ts: positions, cash, the ledger's own invariants).
 *
 * The broker is the source of truth for what exists at the venue; the ledger is the source of truth for what
 * this system has *booked*. Reconciliation only ever moves the ledger's order *bookkeeping* towards the
 * broker, and only where that cannot change money:
 *
 * - ADOPTED: an order row's status (and cumulative filled qty / broker order id) catches up with the broker
 *   when every share the broker reports is already booked as a fill; a `pending_submit` row the broker has
 *   never seen, older than a grace period, is closed as `not_submitted` (no order exists, so nothing can
 *   fill).
 * - FLAGGED: everything else. In particular reconciliation never cancels an order (an unknown order may be a
 *   human's hedge: cancelling it is a trading decision) and never books a fill (fills, positions and cash are
 *   written only by the trade workflow that owns the order, keyed by execution id; a fill booked here could
 *   be booked a second time by that workflow, or with a made-up price). Positions and cash are never
 *   overwritten with the broker's figures either: a silent overwrite would hide the bug that caused the
 *   drift (NT #3104, #5000 in the reference doc).
 */

export {
  DEFAULT_CASH_TOLERANCE,
  DEFAULT_PENDING_SUBMIT_GRACE_MS,
  LEDGER_OPEN_STATUSES,
  NOT_SUBMITTED,
  type AdoptionKind,
  type BrokerState,
  type DeferredOrder,
  type FindingKind,
  type FlagKind,
  type LedgerOrder,
  type LedgerPosition,
  type LedgerState,
  type OrderAdoptionUpdate,
  type ReconcileAdoption,
  type ReconcileFinding,
  type ReconcileFlag,
  type ReconcileOptions,
  type ReconcileResult,
  type Severity,
} from './types';
export { invariantFlags, type LedgerInvariants } from './balances';

/** The diff. Deterministic: same inputs, same findings in the same order. */
export function reconcile(ledger: LedgerState, broker: BrokerState, opts: ReconcileOptions): ReconcileResult {
  const orders = diffOrders(ledger, broker, opts);
  return {
    adoptions: orders.adoptions,
    flags: [
      ...orders.flags,
      ...diffPositions(ledger, broker, orders.unbookedBySymbol),
      ...diffCash(ledger, broker, opts),
    ],
    deferred: orders.deferred,
  };
}
