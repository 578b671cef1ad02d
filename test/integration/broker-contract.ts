import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OrderRequest, OrderUpdate } from '../../src/contracts/order';
import { BrokerRejectedError, type Broker } from '../../src/adapters/brokers/broker';

/**
 * The Broker contract, run against every implementation (simulated exchange, Alpaca adapter + fake).
 * Anything the trade workflow relies on from a broker belongs here, so that swapping BROKER cannot
 * change behaviour the pipeline depends on.
 */

export interface BrokerHarness {
  broker: Broker;
  /** A symbol the venue trades. */
  symbol: string;
  /** A price for limit orders that the venue accepts and `driveFill` can fill at. */
  price: number;
  /**
   * Make the venue execute `qty` shares of an open order at (about) `price`, e.g. by feeding a bar to
   * the simulated exchange or by the fake Alpaca's fill control. Resolves once the venue has executed.
   */
  driveFill(clientOrderId: string, qty: number, price: number): Promise<void>;
  /** A request the venue must refuse (default: a buy far beyond buying power). */
  rejectedRequest?(clientOrderId: string): OrderRequest;
  close(): Promise<void>;
}

let seq = 0;
/** Unique per run, ≤ 48 chars (Alpaca's limit). */
export function uniqueClientOrderId(tag: string): string {
  return `ct-${tag}-${process.pid.toString(36)}-${Date.now().toString(36)}-${(++seq).toString(36)}`.slice(0, 48);
}

