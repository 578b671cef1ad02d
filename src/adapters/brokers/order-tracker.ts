import type { Broker } from './broker';
import { isTerminal, type BrokerOrder, type OrderUpdate } from '../../contracts/order';
import { isInferredExecution, type LedgerFill } from '../../domain/fills';

/** A fill as seen on the update stream, with the order's cumulative filled quantity after it. */
export type TrackedFill = LedgerFill & { fee: number };

/**
 * Keeps the broker's order-update stream in memory for the worker, so an activity that starts following
 * an order after a fill already streamed by still sees that fill with its real execution id.
 * Duplicate events (same execution id) are dropped here; the ledger's unique keys are the final guard.
 */
export class OrderTracker {
  private readonly fills = new Map<string, TrackedFill[]>();
  private readonly seenExecutions = new Set<string>();
  private readonly latest = new Map<string, BrokerOrder>();
  private readonly waiters = new Set<{ ids: Set<string>; wake: () => void }>();
  private readonly unsubscribe: () => void;
  private readonly order: string[] = [];

  constructor(
    broker: Broker,
    private readonly capacity = 10_000,
  ) {
    this.unsubscribe = broker.onOrderUpdate((u) => this.onUpdate(u));
  }

  private onUpdate(u: OrderUpdate): void {
    const id = u.order.clientOrderId;
    if (!this.latest.has(id)) {
      this.order.push(id);
      if (this.order.length > this.capacity) this.forget(this.order.shift()!);
    }
    const prev = this.latest.get(id);
    if (!prev || u.order.filledQty >= prev.filledQty) this.latest.set(id, u.order);
    // A fill the adapter synthesised from a snapshot's cumulative quantity carries nothing the booking step
    // (domain/fills.ts) does not infer itself, and no fee: only real executions are kept.
    if (u.fill && !isInferredExecution(u.fill.executionId) && !this.seenExecutions.has(u.fill.executionId)) {
      this.seenExecutions.add(u.fill.executionId);
      const list = this.fills.get(id) ?? [];
      list.push({ ...u.fill, cumQty: u.order.filledQty });
      this.fills.set(id, list);
    }
    for (const w of this.waiters) if (w.ids.has(id)) w.wake();
  }

  private forget(id: string): void {
    for (const f of this.fills.get(id) ?? []) this.seenExecutions.delete(f.executionId);
    this.fills.delete(id);
    this.latest.delete(id);
  }

  /** Stream fills for an order with cumulative quantity above `afterCumQty`, in execution order. */
  fillsAfter(clientOrderId: string, afterCumQty: number): TrackedFill[] {
    return (this.fills.get(clientOrderId) ?? [])
      .filter((f) => f.cumQty > afterCumQty)
      .sort((a, b) => a.cumQty - b.cumQty);
  }

  latestOrder(clientOrderId: string): BrokerOrder | undefined {
    return this.latest.get(clientOrderId);
  }

  /**
   * The latest known state of an order with each bracket leg replaced by the leg's own latest state (leg
   * events arrive under the leg's id; the parent's copy of its legs is only as fresh as the parent's
   * last event).
   */
  latestWithLegs(clientOrderId: string): BrokerOrder | undefined {
    const o = this.latest.get(clientOrderId);
    if (!o?.legs) return o;
    return { ...o, legs: o.legs.map((l) => fresher(this.latest.get(l.clientOrderId), l)) };
  }

  /**
   * Remember an order state read over REST (followOrder's first read of an order the stream has not
   * mentioned yet), so that later follows of a quiet order start from it instead of reading it again.
   * Never replaces a fresher state; wakes no one (it is not news).
   */
  noteSnapshot(order: BrokerOrder): void {
    const id = order.clientOrderId;
    const prev = this.latest.get(id);
    if (prev && fresher(prev, order) === prev) return;
    if (!prev) {
      this.order.push(id);
      if (this.order.length > this.capacity) this.forget(this.order.shift()!);
    }
    this.latest.set(id, order);
  }

  /** Resolve on the next update for any of the ids, or after `ms`. */
  waitForUpdate(ids: string[], ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const entry = { ids: new Set(ids), wake: () => done() };
      const timer = setTimeout(() => done(), ms);
      const onAbort = () => done();
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(entry);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.add(entry);
      signal?.addEventListener('abort', onAbort);
    });
  }

  close(): void {
    this.unsubscribe();
    for (const w of this.waiters) w.wake();
  }
}

/** The more advanced of two states of one order: more filled, then terminal, then later update. */
export function fresher(a: BrokerOrder | undefined, b: BrokerOrder): BrokerOrder {
  if (!a) return b;
  if (a.filledQty !== b.filledQty) return a.filledQty > b.filledQty ? a : b;
  if (isTerminal(a.status) !== isTerminal(b.status)) return isTerminal(a.status) ? a : b;
  return a.updatedAt >= b.updatedAt ? a : b;
}
