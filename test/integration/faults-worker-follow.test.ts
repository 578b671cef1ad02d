import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activityAttempts,
  ledgerOf,
  logEvents,
  resultWithin,
  retryTimeoutTypes,
  sleep,
  venueOrder,
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
 * The other crash point, while submitting, is faults-worker-submit.test.ts.
 */
/**
 * Heartbeat timeout (10 s) + retry backoff + a worker start (the worker's start-up alone took over 30 s with other
 * test files and agents sharing the 2 cores), with room for a loaded CI machine.
 */
const FOLLOW_RESUME_BOUND_MS = 90_000;

/**
 * Sessions of this file's database waiting for a lock. A booking blocked on the trade row locked by the test waits
 * for the lock holder's transaction id: a lock with no database in pg_locks, so it is found by its session's wait
 * event, not by joining pg_locks to pg_database (that missed the first blocked attempts and saw only a later
 * attempt queued behind them, 10-20 s of heartbeat timeouts later).
 */
async function lockWaits(h: PipelineHarness): Promise<number> {
  const r = await h.db.pool.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return Number(r.rows[0]!.n);
}

describe('trade worker killed -9 while following (real Temporal, RabbitMQ, PostgreSQL, venue process)', () => {
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
        async () => (await lockWaits(h)) > 0,
        FOLLOW_RESUME_BOUND_MS,
        50,
      );
      await h.stop('trade-worker', 'SIGKILL');
    } finally {
      await lock.query('ROLLBACK').catch(() => undefined);
      lock.release();
    }
    // The killed transaction is rolled back whole: no fill, no position, no cash movement.
    await waitUntil('the killed booking to be rolled back', async () => (await lockWaits(h)) === 0, 10_000);
    expect((await ledgerOf(h, workflowId)).fills, 'no half-booked fill').toHaveLength(0);

    // Restart #2: the interrupted follow times out (heartbeat) and runs again here; it books the fill once.
    await h.start('trade-worker');
    const result = await resultWithin(h, workflowId, 90_000);
    expect(result.phase).toBe('FILLED');
    const ledger = await ledgerOf(h, workflowId);
    expect(ledger.fills, JSON.stringify(ledger.fills)).toHaveLength(1);
    await expectLedgerMatchesVenue(h, trades, workflowId, result);

    const attempts = await activityAttempts(h, workflowId);
    expect(Math.max(...(attempts.followOrder ?? [0])), 'the follow resumed on a new worker').toBeGreaterThanOrEqual(3);
    // The dead follows were noticed by their heartbeat timeout (10 s), not after the 90 s start-to-close.
    expect(await retryTimeoutTypes(h, workflowId, 'followOrder')).toContain('TIMEOUT_TYPE_HEARTBEAT');
    expect(logEvents(h, 'trade-worker', 'fills booked')).toContainEqual(
      expect.objectContaining({ workflow_id: workflowId, fills: 1 }),
    );
  });
});
