import { expect } from 'vitest';
import type { TradeStatus } from '../../src/workflows/shared';
import { barFeed, ledgerOf, ledgerPositionQty, venueOrder, venueOrders, venuePositionQty } from './faults';
import { PipelineHarness } from './pipeline';

/**
 * The rig of the worker-crash tests (test/integration/faults-worker-*.test.ts): the real pipeline processes with a
 * venue that answers every submit after VENUE_LATENCY_MS, so a POST is reliably "in flight" when a kill lands. Each
 * file has its own (database, vhost, task queue, venue), so the two crash points run beside each other.
 */
export const SYMBOL = 'NVDA';
export const VENUE_LATENCY_MS = 4000;
/** Small buys, inside the portfolio exposure limit. */
export const BUY_200 = { type: 'market', time_in_force: 'day', quantity_hint: 200 } as const;

export async function workerCrashRig(): Promise<{ h: PipelineHarness; bars: ReturnType<typeof barFeed> }> {
  // The scale-out layout: the intake is its own process and survives the worker's crash.
  const h = await PipelineHarness.create({ SIM_LATENCY_MS: String(VENUE_LATENCY_MS), INTAKE_IN_WORKER: 'false' });
  await h.start('exchange-sim');
  await h.start('trade-worker');
  await h.start('signal-intake');
  const bars = barFeed(h, SYMBOL);
  await bars.next(20); // the venue learns the symbol and a price
  return { h, bars };
}

/**
 * Ledger and venue agree on the trade, on the whole order book (`trades`: every trade the file sent) and on the
 * account's position.
 */
export async function expectLedgerMatchesVenue(
  h: PipelineHarness,
  trades: string[],
  workflowId: string,
  result: TradeStatus,
): Promise<void> {
  const venue = await venueOrder(h, workflowId);
  expect(venue).not.toBeNull();
  expect(venue!.status).toBe('filled');
  const venueFilled = Number(venue!.filled_qty);
  expect(venueFilled).toBeGreaterThan(0);
  expect(result.filledQty).toBe(venueFilled);

  const ledger = await ledgerOf(h, workflowId);
  expect(ledger.orders).toHaveLength(1);
  expect(ledger.orders[0]).toMatchObject({ client_order_id: workflowId, status: 'filled', filled_qty: venueFilled });
  expect(ledger.orders[0]!.broker_order_id).toBe(venue!.id);
  expect(ledger.fillQty).toBe(venueFilled);
  expect(ledger.tradeStatus).toBe('FILLED');

  // One venue order per trade, whatever its id: a retry that placed a second order under another client
  // order id would show up here.
  const book = await venueOrders(h);
  expect(book.map((o) => o.client_order_id).sort()).toEqual([...trades].sort());
  // The ledger's position (the sum of booked fills) is the venue's.
  expect(await ledgerPositionQty(h, SYMBOL)).toBe(await venuePositionQty(h, SYMBOL));
}
