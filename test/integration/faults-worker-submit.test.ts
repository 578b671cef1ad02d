import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activityAttempts,
  retryTimeoutTypes,
  ledgerOf,
  logEvents,
  resultWithin,
  sleep,
  venueOrder,
  venueOrders,
  waitForStatus,
  waitUntil,
} from '../support/faults';
import { testSignal, type PipelineHarness } from '../support/pipeline';
import { BUY_200, SYMBOL, expectLedgerMatchesVenue, workerCrashRig } from '../support/worker-crash';

/**
 * Fault injection on the real servers: the trade worker is killed with SIGKILL (no shutdown hook runs) at a
 * moment where a crash could double an order or a fill, and restarted. The venue is a separate process, so its
 * order book is the truth the ledger must match afterwards (test/support/worker-crash.ts). See
 * docs/fault-tolerance.md.
 *
 * The other crash point, while following, is faults-worker-follow.test.ts.
 */
describe('trade worker killed -9 while submitting (real Temporal, RabbitMQ, PostgreSQL, venue process)', () => {
  let h: PipelineHarness;
  let bars: Awaited<ReturnType<typeof workerCrashRig>>['bars'];
  /** Every trade this file sent to the venue. */
  const trades: string[] = [];

  beforeAll(async () => {
    ({ h, bars } = await workerCrashRig());
  });
  afterAll(async () => {
    await h?.close();
  });

  it('kill -9 while submitOrder is in flight: one broker order, found by the retry, ledger == venue', async () => {
    const sig = testSignal({ symbol: SYMBOL, price: 20, order: BUY_200 });
    const workflowId = `trade-${sig.signal_id}`;
    trades.push(workflowId);
    await h.publishSignal(sig);

    // The activity wrote its intent and sent the POST; the venue holds it for VENUE_LATENCY_MS.
    await waitUntil(
      'the pending_submit order row',
      async () => (await ledgerOf(h, workflowId)).orders[0]?.status === 'pending_submit',
      60_000,
      50,
    );
    await sleep(1000);
    expect(await venueOrder(h, workflowId), 'the kill must land before the order reaches the venue').toBeNull();
    await h.stop('trade-worker', 'SIGKILL');

    // The order lands although its caller is dead: the worker never learned the outcome (the ambiguous case).
    const landed = await waitUntil('the order to land at the venue', () => venueOrder(h, workflowId), 15_000);
    expect(landed.client_order_id).toBe(workflowId);

    // Restart. The dead attempt times out on its heartbeat (10 s, not the 30 s start-to-close); the retry (isRetry)
    // looks the order up first.
    await h.start('trade-worker');
    const working = await waitForStatus(h, workflowId, (s) => s.phase === 'WORKING', 120_000);
    expect(working.brokerOrderId).toBe(landed.id);
    // Exactly one order at the venue, whatever its id: the retry did not place another.
    expect((await venueOrders(h)).map((o) => o.client_order_id)).toEqual([workflowId]);
    const attempts = await activityAttempts(h, workflowId);
    expect(Math.max(...(attempts.submitOrder ?? [0])), 'submitOrder was retried').toBeGreaterThanOrEqual(2);
    await expectDeadSubmitNoticedByHeartbeat(h, workflowId);
    expect(logEvents(h, 'trade-worker', 'retry found the order already placed')).toContainEqual(
      expect.objectContaining({ clientOrderId: workflowId, brokerOrderId: landed.id }),
    );

    await bars.next(20.2); // fills on the next bar
    const result = await resultWithin(h, workflowId, 60_000);
    expect(result.phase).toBe('FILLED');
    await expectLedgerMatchesVenue(h, trades, workflowId, result);
  });

  it('kill -9 while the submit waits for the fill, which lands meanwhile: the retry books it and closes the trade, once', async () => {
    const sig = testSignal({ symbol: SYMBOL, price: 20.2, order: BUY_200 });
    const workflowId = `trade-${sig.signal_id}`;
    trades.push(workflowId);
    await h.publishSignal(sig);

    // The venue accepted the order. The submit now waits (awaitCompletionMs, 1 s) for a fill only the next bar
    // brings, and has booked nothing yet: kill it in that window.
    await waitUntil('the order to land at the venue', () => venueOrder(h, workflowId), 60_000, 20);
    await h.stop('trade-worker', 'SIGKILL');
    expect(
      (await ledgerOf(h, workflowId)).orders[0]?.status,
      'the kill must land before the submit booked the order',
    ).toBe('pending_submit');

    // The order fills while no worker runs.
    await bars.next(20.3);
    await waitUntil(
      'the fill at the venue',
      async () => (await venueOrder(h, workflowId))?.status === 'filled',
      15_000,
    );

    // Restart. The dead attempt times out on its heartbeat; the retry finds the order, filled, and its one booking
    // also closes the trade: no follow, no finalizeTrade.
    await h.start('trade-worker');
    const result = await resultWithin(h, workflowId, 120_000);
    expect(result.phase).toBe('FILLED');
    const attempts = await activityAttempts(h, workflowId);
    expect(Object.keys(attempts)).toEqual(['submitOrder']);
    expect(Math.max(...(attempts.submitOrder ?? [0])), 'submitOrder was retried').toBeGreaterThanOrEqual(2);
    await expectDeadSubmitNoticedByHeartbeat(h, workflowId);
    expect((await venueOrders(h)).filter((o) => o.client_order_id === workflowId)).toHaveLength(1);
    await expectLedgerMatchesVenue(h, trades, workflowId, result);
  });
});

/**
 * The killed worker's submit attempt ended by its heartbeat timeout, not its start-to-close: the retry came as
 * soon as the submit's options promise (from the retried attempt's lastFailure in the history, not a clock).
 */
async function expectDeadSubmitNoticedByHeartbeat(h: PipelineHarness, workflowId: string): Promise<void> {
  const timeouts = await retryTimeoutTypes(h, workflowId, 'submitOrder');
  expect(timeouts).toContain('TIMEOUT_TYPE_HEARTBEAT');
  expect(timeouts).not.toContain('TIMEOUT_TYPE_START_TO_CLOSE');
}
