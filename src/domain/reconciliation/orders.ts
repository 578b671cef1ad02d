import { isTerminal, type BrokerOrder } from '../../contracts/order';
import {
  DEFAULT_PENDING_SUBMIT_GRACE_MS,
  NOT_SUBMITTED,
  QTY_EPSILON,
  round6,
  sameQty,
  type BrokerState,
  type DeferredOrder,
  type LedgerState,
  type ReconcileAdoption,
  type ReconcileFlag,
  type ReconcileOptions,
} from './types';

/** An order and its bracket legs. */
function flatten(orders: Iterable<BrokerOrder>): BrokerOrder[] {
  const out: BrokerOrder[] = [];
  for (const o of orders) out.push(o, ...(o.legs ?? []));
  return out;
}

export interface OrderDiff {
  adoptions: ReconcileAdoption[];
  flags: ReconcileFlag[];
  deferred: DeferredOrder[];
  /** Signed unbooked quantity per symbol: lets a position finding say whether unbooked fills explain it. */
  unbookedBySymbol: Map<string, number>;
}

/** The orders half of the diff: every order the ledger believes may be working, then the broker's working orders. */
export function diffOrders(ledger: LedgerState, broker: BrokerState, opts: ReconcileOptions): OrderDiff {
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

  return { adoptions, flags, deferred, unbookedBySymbol };
}
