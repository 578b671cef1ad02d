import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Activities } from '../../src/activities';
import type { FollowOrderInput, OrderProgress, SubmitOrderInput, SubmittedOrder } from '../../src/activities/execution';
import { fillsToBook, ordersOf, type LedgerFill } from '../../src/domain/fills';
import type { BrokerOrder, OrderRequest } from '../../src/contracts/order';
import { BarStoreBehindError, type RiskDecision } from '../../src/domain/risk';
import { endSeenByFollow } from '../../src/domain/trade-lifecycle';
import { sleep } from '../../src/lib/sleep';

/**
 * A scripted in-memory broker behind mock activities, for driving tradeWorkflow on the time-skipping server:
 * each scenario states what risk and the broker do, one broker change per followOrder call. Shared by the
 * workflow tests and the history recorder (scripts/record-histories.ts), so both exercise the same paths.
 */

export type Step = (o: BrokerOrder, broker: ScriptedBroker) => void;

export interface Scenario {
  decision?: Partial<RiskDecision>;
  /** Errors thrown by the first submit attempts. */
  submitErrors?: Array<() => Error>;
  /** One broker change per followOrder call; when exhausted the broker is quiet. */
  script?: Step[];
  /** The venue forgets the order after it was accepted (e.g. it was restarted). */
  orderLost?: boolean;
  /** What the broker does to the order before the submit response returns (a fast broker fills it). */
  atSubmit?: Step;
  /** The first submit attempts are rate limited (429), each asking to wait this long. */
  rateLimited?: { attempts: number; retryAfterMs: number };
  /** After this many follows, every follow fails with a non-retryable error nobody expected. */
  followFailsAfter?: number;
  /** Risk never answers (the ledger is unreachable). */
  riskUnavailable?: boolean;
  /** The first risk attempts find the bar store a bar behind the signal (a retryable wait). */
  riskBehind?: number;
  /** The first submit lands (and fills) but its response is lost; later submits never reach the broker. */
  landsThenUnreachable?: boolean;
  /** Fills whose stream events were lost: booking must infer them from the cumulative quantity. */
  dropExecutions?: boolean;
}

export class ScriptedBroker {
  orders = new Map<string, BrokerOrder>();
  submitAttempts = 0;
  riskAttempts = 0;
  follows = 0;
  submitted: OrderRequest[] = [];
  cancels: string[] = [];
  booked: LedgerFill[] = [];
  /** The mock ledger's booked cumulative quantity and notional per order, as bookOrderProgress reads them. */
  private ledger = new Map<string, { cumQty: number; notional: number }>();
  finalized: Array<{ outcome: string; filledQty: number; reasonCode?: string }> = [];
  private seq = 0;
  private fills = new Map<string, LedgerFill[]>();

  constructor(private readonly scenario: Scenario) {}

  fill(o: BrokerOrder, qty: number, price: number): void {
    const value = (o.filledAvgPrice ?? 0) * o.filledQty + qty * price;
    o.filledQty += qty;
    o.filledAvgPrice = value / o.filledQty;
    o.status = o.filledQty >= o.qty ? 'filled' : 'partially_filled';
    if (this.scenario.dropExecutions) return;
    const list = this.fills.get(o.clientOrderId) ?? [];
    list.push({
      executionId: `exec-${++this.seq}`,
      clientOrderId: o.clientOrderId,
      brokerOrderId: o.brokerOrderId,
      symbol: o.symbol,
      side: o.side,
      qty,
      price,
      fee: 0,
      cumQty: o.filledQty,
      timestamp: new Date().toISOString(),
    });
    this.fills.set(o.clientOrderId, list);
  }

  /** The broker accepts the order. */
  place(request: OrderRequest): BrokerOrder {
    this.submitted.push(request);
    const now = new Date().toISOString();
    const order: BrokerOrder = {
      brokerOrderId: `b-${this.orders.size + 1}`,
      clientOrderId: request.clientOrderId,
      symbol: request.symbol,
      side: request.side,
      qty: request.qty,
      type: request.type,
      timeInForce: request.timeInForce,
      status: 'new',
      filledQty: 0,
      filledAvgPrice: null,
      createdAt: now,
      updatedAt: now,
      ...(request.orderClass === 'bracket'
        ? { legs: [leg(request, 'tp', 'limit', 'held'), leg(request, 'sl', 'stop', 'held')] }
        : {}),
    };
    this.orders.set(order.clientOrderId, order);
    return order;
  }

  /** The booking step, as the real activities do it: whatever the order reports beyond the ledger, once. */
  book(order: BrokerOrder): LedgerFill[] {
    const out: LedgerFill[] = [];
    for (const o of ordersOf(order)) {
      const progress = this.ledger.get(o.clientOrderId) ?? { cumQty: 0, notional: 0 };
      const fills = fillsToBook(o, progress, this.fills.get(o.clientOrderId) ?? []);
      for (const f of fills) {
        progress.cumQty = f.cumQty;
        progress.notional += f.qty * f.price;
      }
      this.ledger.set(o.clientOrderId, progress);
      out.push(...fills);
    }
    this.booked.push(...out);
    return out;
  }

