import {
  DEFAULT_CASH_TOLERANCE,
  round6,
  sameQty,
  type BrokerState,
  type LedgerState,
  type ReconcileFlag,
  type ReconcileOptions,
} from './types';

/** The balances half of the diff: positions and cash against the broker, and the ledger against itself. */

/** Positions, per symbol. `unbookedBySymbol` (from the orders half) tells whether unbooked fills explain a gap. */
export function diffPositions(
  ledger: LedgerState,
  broker: BrokerState,
  unbookedBySymbol: ReadonlyMap<string, number>,
): ReconcileFlag[] {
  const flags: ReconcileFlag[] = [];
  const flag = (f: Omit<ReconcileFlag, 'action'>) => flags.push({ ...f, action: 'FLAGGED' });
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
  return flags;
}

/** Cash (informational: deposits, fees or interest outside this system also move it). */
export function diffCash(ledger: LedgerState, broker: BrokerState, opts: ReconcileOptions): ReconcileFlag[] {
  const flags: ReconcileFlag[] = [];
  const flag = (f: Omit<ReconcileFlag, 'action'>) => flags.push({ ...f, action: 'FLAGGED' });
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
  return flags;
}

/** What the ledger's own double-entry checks found (ledgerInvariants in adapters/postgres/ledger/accounts.ts). */
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
