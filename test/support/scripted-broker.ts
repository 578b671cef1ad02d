import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Activities } from '../../src/activities';
import { newFillsFor, ordersOf, type FollowOrderInput, type OrderProgress } from '../../src/activities/execution';
import type { LedgerFill } from '../../src/adapters/postgres/ledger';
import type { BrokerOrder, OrderRequest } from '../../src/contracts/order';
import type { RiskDecision } from '../../src/domain/risk';

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
}

export class ScriptedBroker {
  orders = new Map<string, BrokerOrder>();
  submitAttempts = 0;
  submitted: OrderRequest[] = [];
  cancels: string[] = [];
  booked: LedgerFill[] = [];
  finalized: Array<{ outcome: string; filledQty: number; reasonCode?: string }> = [];
  private seq = 0;
  private fills = new Map<string, LedgerFill[]>();

  constructor(private readonly scenario: Scenario) {}

  fill(o: BrokerOrder, qty: number, price: number): void {
    const value = (o.filledAvgPrice ?? 0) * o.filledQty + qty * price;
    o.filledQty += qty;
    o.filledAvgPrice = value / o.filledQty;
    o.status = o.filledQty >= o.qty ? 'filled' : 'partially_filled';
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
        return decision;
      },
      async releaseRisk() {},
      async submitOrder({ request }: { request: OrderRequest }) {
        self.submitAttempts++;
        const err = self.scenario.submitErrors?.[self.submitAttempts - 1];
        if (err) throw err();
        const existing = self.orders.get(request.clientOrderId);
        if (existing) return structuredClone(existing);
        self.submitted.push(request);
        const now = new Date().toISOString();
        const order: BrokerOrder = {
          brokerOrderId: `b-${self.orders.size + 1}`,
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
            ? {
                legs: [leg(request, 'tp', 'limit', 'held'), leg(request, 'sl', 'stop', 'held')],
              }
            : {}),
        };
        self.orders.set(order.clientOrderId, order);
        return structuredClone(order);
      },
      async cancelOrder({ clientOrderId }: { clientOrderId: string }) {
        self.cancels.push(clientOrderId);
        const o = self.orders.get(clientOrderId);
        if (!o) return null;
        for (const x of ordersOf(o)) {
          if (!['filled', 'canceled', 'expired', 'rejected'].includes(x.status)) x.status = 'canceled';
        }
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
        const step = self.scenario.script?.shift();
        if (step) step(o, self);
        else if (input.maxWaitMs > 0) {
          // A quiet broker: nothing happens for a moment (real time), then "no change".
          Context.current().heartbeat();
          await Promise.race([new Promise((r) => setTimeout(r, 100)), Context.current().cancelled]);
        }
        const snapshot = structuredClone(o);
        const fills = ordersOf(snapshot).flatMap((x) =>
          newFillsFor(x, input.known[x.clientOrderId], self.fills.get(x.clientOrderId) ?? []),
        );
        const changed = ordersOf(snapshot).some((x) => {
          const k = input.known[x.clientOrderId];
          return !k || k.status !== x.status || x.filledQty > k.cumQty;
        });
        return { order: snapshot, fills, changed };
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