  /** The close a booking makes of a complete order's trade (endSeenByFollow), recorded in the mock ledger. */
  closeIfComplete(order: BrokerOrder): SubmittedOrder {
    const end = endSeenByFollow(order);
    if (!end) return { order };
    this.finalized.push({
      outcome: end.outcome,
      filledQty: order.filledQty,
      ...(end.reasonCode ? { reasonCode: end.reasonCode } : {}),
    });
    return { order, finalized: end.outcome };
  }

  activities(): Activities {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the mock activities close over the scripted broker
    const self = this;
    const decision: RiskDecision = {
      decision: 'APPROVED',
      reasonCode: 'approved',
      qty: 100,
      notional: 10_000,
      checks: [],
      ...this.scenario.decision,
    } as RiskDecision;
    const mock = {
      async evaluateRisk() {
        if (self.scenario.riskUnavailable) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        if (self.riskAttempts++ < (self.scenario.riskBehind ?? 0)) {
          // As the risk activity throws a designed wait: typed by the wait, with its own short delay.
          const behind = new BarStoreBehindError('AAPL', '2024-01-02T00:00:00.000Z', '2024-01-01T00:00:00.000Z');
          throw ApplicationFailure.create({ type: behind.name, message: behind.message, nextRetryDelay: 50 });
        }
        return decision;
      },
      async submitOrder({ request, awaitCompletionMs }: SubmitOrderInput): Promise<BrokerOrder | SubmittedOrder> {
        self.submitAttempts++;
        const limited = self.scenario.rateLimited;
        if (limited && self.submitAttempts <= limited.attempts) {
          throw ApplicationFailure.create({
            type: 'BrokerRateLimited',
            message: '429 too many requests',
            nextRetryDelay: limited.retryAfterMs,
          });
        }
        if (self.scenario.landsThenUnreachable) {
          if (self.submitAttempts === 1) {
            const landed = self.place(request);
            self.fill(landed, landed.qty, 100);
          }
          throw new Error('ETIMEDOUT: no response from the broker');
        }
        const err = self.scenario.submitErrors?.[self.submitAttempts - 1 - (limited?.attempts ?? 0)];
        if (err) throw err();
        const existing = self.orders.get(request.clientOrderId);
        const order = existing ?? self.place(request);
        if (!existing) self.scenario.atSubmit?.(order, self);
        self.book(order);
        const snapshot = structuredClone(order);
        if (awaitCompletionMs === undefined) return snapshot;
        // As the real activity: the scripted broker changes only at submit (atSubmit) or per follow, so awaiting
        // completion adds nothing but the close of an order that completed by now.
        return self.closeIfComplete(snapshot);
      },
      async cancelOrder({ clientOrderId }: { clientOrderId: string }) {
        self.cancels.push(clientOrderId);
        const o = self.orders.get(clientOrderId);
        if (!o) return null;
        for (const x of ordersOf(o)) {
          if (!['filled', 'canceled', 'expired', 'rejected'].includes(x.status)) x.status = 'canceled';
        }
        self.book(o);
        return structuredClone(o);
      },
      async followOrder(input: FollowOrderInput): Promise<OrderProgress> {
        if (self.scenario.orderLost) {
          throw ApplicationFailure.create({
            type: 'OrderNotFound',
            message: 'order not found at broker',
            nonRetryable: true,
          });
        }
        const o = self.orders.get(input.clientOrderId)!;
        if (self.scenario.followFailsAfter !== undefined && ++self.follows > self.scenario.followFailsAfter) {
          throw ApplicationFailure.create({ type: 'Unexpected', message: 'venue answers garbage', nonRetryable: true });
        }
        const step = self.scenario.script?.shift();
        if (step) step(o, self);
        else if (input.maxWaitMs > 0) {
          // A quiet broker: nothing happens for a moment (real time), then "no change".
          Context.current().heartbeat();
          await Promise.race([sleep(100), Context.current().cancelled]);
        }
        const snapshot = structuredClone(o);
        const changed = ordersOf(snapshot).some((x) => {
          const k = input.known[x.clientOrderId];
          return !k || k.status !== x.status || x.filledQty > k.cumQty;
        });
        const fills = self.book(o);
        // As the real activity: a complete order's booking also closes the trade when the workflow asks.
        if (!input.finalizeWhenComplete) return { order: snapshot, fills, changed, booked: true };
        const { finalized } = self.closeIfComplete(snapshot);
        return { order: snapshot, fills, changed, booked: true, ...(finalized ? { finalized } : {}) };
      },
      async recordFills({ fills }: { fills: LedgerFill[] }) {
        self.booked.push(...fills);
        return { inserted: fills.length, duplicates: 0 };
      },
      async finalizeTrade(input: { outcome: string; filledQty: number; reasonCode?: string }) {
        self.finalized.push({ outcome: input.outcome, filledQty: input.filledQty, reasonCode: input.reasonCode });
      },
    };
    return mock as unknown as Activities;
  }
}

export function leg(req: OrderRequest, kind: 'tp' | 'sl', type: 'limit' | 'stop', status: 'held'): BrokerOrder {
  const now = new Date().toISOString();
  return {
    brokerOrderId: `b-${kind}`,
    clientOrderId: `${req.clientOrderId}-${kind}`,
    symbol: req.symbol,
    side: req.side === 'buy' ? 'sell' : 'buy',
    qty: req.qty,
    type,
    timeInForce: 'gtc',
    status,
    filledQty: 0,
    filledAvgPrice: null,
    createdAt: now,
    updatedAt: now,
  };
}