export async function waitFor<T>(fn: () => T | undefined | false, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const OPEN_STATUSES = ['pending_new', 'accepted', 'new', 'held'];

export function brokerContractSuite(name: string, makeHarness: () => Promise<BrokerHarness>): void {
  describe(`Broker contract: ${name}`, () => {
    let h: BrokerHarness;
    const updates: OrderUpdate[] = [];
    let unsubscribe: () => void = () => undefined;

    beforeAll(async () => {
      h = await makeHarness();
      unsubscribe = h.broker.onOrderUpdate((u) => updates.push(u));
    });
    afterAll(async () => {
      unsubscribe();
      await h?.close();
    });
    // Leftover working orders would compete for the next test's fills (venues fill in time priority).
    afterEach(async () => {
      for (const o of await h.broker.listOpenOrders()) await h.broker.cancelOrder(o.clientOrderId);
    });

    const limitBuy = (clientOrderId: string, qty = 10): OrderRequest => ({
      clientOrderId,
      symbol: h.symbol,
      side: 'buy',
      qty,
      type: 'limit',
      timeInForce: 'gtc',
      limitPrice: h.price,
    });
    const fillsFor = (cid: string) => updates.filter((u) => u.fill && u.order.clientOrderId === cid);

    it('submits an order and finds it by client order id', async () => {
      const cid = uniqueClientOrderId('submit');
      const placed = await h.broker.submitOrder(limitBuy(cid));
      expect(placed.clientOrderId).toBe(cid);
      expect(placed.brokerOrderId).toBeTruthy();
      expect(placed.symbol).toBe(h.symbol);
      expect(placed.side).toBe('buy');
      expect(placed.qty).toBe(10);
      expect(placed.filledQty).toBe(0);
      expect(OPEN_STATUSES).toContain(placed.status);

      const found = await h.broker.getOrderByClientOrderId(cid);
      expect(found?.brokerOrderId).toBe(placed.brokerOrderId);
      expect(found?.limitPrice).toBeCloseTo(h.price, 6);
      expect(await h.broker.getOrderByClientOrderId(uniqueClientOrderId('missing'))).toBeNull();
    });

    it('re-submitting the same client order id returns the same order and creates no second one', async () => {
      const cid = uniqueClientOrderId('idem');
      const first = await h.broker.submitOrder(limitBuy(cid));
      const second = await h.broker.submitOrder(limitBuy(cid));
      const retried = await h.broker.submitOrder(limitBuy(cid), { isRetry: true });
      expect(second.brokerOrderId).toBe(first.brokerOrderId);
      expect(retried.brokerOrderId).toBe(first.brokerOrderId);
      const open = (await h.broker.listOpenOrders()).filter((o) => o.clientOrderId === cid);
      expect(open).toHaveLength(1);
    });

    it('cancels an open order; cancelling again is harmless', async () => {
      const cid = uniqueClientOrderId('cancel');
      await h.broker.submitOrder(limitBuy(cid));
      const canceled = await h.broker.cancelOrder(cid);
      expect(canceled?.status).toBe('canceled');
      expect((await h.broker.getOrderByClientOrderId(cid))?.status).toBe('canceled');
      const again = await h.broker.cancelOrder(cid);
      expect(again?.status).toBe('canceled');
      expect(await h.broker.cancelOrder(uniqueClientOrderId('nope'))).toBeNull();
    });

    it('cancelling a filled order returns it unchanged', async () => {
      const cid = uniqueClientOrderId('cfill');
      await h.broker.submitOrder(limitBuy(cid, 5));
      await h.driveFill(cid, 5, h.price);
      const filled = await waitForStatus(h.broker, cid, 'filled');
      const after = await h.broker.cancelOrder(cid);
      expect(after?.status).toBe('filled');
      expect(after?.filledQty).toBe(filled.filledQty);
      expect(after?.filledQty).toBe(5);
    });

    it('a partial fill then the rest: two updates, distinct execution ids, cumulative filledQty', async () => {
      const cid = uniqueClientOrderId('partial');
      const placed = await h.broker.submitOrder(limitBuy(cid, 10));
      await h.driveFill(cid, 4, h.price);
      await waitFor(() => fillsFor(cid).length >= 1 || undefined, 10_000, 'partial fill update');
      await h.driveFill(cid, 6, h.price);
      await waitFor(() => fillsFor(cid).length >= 2 || undefined, 10_000, 'second fill update');
      // Give a duplicate the chance to show up before asserting there is none.
      await new Promise((r) => setTimeout(r, 100));
      const all = fillsFor(cid);
      expect(all).toHaveLength(2);
      const [a, b] = all as [OrderUpdate, OrderUpdate];
      expect(a.event).toBe('partial_fill');
      expect(b.event).toBe('fill');
      expect(a.fill!.executionId).not.toBe(b.fill!.executionId);
      expect(a.fill!.qty).toBe(4);
      expect(b.fill!.qty).toBe(6);
      expect(a.order.filledQty).toBe(4);
      expect(b.order.filledQty).toBe(10);
      for (const u of all) {
        expect(u.fill!.clientOrderId).toBe(cid);
        expect(u.fill!.brokerOrderId).toBe(placed.brokerOrderId);
        expect(u.fill!.symbol).toBe(h.symbol);
        expect(u.fill!.side).toBe('buy');
        expect(u.fill!.price).toBeGreaterThan(0);
        expect(u.fill!.fee).toBeGreaterThanOrEqual(0);
        expect(Number.isNaN(Date.parse(u.fill!.timestamp))).toBe(false);
      }
      const final = await h.broker.getOrderByClientOrderId(cid);
      expect(final?.status).toBe('filled');
      expect(final?.filledQty).toBe(10);
      const vwap = (a.fill!.qty * a.fill!.price + b.fill!.qty * b.fill!.price) / 10;
      expect(final?.filledAvgPrice).toBeCloseTo(vwap, 4);
    });

    it("listExecutions gives the order's executions from the broker's records, matching the stream by cum qty", async () => {
      const cid = uniqueClientOrderId('execs');
      const placed = await h.broker.submitOrder(limitBuy(cid, 10));
      expect(await h.broker.listExecutions(placed.brokerOrderId)).toEqual([]);
      await h.driveFill(cid, 3, h.price);
      await waitFor(() => fillsFor(cid).length >= 1 || undefined, 10_000, 'first fill');
      await h.driveFill(cid, 7, h.price);
      await waitFor(() => fillsFor(cid).length >= 2 || undefined, 10_000, 'second fill');
      const execs = await h.broker.listExecutions(placed.brokerOrderId, { orderCreatedAt: placed.createdAt });
      expect(execs.map((e) => [e.qty, e.cumQty, e.leavesQty])).toEqual([
        [3, 3, 7],
        [7, 10, 0],
      ]);
      expect(new Set(execs.map((e) => e.executionId)).size).toBe(2);
      const streamed = fillsFor(cid);
      for (const [i, e] of execs.entries()) {
        expect(e.brokerOrderId).toBe(placed.brokerOrderId);
        expect(e.symbol).toBe(h.symbol);
        expect(e.side).toBe('buy');
        // Same execution as the stream's: same cumulative quantity, price and fee.
        expect(e.cumQty).toBe(streamed[i]!.order.filledQty);
        expect(e.price).toBe(streamed[i]!.fill!.price);
        expect(e.fee).toBeCloseTo(streamed[i]!.fill!.fee, 9);
        expect(Number.isNaN(Date.parse(e.timestamp))).toBe(false);
      }
      expect(execs.at(-1)!.orderStatus).toBe('filled');
      // Without the creation time the adapter looks it up first; same answer.
      expect(await h.broker.listExecutions(placed.brokerOrderId)).toEqual(execs);
    });

    it('lists open orders and not finished ones', async () => {
      const open = uniqueClientOrderId('lo-open');
      const gone = uniqueClientOrderId('lo-gone');
      await h.broker.submitOrder(limitBuy(open, 1));
      await h.broker.submitOrder(limitBuy(gone, 1));
      await h.broker.cancelOrder(gone);
      const ids = (await h.broker.listOpenOrders()).map((o) => o.clientOrderId);
      expect(ids).toContain(open);
      expect(ids).not.toContain(gone);
      await h.broker.cancelOrder(open);
    });

    it('account and positions reflect fills', async () => {
      const acct0 = await h.broker.getAccount();
      const pos0 = (await h.broker.getPositions()).find((p) => p.symbol === h.symbol)?.qty ?? 0;
      const cid = uniqueClientOrderId('acct');
      await h.broker.submitOrder(limitBuy(cid, 7));
      await h.driveFill(cid, 7, h.price);
      await waitForStatus(h.broker, cid, 'filled');
      const fills = await waitFor(
        () => {
          const f = fillsFor(cid);
          return f.reduce((s, u) => s + u.fill!.qty, 0) >= 7 ? f : undefined;
        },
        10_000,
        'fill updates',
      );
      const cost = fills.reduce((s, u) => s + u.fill!.qty * u.fill!.price + u.fill!.fee, 0);
      const acct1 = await h.broker.getAccount();
      const pos = (await h.broker.getPositions()).find((p) => p.symbol === h.symbol);
      expect(pos?.qty).toBe(pos0 + 7);
      expect(pos!.avgEntryPrice).toBeGreaterThan(0);
      expect(acct1.cash).toBeCloseTo(acct0.cash - cost, 2);
      expect(acct1.tradingBlocked).toBe(false);
      expect(Number.isFinite(acct1.equity)).toBe(true);
      expect(acct1.buyingPower).toBeGreaterThanOrEqual(0);
    });

    it('a refused order surfaces as BrokerRejectedError, never as a working order; re-submitting gets the same answer', async () => {
      const cid = uniqueClientOrderId('reject');
      const req: OrderRequest = h.rejectedRequest?.(cid) ?? { ...limitBuy(cid, 1_000_000_000), limitPrice: h.price };
      const attempt = () =>
        h.broker.submitOrder(req).then(
          () => undefined,
          (e: unknown) => e,
        );
      const err = await attempt();
      expect(err).toBeInstanceOf(BrokerRejectedError);
      expect((err as BrokerRejectedError).code).toBeTruthy();
      expect((err as BrokerRejectedError).message).toBeTruthy();
      // Alpaca keeps a POST-time rejection off the books; the simulator records it as `rejected`. Never open.
      const recorded = await h.broker.getOrderByClientOrderId(cid);
      if (recorded) expect(recorded.status).toBe('rejected');
      expect((await h.broker.listOpenOrders()).map((o) => o.clientOrderId)).not.toContain(cid);
      const again = await attempt();
      expect(again).toBeInstanceOf(BrokerRejectedError);
      expect((again as BrokerRejectedError).code).toBe((err as BrokerRejectedError).code);
      const retried = await h.broker.submitOrder(req, { isRetry: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(retried).toBeInstanceOf(BrokerRejectedError);
    });
  });
}

async function waitForStatus(broker: Broker, cid: string, status: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const o = await broker.getOrderByClientOrderId(cid);
    if (o?.status === status) return o;
    if (Date.now() > deadline) throw new Error(`order ${cid} did not reach ${status} (is ${o?.status})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
