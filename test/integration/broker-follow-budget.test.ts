import { MockActivityEnvironment } from '@temporalio/testing';
import type { Pool } from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createExecutionActivities, type OrderProgress } from '../../src/activities/execution';
import { AlpacaBroker } from '../../src/adapters/brokers/alpaca';
import { OrderTracker } from '../../src/adapters/brokers/order-tracker';
import type { OrderRequest, OrderStatus } from '../../src/contracts/order';
import { createLogger } from '../../src/logging';
import { startFakeAlpaca, type FakeAlpaca } from '../fakes/fake-alpaca';
import { uniqueClientOrderId, waitFor } from './broker-contract';

/**
 * followOrder (the activity) over the real Alpaca adapter and the fake Alpaca, counting what reaches the
 * fake: following N open orders must not cost N requests per poll period. While the stream is healthy it
 * costs nothing; while it is down the adapter's single poller reads every followed order with one request
 * per round. (followOrder's pool is never touched: it only reads the broker and the tracker.)
 */

const silent = createLogger('test', { level: 'silent' });
const N = 20;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup() {
  const fake = await startFakeAlpaca({ apiKey: 'k', apiSecret: 's' });
  const broker = new AlpacaBroker({
    baseUrl: fake.url,
    keyId: 'k',
    secretKey: 's',
    logger: silent,
    httpTimeoutMs: 2_000,
    pollIntervalMs: 100,
    minPollSpacingMs: 0,
    reconnectInitialMs: 50,
    reconnectMaxMs: 200,
    rateLimitPerMinute: 200,
  });
  const tracker = new OrderTracker(broker);
  cleanups.push(async () => {
    tracker.close();
    await broker.close();
    await fake.close();
  });
  const acts = createExecutionActivities({
    pool: {} as Pool,
    broker,
    tracker,
    accountId: 'follow-budget',
    logger: silent,
    pollIntervalMs: 100,
  });
  expect(await broker.waitForStream(5_000)).toBe(true);
  return { fake, broker, tracker, acts };
}

const limitBuy = (clientOrderId: string): OrderRequest => ({
  clientOrderId,
  symbol: 'NVDA',
  side: 'buy',
  qty: 2,
  type: 'limit',
  timeInForce: 'day',
  limitPrice: 100,
});

function follow(
  acts: ReturnType<typeof createExecutionActivities>,
  clientOrderId: string,
  maxWaitMs: number,
  known: OrderStatus = 'new',
): Promise<OrderProgress> {
  return new MockActivityEnvironment().run(acts.followOrder, {
    clientOrderId,
    correlationId: `corr-${clientOrderId}`,
    known: { [clientOrderId]: { cumQty: 0, avgPrice: null, status: known } },
    maxWaitMs,
  });
}

const reads = (fake: FakeAlpaca): number => fake.requests.filter((r) => r.method === 'GET').length;

describe('followOrder within the request budget', () => {
  it(`${N} orders followed while the stream is healthy cost no request; fills arrive by the stream`, async () => {
    const { fake, broker, acts } = await setup();
    const cids = Array.from({ length: N }, (_, i) => uniqueClientOrderId(`fb-up-${i}`));
    for (const cid of cids) await broker.submitOrder(limitBuy(cid));
    // The stream has told the tracker about every order ('new'): nothing to read.
    await waitFor(() => fake.sentEvents.length >= N || undefined, 5_000, 'new events');
    const before = fake.requests.length;
    const runs = cids.map((cid) => follow(acts, cid, 1_500));
    for (const cid of cids.slice(0, 5)) await fake.fill(cid, 2, 100);
    const results = await Promise.all(runs);
    for (const [i, r] of results.entries()) {
      if (i < 5) {
        expect(r.changed).toBe(true);
        expect(r.fills.map((f) => [f.qty, f.cumQty, f.executionId.startsWith('exec-')])).toEqual([[2, 2, true]]);
      } else {
        expect(r.changed).toBe(false);
        expect(r.order.status).toBe('new');
      }
    }
    expect(fake.requests.length - before).toBe(0);
    expect(broker.streamHealthy()).toBe(true);
  });

  it(`${N} orders followed while the stream is down: one poller, one listing per round, no per-order reads`, async () => {
    const { fake, broker, acts } = await setup();
    const cids = Array.from({ length: N }, (_, i) => uniqueClientOrderId(`fb-down-${i}`));
    for (const cid of cids) await broker.submitOrder(limitBuy(cid));
    await waitFor(() => fake.sentEvents.length >= N || undefined, 5_000, 'new events');
    fake.refuseStream(true);
    fake.dropStream();
    await waitFor(() => !broker.streamHealthy() || undefined, 2_000, 'stream down');
    const before = reads(fake);
    const startIdx = fake.requests.length;
    const runs = cids.map((cid) => follow(acts, cid, 2_000));
    for (const cid of cids.slice(0, 5)) await fake.fill(cid, 2, 100);
    const results = await Promise.all(runs);
    // The five filled orders were seen by the poller (fills inferred from the cumulative quantity).
    for (const r of results.slice(0, 5)) {
      expect(r.changed).toBe(true);
      expect(r.fills.reduce((s, f) => s + f.qty, 0)).toBe(2);
    }
    for (const r of results.slice(5)) expect(r.changed).toBe(false);
    const polled = fake.requests.slice(startIdx).filter((r) => r.method === 'GET');
    expect(reads(fake) - before).toBeGreaterThan(0);
    // Not one lookup per order: every read was the one-request listing.
    expect(polled.filter((r) => r.path === '/v2/orders:by_client_order_id')).toHaveLength(0);
    expect(polled.every((r) => r.path === '/v2/orders')).toBe(true);
    // 20 orders for ~2 s at a 100 ms poll period would be ~400 lookups one by one; one listing a round
    // is at most one per round (≤ 2 s / 100 ms + 1).
    expect(reads(fake) - before).toBeLessThanOrEqual(21);
  });

  it('returns at once for an order already complete that the caller already knows (its own cancel answered it)', async () => {
    // cancelAndSettle absorbs the cancel's answer ('canceled') and then follows for the final state: with nothing
    // left to change, a follow that waited for a change would sit out its whole maxWaitMs. Here that is 10
    // minutes, far past the test's timeout: this test fails by timing out if the follow waits.
    const { broker, tracker, acts } = await setup();
    const cid = uniqueClientOrderId('fb-final');
    await broker.submitOrder(limitBuy(cid));
    const cancelled = await broker.cancelOrder(cid);
    expect(cancelled?.status).toBe('canceled');
    await waitFor(() => tracker.latestWithLegs(cid)?.status === 'canceled' || undefined, 5_000, 'canceled event');
    const r = await follow(acts, cid, 600_000, 'canceled');
    expect(r.changed).toBe(false);
    expect(r.order.status).toBe('canceled');
    expect(r.fills).toEqual([]);
  });
});
