import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TradeStatus } from '../../src/workflows/shared';
import {
  activityAttempts,
  barFeed,
  ledgerOf,
  ledgerPositionQty,
  logEvents,
  resultWithin,
  retryTimeoutTypes,
  sleep,
  venueOrder,
  venueOrders,
  venuePositionQty,
  waitForStatus,
  waitUntil,
} from '../support/faults';
import { PipelineHarness, testSignal } from '../support/pipeline';

/**
 * Fault injection on the real servers: the trade worker is killed with SIGKILL (no shutdown hook runs) at the
 * moments where a crash could double an order or a fill, and restarted. The venue is a separate process, so its
 * order book is the truth the ledger must match afterwards. See docs/fault-tolerance.md.
 *
 * The venue answers every submit after SIM_LATENCY_MS, so a POST is reliably "in flight" when the kill lands.
 */
const SYMBOL = 'NVDA';
const VENUE_LATENCY_MS = 4000;
/** Small buys: both tests' positions together stay inside the portfolio exposure limit, so each runs alone too. */
const BUY_200 = { type: 'market', time_in_force: 'day', quantity_hint: 200 } as const;
/** Heartbeat timeout (10 s) + retry backoff + a worker start, with room for a loaded CI machine. */
const FOLLOW_RESUME_BOUND_MS = 45_000;

describe('trade worker killed -9 mid-trade (real Temporal, RabbitMQ, PostgreSQL, venue process)', () => {
  let h: PipelineHarness;
  let bars: ReturnType<typeof barFeed>;
  /** Every trade this file sent to the venue. */
  const trades: string[] = [];

  /** Ledger and venue agree on the trade, on the whole order book and on the account's position. */
  async function expectLedgerMatchesVenue(workflowId: string, result: TradeStatus) {
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

  beforeAll(async () => {
    // The scale-out layout: the intake is its own process and survives the worker's crash.
    h = await PipelineHarness.create({ SIM_LATENCY_MS: String(VENUE_LATENCY_MS), INTAKE_IN_WORKER: 'false' });
    await h.start('exchange-sim');
    await h.start('trade-worker');
    await h.start('signal-intake');
    bars = barFeed(h, SYMBOL);
    await bars.next(20); // the venue learns the symbol and a price
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

    // Restart. The dead attempt times out (startToClose 30 s); the retry (isRetry) looks the order up first.
    await h.start('trade-worker');
    const working = await waitForStatus(h, workflowId, (s) => s.phase === 'WORKING', 120_000);
    expect(working.brokerOrderId).toBe(landed.id);
    // Exactly one order at the venue, whatever its id: the retry did not place another.
    expect((await venueOrders(h)).map((o) => o.client_order_id)).toEqual([workflowId]);
    const attempts = await activityAttempts(h, workflowId);
    expect(Math.max(...(attempts.submitOrder ?? [0])), 'submitOrder was retried').toBeGreaterThanOrEqual(2);
    expect(logEvents(h, 'trade-worker', 'retry found the order already placed')).toContainEqual(
      expect.objectContaining({ clientOrderId: workflowId, brokerOrderId: landed.id }),
    );

    await bars.next(20.2); // fills on the next bar
    const result = await resultWithin(h, workflowId, 60_000);
    expect(result.phase).toBe('FILLED');
    await expectLedgerMatchesVenue(workflowId, result);
  });

  it('kill -9 while following: the fill happens with no worker alive; after restarts it is booked exactly once', async () => {
    const sig = testSignal({ symbol: SYMBOL, price: 20.2, order: BUY_200 });
    const workflowId = `trade-${sig.signal_id}`;
    trades.push(workflowId);
    await h.publishSignal(sig);
    await waitForStatus(h, workflowId, (s) => s.phase === 'WORKING', 60_000);

    // followOrder is heartbeating against the venue. Crash the worker.
    await h.stop('trade-worker', 'SIGKILL');

    // The fill bar arrives while no worker is alive, twice (a redelivered bar must not fill twice either).
    await bars.next(20.4);
    await bars.repeat();
    const filled = await waitUntil(
      'the venue to fill the order',
      async () => {
        const o = await venueOrder(h, workflowId);
        return o?.status === 'filled' ? o : null;
      },
      30_000,
    );
    await sleep(500); // let the duplicate bar reach the venue too
    expect(Number((await venueOrder(h, workflowId))!.filled_qty)).toBe(Number(filled.qty));
    expect((await ledgerOf(h, workflowId)).fills, 'nothing can be booked while no worker runs').toHaveLength(0);

    // Restart #1. The dead follow is noticed by its heartbeat timeout (10 s) and retried here; it finds the
    // order filled and books it in one transaction (fill, position, cash, order and trade rows). The test
    // holds the trade row locked, so that transaction waits, and the worker is killed in the middle of it:
    // nothing may be half-booked (no fill without its position and cash), and the retry books it once.
    const lock = await h.db.pool.connect();
    try {
      await lock.query('BEGIN');
      await lock.query(`SELECT 1 FROM trades WHERE workflow_id = $1 FOR UPDATE`, [workflowId]);
      await h.start('trade-worker');
      await waitUntil(
        'the booking transaction to wait on the trade row',
        async () => {
          const r = await h.db.pool.query<{ n: string }>(
            `SELECT count(*)::text AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
              WHERE d.datname = current_database() AND NOT l.granted`,
          );
          return Number(r.rows[0]!.n) > 0;
        },
        FOLLOW_RESUME_BOUND_MS,
        50,
      );
      await h.stop('trade-worker', 'SIGKILL');
    } finally {
      await lock.query('ROLLBACK').catch(() => undefined);
      lock.release();
    }
    // The killed transaction is rolled back whole: no fill, no position, no cash movement.
    await waitUntil(
      'the killed booking to be rolled back',
      async () => {
        const r = await h.db.pool.query<{ n: string }>(
          `SELECT count(*)::text AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
            WHERE d.datname = current_database() AND NOT l.granted`,
        );
        return Number(r.rows[0]!.n) === 0;
      },
      10_000,
    );
    expect((await ledgerOf(h, workflowId)).fills, 'no half-booked fill').toHaveLength(0);

    // Restart #2: the interrupted follow times out (heartbeat) and runs again here; it books the fill once.
    await h.start('trade-worker');
    const result = await resultWithin(h, workflowId, 90_000);
    expect(result.phase).toBe('FILLED');
    const ledger = await ledgerOf(h, workflowId);
    expect(ledger.fills, JSON.stringify(ledger.fills)).toHaveLength(1);
    await expectLedgerMatchesVenue(workflowId, result);

    const attempts = await activityAttempts(h, workflowId);
    expect(Math.max(...(attempts.followOrder ?? [0])), 'the follow resumed on a new worker').toBeGreaterThanOrEqual(3);
    // The dead follows were noticed by their heartbeat timeout (10 s), not after the 90 s start-to-close.
    expect(await retryTimeoutTypes(h, workflowId, 'followOrder')).toContain('TIMEOUT_TYPE_HEARTBEAT');
    expect(logEvents(h, 'trade-worker', 'fills booked')).toContainEqual(
      expect.objectContaining({ workflow_id: workflowId, fills: 1 }),
    );
  });
});
