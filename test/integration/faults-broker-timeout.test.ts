import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activityAttempts,
  barFeed,
  ledgerOf,
  ledgerPositionQty,
  logEvents,
  resultWithin,
  venueOrder,
  venueOrders,
  venuePositionQty,
  waitForStatus,
} from '../support/faults';
import { PipelineHarness, testSignal } from '../support/pipeline';

/**
 * A broker call that times out: the venue takes longer to answer a submit (SIM_LATENCY_MS) than the worker's
 * HTTP timeout (BROKER_HTTP_TIMEOUT_MS) allows, so the worker gives up on a POST the venue goes on to accept.
 * The outcome is ambiguous to the worker; the retry must find the order by its client order id instead of
 * placing a second one. See docs/fault-tolerance.md.
 */
const SYMBOL = 'NVDA';

describe('broker submit timing out (real Temporal, PostgreSQL, venue process)', () => {
  let h: PipelineHarness;
  let bars: ReturnType<typeof barFeed>;

  beforeAll(async () => {
    h = await PipelineHarness.create({ SIM_LATENCY_MS: '3000', BROKER_HTTP_TIMEOUT_MS: '1000' });
    await h.start('exchange-sim');
    await h.start('trade-worker');
    bars = barFeed(h, SYMBOL);
    await bars.next(20);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('an ambiguous submit timeout is retried as a lookup: exactly one order, ledger == venue', async () => {
    const sig = testSignal({
      symbol: SYMBOL,
      price: 20,
      order: { type: 'market', time_in_force: 'day', quantity_hint: 200 },
    });
    const workflowId = `trade-${sig.signal_id}`;
    await h.publishSignal(sig);

    const working = await waitForStatus(h, workflowId, (s) => s.phase === 'WORKING', 90_000);
    // The first attempt failed on the HTTP timeout; a later one found the order the venue had accepted.
    const failures = logEvents(h, 'trade-worker', 'order submission failed; will retry');
    expect(failures.length, 'the submit timed out at least once').toBeGreaterThanOrEqual(1);
    const attempts = await activityAttempts(h, workflowId);
    expect(Math.max(...(attempts.submitOrder ?? [0])), 'submitOrder was retried').toBeGreaterThanOrEqual(2);
    expect(logEvents(h, 'trade-worker', 'retry found the order already placed')).toContainEqual(
      expect.objectContaining({ clientOrderId: workflowId, brokerOrderId: working.brokerOrderId }),
    );

    await bars.next(20.2);
    const result = await resultWithin(h, workflowId, 60_000);
    expect(result.phase).toBe('FILLED');

    // Exactly one order at the venue, under the trade's client order id.
    const book = await venueOrders(h);
    expect(book.map((o) => o.client_order_id)).toEqual([workflowId]);
    const venue = (await venueOrder(h, workflowId))!;
    expect(venue.status).toBe('filled');
    const ledger = await ledgerOf(h, workflowId);
    expect(ledger.orders).toHaveLength(1);
    expect(ledger.orders[0]).toMatchObject({ status: 'filled', broker_order_id: venue.id });
    expect(ledger.fillQty).toBe(Number(venue.filled_qty));
    expect(result.filledQty).toBe(Number(venue.filled_qty));
    expect(await ledgerPositionQty(h, SYMBOL)).toBe(await venuePositionQty(h, SYMBOL));
  });
});
