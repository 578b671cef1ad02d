import { isTerminal, type BrokerOrder, type Side } from '../contracts/order';

/**
 * Ledger ↔ broker reconciliation: the pure diff. No I/O; src/services/reconciliation.ts loads both sides,
 * calls `reconcile`, applies the adoptions and records every finding.
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

export function isLedgerOpen(status: string): boolean {
  return LEDGER_OPEN_STATUSES.includes(status);
}

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
const QTY_EPSILON = 1e-6;

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

const sameQty = (a: number, b: number) => Math.abs(a - b) <= QTY_EPSILON;
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** An order and its bracket legs. */
function flatten(orders: Iterable<BrokerOrder>): BrokerOrder[] {
  const out: BrokerOrder[] = [];
  for (const o of orders) out.push(o, ...(o.legs ?? []));
  return out;
}

/** The diff. Deterministic: same inputs, same findings in the same order. */
export function reconcile(ledger: LedgerState, broker: BrokerState, opts: ReconcileOptions): ReconcileResult {
  const graceMs = opts.pendingSubmitGraceMs ?? DEFAULT_PENDING_SUBMIT_GRACE_MS;
  const nowMs = opts.now.getTime();
  const adoptions: ReconcileAdoption[] = [];
  const flags: ReconcileFlag[] = [];
  const deferred: DeferredOrder[] = [];
  const flag = (f: Omit<ReconcileFlag, 'action'>) => flags.push({ ...f, action: 'FLAGGED' });

  // What the broker knows, by client order id (open list first; a lookup answer is the fresher read).
  const brokerById = new Map<string, BrokerOrder | null>();
  for (const o of flatten(broker.openOrders)) brokerById.set(o.clientOrderId, o);
  for (const [id, o] of Object.entries(broker.lookups)) {
    brokerById.set(id, o);
    for (const leg of o?.legs ?? []) if (!brokerById.has(leg.clientOrderId)) brokerById.set(leg.clientOrderId, leg);
  }

  // Signed unbooked quantity per symbol: lets a position finding say whether unbooked fills explain it.
  const unbookedBySymbol = new Map<string, number>();
  const openOrders = [...ledger.openOrders].sort((a, b) => a.clientOrderId.localeCompare(b.clientOrderId));

  // ---- (1)(2) every order the ledger believes may be working
  for (const l of openOrders) {
    const base = { symbol: l.symbol, clientOrderId: l.clientOrderId };
    const ledgerView = {
      status: l.status,
      filledQty: l.filledQty,
      bookedQty: l.bookedQty,
      workflowId: l.workflowId,
      tradeFinished: l.tradeFinished,
    };
    if (!brokerById.has(l.clientOrderId)) {
      flag({
        ...base,
        kind: 'order_unverified',
        severity: 'warning',
        message: `${l.clientOrderId}: broker lookup failed; order state unknown (ledger: ${l.status})`,
        detail: { ledger: ledgerView },
      });
      continue;
    }
    const b = brokerById.get(l.clientOrderId) ?? null;

    if (b === null) {
      const ageMs = nowMs - Date.parse(l.createdAt);
      if (l.status !== 'pending_submit') {
        // The ledger recorded a broker acknowledgement; the broker denies the order exists. Possibly exposure
        // nobody can see (wrong account / environment keys) — never resolved by guessing.
        flag({
          ...base,
          kind: 'order_missing_at_broker',
          severity: 'critical',
          message: `${l.clientOrderId}: ledger says ${l.status}, broker has no such order`,
          detail: { ledger: ledgerView, brokerOrderId: l.brokerOrderId },
        });
      } else if (l.bookedQty > QTY_EPSILON) {
        flag({
          ...base,
          kind: 'ledger_ahead_of_broker',
          severity: 'critical',
          message: `${l.clientOrderId}: ${l.bookedQty} shares booked but the broker never saw the order`,
          detail: { ledger: ledgerView, broker: null },
        });
      } else if (!(ageMs > graceMs)) {
        // A submit may be in flight right now (intent recorded, POST not answered yet): leave it alone, or a
        // live order could end up marked not_submitted while it fills.
        deferred.push({ clientOrderId: l.clientOrderId, symbol: l.symbol, ageMs });
      } else {
        // Safe: the broker has no order with this id, so no fill can ever arrive for the row as it stands. If
        // the workflow's submit retry lands later, its syncOrder overwrites this status with the broker's.
        adoptions.push({
          ...base,
          kind: 'not_submitted',
          action: 'ADOPTED',
          severity: 'info',
          message: `${l.clientOrderId}: never reached the broker (pending_submit for ${Math.round(ageMs / 1000)} s) → ${NOT_SUBMITTED}`,
          detail: { ledger: ledgerView, ageMs, graceMs, createdAt: l.createdAt, to: { status: NOT_SUBMITTED } },
          update: {
            clientOrderId: l.clientOrderId,
            status: NOT_SUBMITTED,
            filledQty: l.filledQty,
            avgFillPrice: null,
            brokerOrderId: l.brokerOrderId,
            expect: { status: l.status, filledQty: l.filledQty },
          },
        });
      }
      continue;
    }

    const brokerView = {
      status: b.status,
      filledQty: b.filledQty,
      filledAvgPrice: b.filledAvgPrice,
      brokerOrderId: b.brokerOrderId,
      symbol: b.symbol,
      side: b.side,
      qty: b.qty,
    };
    const detail = { ledger: ledgerView, broker: brokerView };

    if (b.symbol !== l.symbol || b.side !== l.side || !sameQty(b.qty, l.qty)) {
      flag({
        ...base,
        kind: 'order_mismatch',
        severity: 'critical',
        message: `${l.clientOrderId}: ledger ${l.side} ${l.qty} ${l.symbol}, broker ${b.side} ${b.qty} ${b.symbol}`,
        detail,
      });
      continue;
    }

    if (l.bookedQty > b.filledQty + QTY_EPSILON || l.filledQty > b.filledQty + QTY_EPSILON) {
      flag({
        ...base,
        kind: 'ledger_ahead_of_broker',
        severity: 'critical',
        message: `${l.clientOrderId}: ledger has ${Math.max(l.bookedQty, l.filledQty)} filled, broker only ${b.filledQty}`,
        detail,
      });
      continue;
    }

    if (b.filledQty > l.bookedQty + QTY_EPSILON) {
      // Shares executed that the ledger's positions and cash do not contain. Not booked here: the owning
      // workflow books fills with the broker's execution ids and prices, and a fill invented here could be
      // counted twice. The row is also left open, so the gap keeps being reported until it is closed.
      const missing = round6(b.filledQty - l.bookedQty);
      unbookedBySymbol.set(
        l.symbol,
        round6((unbookedBySymbol.get(l.symbol) ?? 0) + (l.side === 'buy' ? missing : -missing)),
      );
      const closed = l.tradeFinished === true;
      flag({
        ...base,
        kind: closed ? 'unbooked_fills_trade_closed' : 'unbooked_fills',
        severity: closed ? 'critical' : 'warning',
        message: closed
          ? `${l.clientOrderId}: broker filled ${b.filledQty}, ledger booked ${l.bookedQty}; trade ${l.workflowId} is finished — ${missing} shares will never be booked`
          : `${l.clientOrderId}: broker filled ${b.filledQty}, ledger booked ${l.bookedQty}; left to trade ${l.workflowId} to book`,
        detail: { ...detail, unbookedQty: missing },
      });
      continue;
    }

    // Every executed share is booked: the order row may safely catch up with the broker.
    const changed =
      b.status !== l.status || !sameQty(b.filledQty, l.filledQty) || Boolean(b.brokerOrderId && !l.brokerOrderId);
    if (changed) {
      adoptions.push({
        ...base,
        kind: 'order_status',
        action: 'ADOPTED',
        severity: 'info',
        message: `${l.clientOrderId}: ${l.status} → ${b.status} (filled ${b.filledQty}/${b.qty})`,
        detail,
        update: {
          clientOrderId: l.clientOrderId,
          status: b.status,
          filledQty: b.filledQty,
          avgFillPrice: b.filledAvgPrice,
          brokerOrderId: b.brokerOrderId || l.brokerOrderId,
          expect: { status: l.status, filledQty: l.filledQty },
        },
      });
    }

    if (!isTerminal(b.status) && l.tradeFinished === true) {
      // Working at the broker, but the workflow that would follow, book and cancel it is gone.
      flag({
        ...base,
        kind: 'orphaned_open_order',
        severity: 'critical',
        message: `${l.clientOrderId}: still ${b.status} at the broker but trade ${l.workflowId} is finished; not cancelled automatically`,
        detail,
      });
    }
  }

  // ---- (3) broker working orders the ledger does not have open. Bracket legs travel with their entry.
  const ledgerOpenIds = new Set(ledger.openOrders.map((o) => o.clientOrderId));
  const known = new Map((ledger.knownOrders ?? []).map((o) => [o.clientOrderId, o]));
  const describe = (b: BrokerOrder) => ({
    status: b.status,
    brokerOrderId: b.brokerOrderId,
    side: b.side,
    qty: b.qty,
    filledQty: b.filledQty,
    type: b.type,
    limitPrice: b.limitPrice ?? null,
    stopPrice: b.stopPrice ?? null,
    createdAt: b.createdAt,
  });
  const topLevel = [...broker.openOrders].sort((x, y) => x.clientOrderId.localeCompare(y.clientOrderId));
  for (const top of topLevel) {
    const working = [top, ...(top.legs ?? [])].filter((o) => !isTerminal(o.status));
    if (working.length === 0) continue;
    if (!ledgerOpenIds.has(top.clientOrderId) && !known.has(top.clientOrderId)) {
      // Exposure the risk engine never approved and no workflow follows. It may be a human's deliberate
      // order (or a hedge): cancelling it is a trading decision, so it is only reported.
      flag({
        symbol: top.symbol,
        clientOrderId: top.clientOrderId,
        kind: 'external_order',
        severity: 'critical',
        message: `${top.clientOrderId}: ${top.side} ${top.qty} ${top.symbol} ${top.status} at the broker, unknown to the ledger (manual/external?); not cancelled automatically`,
        detail: {
          broker: {
            ...describe(top),
            workingLegs: (top.legs ?? []).filter((l) => !isTerminal(l.status)).map(describe),
          },
        },
      });
      continue;
    }
    for (const b of working) {
      if (ledgerOpenIds.has(b.clientOrderId)) continue; // compared above
      const k = known.get(b.clientOrderId);
      // A leg of a known entry that the ledger has not recorded yet: the entry's workflow records it.
      if (!k) continue;
      flag({
        symbol: b.symbol,
        clientOrderId: b.clientOrderId,
        kind: 'ledger_closed_broker_open',
        severity: 'critical',
        message: `${b.clientOrderId}: ${k.status} in the ledger but ${b.status} at the broker; not cancelled automatically`,
        detail: { ledger: { status: k.status, filledQty: k.filledQty, workflowId: k.workflowId }, broker: describe(b) },
      });
    }
  }

  // ---- (4) positions, per symbol
  const ledgerPos = new Map<string, number>();
  for (const p of ledger.positions) ledgerPos.set(p.symbol, (ledgerPos.get(p.symbol) ?? 0) + p.qty);
  const brokerPos = new Map<string, { qty: number; avgEntryPrice?: number; marketValue?: number }>();
  for (const p of broker.positions) brokerPos.set(p.symbol, p);
  const symbols = [...new Set([...ledgerPos.keys(), ...brokerPos.keys()])].sort();
  for (const symbol of symbols) {
    const lq = ledgerPos.get(symbol) ?? 0;
    const bp = brokerPos.get(symbol);
    const bq = bp?.qty ?? 0;
    if (sameQty(lq, bq)) continue;
    const unbooked = unbookedBySymbol.get(symbol) ?? 0;
    const diff = round6(bq - lq);
    flag({
      symbol,
      clientOrderId: null,
      kind: 'position_mismatch',
      severity: 'critical',
      message: `${symbol}: ledger ${lq}, broker ${bq} (broker − ledger = ${diff})${sameQty(unbooked, diff) ? ' — matches unbooked fills' : ''}`,
      detail: {
        ledgerQty: lq,
        brokerQty: bq,
        diff,
        unbookedFillsQty: unbooked,
        explainedByUnbookedFills: unbooked !== 0 && sameQty(unbooked, diff),
        brokerAvgEntryPrice: bp?.avgEntryPrice ?? null,
        brokerMarketValue: bp?.marketValue ?? null,
      },
    });
  }

  // ---- (5) cash (informational: deposits, fees or interest outside this system also move it)
  if (ledger.cash !== undefined && broker.account) {
    const tol = opts.cashTolerance ?? DEFAULT_CASH_TOLERANCE;
    const allowed = Math.max(tol.abs, tol.pct * Math.abs(broker.account.cash));
    const diff = round6(broker.account.cash - ledger.cash);
    if (Math.abs(diff) > allowed) {
      flag({
        symbol: null,
        clientOrderId: null,
        kind: 'cash_drift',
        severity: 'info',
        message: `cash: ledger ${ledger.cash.toFixed(2)}, broker ${broker.account.cash.toFixed(2)} (broker − ledger = ${diff.toFixed(2)}, tolerance ${allowed.toFixed(2)})`,
        detail: {
          ledgerCash: ledger.cash,
          brokerCash: broker.account.cash,
          diff,
          tolerance: allowed,
          ledgerEquity: ledger.equity ?? null,
          brokerEquity: broker.account.equity,
        },
      });
    }
  }

  return { adoptions, flags, deferred };
}

