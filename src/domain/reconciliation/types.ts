import type { BrokerOrder, Side } from '../../contracts/order';

/** The vocabulary of reconciliation: both sides as the diff sees them, and what it finds. */

/** Ledger statuses that mean "the order may still be working at the broker". */
export const LEDGER_OPEN_STATUSES: readonly string[] = [
  'pending_submit',
  'pending_new',
  'accepted',
  'new',
  'partially_filled',
  'held',
  'done_for_day',
  'pending_cancel',
  'pending_replace',
];

/** Ledger-only terminal status: the order intent was recorded but the broker never received the order. */
export const NOT_SUBMITTED = 'not_submitted';

/** One ledger `orders` row as reconciliation sees it. */
export interface LedgerOrder {
  clientOrderId: string;
  workflowId: string;
  parentClientOrderId: string | null;
  brokerOrderId: string | null;
  symbol: string;
  side: Side;
  qty: number;
  /** `orders.status`: a broker status, or `pending_submit` / `not_submitted`. */
  status: string;
  /** `orders.filled_qty`: the cumulative quantity last mirrored from the broker. */
  filledQty: number;
  /** Sum of booked `fills.qty` for this order: what the ledger's positions and cash actually contain. */
  bookedQty: number;
  createdAt: string;
  /**
   * Whether the owning trade workflow has finished (its risk reservation released / final trade status).
   * null when unknown (no trade row).
   */
  tradeFinished: boolean | null;
}

export interface LedgerPosition {
  symbol: string;
  /** Signed: negative is short. */
  qty: number;
}

export interface LedgerState {
  /** Every order whose ledger status is open (LEDGER_OPEN_STATUSES). */
  openOrders: LedgerOrder[];
  /**
   * Ledger rows (any status) for client order ids the broker lists as open but that are not in `openOrders`;
   * lets the diff tell "closed in the ledger, still working at the broker" from "unknown to the ledger".
   */
  knownOrders?: LedgerOrder[];
  positions: LedgerPosition[];
  /** accounts.cash; the cash check is skipped when absent. */
  cash?: number;
  /** Cash + positions at their last price, for context in the cash finding only. */
  equity?: number;
}

export interface BrokerState {
  /** `listOpenOrders()`: top-level working orders with bracket legs nested. */
  openOrders: BrokerOrder[];
  /**
   * `getOrderByClientOrderId` answers for ledger-open orders not in `openOrders`: the order, or null when the
   * broker has never seen it. A missing key means the lookup was not made (or failed): the order is flagged
   * as unverified rather than guessed about.
   */
  lookups: Record<string, BrokerOrder | null>;
  positions: Array<{ symbol: string; qty: number; avgEntryPrice?: number; marketValue?: number }>;
  account?: { cash: number; equity: number };
}

export interface ReconcileOptions {
  /** Decision time (ages of pending_submit rows are measured against it). */
  now: Date;
  /** A pending_submit row younger than this may be a submit in flight: it is left alone. Default 5 min. */
  pendingSubmitGraceMs?: number;
  /** Cash difference tolerated before a cash_drift flag: max(abs, pct × |broker cash|). Default: half a cent. */
  cashTolerance?: { abs: number; pct: number };
}

export const DEFAULT_PENDING_SUBMIT_GRACE_MS = 5 * 60_000;
// Money reconciles to the cent: prices are on the tick and fees in whole cents, so anything beyond half a
// cent is a real difference (an unbooked fee, a deposit outside this system), never rounding.
export const DEFAULT_CASH_TOLERANCE = { abs: 0.005, pct: 0 } as const;
/** Quantities are NUMERIC(20,6) in the ledger: anything smaller is rounding, not a discrepancy. */
export const QTY_EPSILON = 1e-6;

export type AdoptionKind =
  /** The broker's status / cumulative filled qty / broker order id copied into the order row. */
  | 'order_status'
  /** pending_submit the broker never saw, older than the grace period → not_submitted. */
  | 'not_submitted';

export type FlagKind =
  /** Working at the broker, unknown to the ledger (manual or external order). */
  | 'external_order'
  /** The broker reports fills the ledger has not booked; the owning trade workflow is still running. */
  | 'unbooked_fills'
  /** The broker reports fills the ledger has not booked and the owning trade has finished: nobody will book them. */
  | 'unbooked_fills_trade_closed'
  /** The ledger has booked more than the broker says executed (phantom fills). */
  | 'ledger_ahead_of_broker'
  /** The ledger says the broker acknowledged the order, the broker has no such order. */
  | 'order_missing_at_broker'
  /** Same client order id, different symbol, side or quantity. */
  | 'order_mismatch'
  /** Open at the broker while its trade workflow has finished: nothing follows or cancels it. */
  | 'orphaned_open_order'
  /** Closed in the ledger, still working at the broker. */
  | 'ledger_closed_broker_open'
  /** The broker lookup was not made or failed: the order's state is unknown. */
  | 'order_unverified'
  | 'position_mismatch'
  | 'cash_drift'
  /** The ledger disagrees with itself: cash ≠ Σ cash movements, or a position ≠ Σ its fills (a bookkeeping bug). */
  | 'ledger_invariant'
  /** Fills booked without a fee from the broker (inferred from cumulative quantities): cash may be off by their fees. */
  | 'fee_unknown';

export type FindingKind = AdoptionKind | FlagKind;
export type Severity = 'critical' | 'warning' | 'info';

interface FindingBase {
  symbol: string | null;
  clientOrderId: string | null;
  severity: Severity;
  /** One line for humans (logs, the CLI table). */
  message: string;
  /** Stored as reconciliation_issues.detail. */
  detail: Record<string, unknown>;
}

/** The order-row update an adoption makes, guarded by the row still being what the diff saw. */
export interface OrderAdoptionUpdate {
  clientOrderId: string;
  status: string;
  filledQty: number;
  avgFillPrice: number | null;
  brokerOrderId: string | null;
  /** Optimistic guard: apply only while the row still has this status and filled qty. */
  expect: { status: string; filledQty: number };
}

export interface ReconcileAdoption extends FindingBase {
  kind: AdoptionKind;
  action: 'ADOPTED';
  update: OrderAdoptionUpdate;
}

export interface ReconcileFlag extends FindingBase {
  kind: FlagKind;
  action: 'FLAGGED';
}

export type ReconcileFinding = ReconcileAdoption | ReconcileFlag;

/** A pending_submit order inside the grace period: possibly a submit in flight, deliberately untouched. */
export interface DeferredOrder {
  clientOrderId: string;
  symbol: string;
  ageMs: number;
}

export interface ReconcileResult {
  adoptions: ReconcileAdoption[];
  flags: ReconcileFlag[];
  deferred: DeferredOrder[];
}

export const sameQty = (a: number, b: number) => Math.abs(a - b) <= QTY_EPSILON;
export const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
