import {
  isTerminal,
  type BrokerOrder,
  type Fill,
  type OrderEventType,
  type OrderUpdate,
} from '../../../contracts/order';

/**
 * Turns two imperfect sources of order state — the trade_updates stream (can duplicate events,
 * can lose them, can be down) and REST snapshots taken by the poller — into ONE sequence of
 * OrderUpdates per order in which every share is reported exactly once.
 *
 * The invariant is on the cumulative filled quantity: a fill is emitted only when it moves the
 * order's cumulative `filledQty` above what was already emitted. So:
 *  - a replayed stream event (same execution_id) is dropped;
 *  - a poll that saw a fill before the stream event arrived emits a synthetic fill (execution id
 *    `${brokerOrderId}:cum:${filledQty}`), and the later real event for the same shares is dropped
 *    because it does not raise the cumulative quantity;
 *  - a stream event that reveals shares never reported (an event was lost) is preceded by a
 *    synthetic fill for the gap, so per-fill quantities always sum to the broker's `filled_qty`.
 * Every emitted fill carries a distinct cumulative quantity (the ledger's UNIQUE(client_order_id,
 * cum_qty) relies on that) and the update's `order.filledQty` is that cumulative quantity.
 *
 * After an order reaches a terminal state nothing more is emitted for it (late duplicates of `fill`
 * after `filled` are the common case on Alpaca).
 *
 * (A merge of two feeds of the same broker's order state; comparing the ledger with the broker is
 * reconciliation, src/services/reconciliation.ts.)
 */

interface OrderTrack {
  /** Cumulative shares already emitted. */
  filledQty: number;
  /** Cumulative notional (qty × price) already emitted, to derive synthetic fill prices from avg price. */
  filledNotional: number;
  executionIds: Set<string>;
  events: Set<OrderEventType>;
  terminal: boolean;
}

export interface StreamFill {
  executionId: string;
  qty: number;
  price: number;
  fee: number;
  timestamp: string;
}

const EPS = 1e-9;