/** What the ledger's own double-entry checks found (adapters/postgres/ledger.ts ledgerInvariants). */
export interface LedgerInvariants {
  /** account cash − Σ cash movements (the opening balance is the first movement): exactly 0. */
  cashMinusMovements: number;
  /** Positions whose quantity ≠ Σ signed fill quantities. */
  positionBreaks: Array<{ symbol: string; positionQty: number; fillsQty: number }>;
  /** Fills booked with fee NULL (inferred; the broker has not reported their fee). */
  unknownFeeFills: number;
}

/** Flags for broken ledger invariants: money to the cent, position = Σ fills, no silently-free fills. */
export function invariantFlags(inv: LedgerInvariants): ReconcileFlag[] {
  const out: ReconcileFlag[] = [];
  if (Math.abs(inv.cashMinusMovements) >= 0.005) {
    out.push({
      symbol: null,
      clientOrderId: null,
      kind: 'ledger_invariant',
      action: 'FLAGGED',
      severity: 'critical',
      message: `ledger cash differs from the sum of its cash movements by ${inv.cashMinusMovements.toFixed(6)}`,
      detail: { cashMinusMovements: inv.cashMinusMovements },
    });
  }
  for (const p of inv.positionBreaks) {
    out.push({
      symbol: p.symbol,
      clientOrderId: null,
      kind: 'ledger_invariant',
      action: 'FLAGGED',
      severity: 'critical',
      message: `${p.symbol}: position ${p.positionQty} but its fills sum to ${p.fillsQty}`,
      detail: p,
    });
  }
  if (inv.unknownFeeFills > 0) {
    out.push({
      symbol: null,
      clientOrderId: null,
      kind: 'fee_unknown',
      action: 'FLAGGED',
      severity: 'warning',
      message: `${inv.unknownFeeFills} fill(s) booked without a fee from the broker (inferred from cumulative quantities)`,
      detail: { unknownFeeFills: inv.unknownFeeFills },
    });
  }
  return out;
}
