import type { BrokerOrder, Fill } from '../contracts/order';

/**
 * The one place fills are inferred and de-duplicated (issue: "every quantity the broker reports filled is
 * booked exactly once, whatever state the order is in when the workflow first sees it").
 *
 * The rule works on the order's cumulative filled quantity, which every broker reports on every order
 * snapshot: the ledger already holds fills up to `booked.cumQty`; the broker says `order.filledQty`; the
 * difference is booked now, exactly once. Real executions (stream events, the broker's execution
 * listing) are used where they continue the booked sequence without a gap, so they keep their real ids,
 * prices and fees. Whatever no execution explains is booked as one inferred fill priced from the
 * broker's average fill price, with an execution id derived from the cumulative quantity; its fee is
 * unknown (null), never a silent 0. A real execution reported later for shares already booked does not
 * raise the cumulative quantity, so it is recognised as booked and skipped.
 */

/** A fill as the ledger books it: the order's cumulative filled quantity after it is its second key. */
export interface LedgerFill extends Omit<Fill, 'fee'> {
  /** The broker's fee for this execution; null when the broker has not reported it (inferred fill). */
  fee: number | null;
  cumQty: number;
}

/** What the ledger already holds for one order. */
export interface BookedProgress {
  cumQty: number;
  /** Σ qty × price of the booked fills. */
  notional: number;
}

const EPS = 1e-9;

/** Every order of a trade: the entry and, for a bracket, its take-profit and stop-loss legs. */
export function ordersOf(order: BrokerOrder): BrokerOrder[] {
  return [order, ...(order.legs ?? [])];
}

/** Execution id of a fill inferred from the order's cumulative quantity. */
export function inferredExecutionId(order: Pick<BrokerOrder, 'brokerOrderId'>, cumQty: number): string {
  return `${order.brokerOrderId}:cum:${cumQty}`;
}

export function isInferredExecution(executionId: string): boolean {
  return executionId.includes(':cum:');
}

/**
 * Fills to book for one order, given what is booked and the executions known for it (any order, with
 * duplicates: they are sorted and de-duplicated here).
 */
export function fillsToBook(order: BrokerOrder, booked: BookedProgress, executions: LedgerFill[]): LedgerFill[] {
  if (order.filledQty <= booked.cumQty + EPS) return [];
  const out: LedgerFill[] = [];
  let cum = booked.cumQty;
  let notional = booked.notional;
  const sorted = [...executions]
    .filter((e) => e.clientOrderId === order.clientOrderId || !e.clientOrderId)
    .sort((a, b) => a.cumQty - b.cumQty);
  for (const e of sorted) {
    if (e.cumQty <= cum + EPS) continue; // already booked (duplicate, or covered by an inferred fill)
    if (e.cumQty > order.filledQty + EPS) break; // newer than the snapshot: the next call books it
    // Only an execution that starts exactly where the booked sequence ends continues it; after a gap
    // (an execution the stream dropped) the rest is inferred in one piece from the average price.
    if (Math.abs(e.cumQty - e.qty - cum) > EPS) break;
    out.push({ ...e, clientOrderId: order.clientOrderId, brokerOrderId: order.brokerOrderId });
    cum = e.cumQty;
    notional += e.qty * e.price;
  }
  if (cum < order.filledQty - EPS) {
    const qty = order.filledQty - cum;
    const totalNotional = (order.filledAvgPrice ?? 0) * order.filledQty;
    // The broker's average price covers every share; what the booked fills don't explain is this fill's.
    const residual = (totalNotional - notional) / qty;
    const price = residual > 0 ? residual : (order.filledAvgPrice ?? 0);
    out.push({
      executionId: inferredExecutionId(order, order.filledQty),
      clientOrderId: order.clientOrderId,
      brokerOrderId: order.brokerOrderId,
      symbol: order.symbol,
      side: order.side,
      qty,
      // NUMERIC(20, 6) in the ledger: round here so the value booked is the value computed.
      price: Math.round(price * 1e6) / 1e6,
      fee: null,
      cumQty: order.filledQty,
      timestamp: order.updatedAt,
    });
  }
  return out;
}