function round6(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/** Status (from a snapshot) → the event that announces it; fills are handled separately. */
function eventForStatus(o: BrokerOrder): OrderEventType | null {
  switch (o.status) {
    case 'new':
      return 'new';
    case 'accepted':
    case 'pending_new':
      return 'accepted';
    case 'canceled':
    case 'expired':
    case 'rejected':
    case 'replaced':
    case 'pending_cancel':
      return o.status;
    default:
      return null;
  }
}

const TERMINAL_EVENTS: ReadonlySet<OrderEventType> = new Set(['fill', 'canceled', 'expired', 'rejected', 'replaced']);

export class OrderUpdateMerger {
  private readonly orders = new Map<string, OrderTrack>();

  constructor(private readonly maxEntries = 10_000) {}

  /**
   * Start following an order with a known baseline (what the ledger already has). No-op if the order
   * is already followed: a live track is always more accurate than a caller's baseline.
   */
  seed(clientOrderId: string, baseline: { filledQty?: number; filledNotional?: number } = {}): void {
    if (this.orders.has(clientOrderId)) return;
    this.put(clientOrderId, {
      filledQty: baseline.filledQty ?? 0,
      filledNotional: baseline.filledNotional ?? 0,
      executionIds: new Set(),
      events: new Set(),
      terminal: false,
    });
  }

  has(clientOrderId: string): boolean {
    return this.orders.has(clientOrderId);
  }

  isTerminal(clientOrderId: string): boolean {
    return this.orders.get(clientOrderId)?.terminal ?? false;
  }

  /** Cumulative quantity already emitted for an order (0 if unknown). */
  emittedQty(clientOrderId: string): number {
    return this.orders.get(clientOrderId)?.filledQty ?? 0;
  }

  /** A real trade_updates event. `event` null = an Alpaca event we do not surface (still used to catch up fills). */
  fromStream(
    event: OrderEventType | null,
    order: BrokerOrder,
    fill: StreamFill | undefined,
    timestamp: string,
  ): OrderUpdate[] {
    let t = this.orders.get(order.clientOrderId);
    if (!t) {
      // First sight of an order we neither placed nor watch: trust that what came before was delivered.
      const before = fill ? Math.max(0, order.filledQty - fill.qty) : order.filledQty;
      const avg = order.filledAvgPrice ?? 0;
      const notional = fill ? Math.max(0, avg * order.filledQty - fill.qty * fill.price) : avg * order.filledQty;
      t = { filledQty: before, filledNotional: notional, executionIds: new Set(), events: new Set(), terminal: false };
      this.put(order.clientOrderId, t);
    }
    if (t.terminal) return [];
    const out: OrderUpdate[] = [];
    if ((event === 'fill' || event === 'partial_fill') && fill) {
      if (t.executionIds.has(fill.executionId)) return [];
      t.executionIds.add(fill.executionId);
      const cum = order.filledQty;
      const delta = cum - t.filledQty;
      if (delta <= EPS) {
        // Already reported (a poll got there first, or a replay). Still honour a terminal status.
        if (order.status === 'filled') t.terminal = true;
        return [];
      }
      const totalNotional =
        order.filledAvgPrice !== null ? order.filledAvgPrice * cum : t.filledNotional + delta * fill.price;
      if (delta > fill.qty + EPS) {
        // Shares between what we reported and this fill were never announced: report the gap first.
        const gapCum = cum - fill.qty;
        out.push(this.synthetic(order, t, gapCum, totalNotional - fill.qty * fill.price, timestamp));
      }
      const qty = cum - t.filledQty;
      const price = Math.abs(qty - fill.qty) <= EPS ? fill.price : round6((totalNotional - t.filledNotional) / qty);
      out.push(
        this.emitFill(event, order, t, cum, qty, price, fill.fee, fill.executionId, fill.timestamp || timestamp),
      );
      // 'fill' (as opposed to partial_fill) means the order is complete.
      if (event === 'fill' || isTerminal(order.status)) t.terminal = true;
      return out;
    }
    // Non-fill event: first catch up any shares the stream never announced (missing fill events).
    if (order.filledQty > t.filledQty + EPS) {
      const total = order.filledAvgPrice !== null ? order.filledAvgPrice * order.filledQty : t.filledNotional;
      out.push(this.synthetic(order, t, order.filledQty, total, timestamp));
    }
    if (event && event !== 'fill' && event !== 'partial_fill' && !t.events.has(event)) {
      t.events.add(event);
      out.push({ event, order, timestamp });
    }
    if (isTerminal(order.status) || (event !== null && TERMINAL_EVENTS.has(event))) t.terminal = true;
    return out;
  }

  /** A REST snapshot taken by the poller (stream down, or the safety poll). */
  fromSnapshot(order: BrokerOrder, timestamp: string): OrderUpdate[] {
    this.seed(order.clientOrderId);
    const t = this.orders.get(order.clientOrderId)!;
    if (t.terminal) return [];
    const out: OrderUpdate[] = [];
    if (order.filledQty > t.filledQty + EPS) {
      const total = order.filledAvgPrice !== null ? order.filledAvgPrice * order.filledQty : t.filledNotional;
      out.push(this.synthetic(order, t, order.filledQty, total, timestamp));
    }
    const ev = eventForStatus(order);
    if (ev && !t.events.has(ev)) {
      t.events.add(ev);
      out.push({ event: ev, order, timestamp });
    }
    if (isTerminal(order.status)) t.terminal = true;
    return out;
  }

  /** A synthetic fill up to cumulative `cum`, priced so that cumulative notional reaches `cumNotional`. */
  private synthetic(
    order: BrokerOrder,
    t: OrderTrack,
    cum: number,
    cumNotional: number,
    timestamp: string,
  ): OrderUpdate {
    const qty = cum - t.filledQty;
    let price = round6((cumNotional - t.filledNotional) / qty);
    if (!Number.isFinite(price) || price <= 0) price = order.filledAvgPrice ?? order.limitPrice ?? 0;
    const event: OrderEventType = cum + EPS >= order.qty ? 'fill' : 'partial_fill';
    const id = `${order.brokerOrderId}:cum:${cum}`;
    t.executionIds.add(id);
    return this.emitFill(event, order, t, cum, qty, price, 0, id, timestamp);
  }

  private emitFill(
    event: OrderEventType,
    order: BrokerOrder,
    t: OrderTrack,
    cum: number,
    qty: number,
    price: number,
    fee: number,
    executionId: string,
    timestamp: string,
  ): OrderUpdate {
    t.filledQty = cum;
    t.filledNotional += qty * price;
    // The order snapshot says what was true right after THIS fill (matters when a gap fill precedes a real one).
    const snapshot: BrokerOrder =
      Math.abs(order.filledQty - cum) <= EPS
        ? order
        : { ...order, filledQty: cum, filledAvgPrice: round6(t.filledNotional / cum), status: 'partially_filled' };
    const fill: Fill = {
      executionId,
      clientOrderId: order.clientOrderId,
      brokerOrderId: order.brokerOrderId,
      symbol: order.symbol,
      side: order.side,
      qty,
      price,
      fee,
      timestamp,
    };
    return {
      event: event === 'fill' && cum + EPS < order.qty ? 'partial_fill' : event,
      order: snapshot,
      fill,
      timestamp,
    };
  }

  private put(clientOrderId: string, t: OrderTrack): void {
    this.orders.set(clientOrderId, t);
    if (this.orders.size <= this.maxEntries) return;
    // Forget the oldest finished orders first; an open order is never forgotten.
    for (const [id, tr] of this.orders) {
      if (this.orders.size <= this.maxEntries) break;
      if (tr.terminal) this.orders.delete(id);
    }
  }
}
