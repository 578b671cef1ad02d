import type { Pool } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerOrder, OrderRequest } from '../../src/contracts/order';
import type { LedgerFill } from '../../src/domain/fills';
import { bookOrderProgress, ledgerInvariants, recordOrderIntent } from '../../src/adapters/postgres/ledger';
import { countRoundTrips, createPool } from '../../src/adapters/postgres/pool';
import { ensureAccount } from '../../src/adapters/postgres/risk-store';
import { createLogger } from '../../src/logging';
import { createTestDatabase, type TestDatabase } from '../support/pg';

/**
 * bookOrderProgress against a real PostgreSQL, on a pipelined pool (as the trade worker runs it: its statements
 * go out in batches) and on a plain one (one statement at a time): the same ledger either way, a share never
 * booked twice when bookers race, and the round trips a booking takes.
 */

const quietLogger = createLogger('ledger-booking-test', { level: 'silent' });

let db: TestDatabase;
let pipelinedPool: Pool;
const roundTrips = { count: 0 };
let seq = 0;

beforeAll(async () => {
  db = await createTestDatabase('sat_booking');
  db.pool.on('error', () => undefined);
  pipelinedPool = createPool(db.url, 20, { pipeline: true, logger: quietLogger });
  pipelinedPool.on('error', () => undefined);
  countRoundTrips(pipelinedPool, () => roundTrips.count++);
});
afterAll(async () => {
  await pipelinedPool?.end().catch(() => undefined);
  await db?.drop();
});

/** An account with a trade, its HELD reservation and its order intent, as evaluateRisk + submitOrder leave them. */
async function openOrder(qty: number) {
  const n = ++seq;
  const accountId = `acct-book-${n}`;
  await ensureAccount(db.pool, accountId, 100_000);
  const request: OrderRequest = {
    clientOrderId: `coid-${n}`,
    symbol: 'NVDA',
    side: 'buy',
    qty,
    type: 'market',
    timeInForce: 'day',
  };
  const ctx = { workflowId: `trade-book-${n}`, accountId, correlationId: `corr-${n}`, broker: 'simulated' };
  await db.pool.query(
    `INSERT INTO trades (workflow_id, signal_id, correlation_id, account_id, symbol, side, strategy, status)
     VALUES ($1, $2, $3, $4, 'NVDA', 'buy', 'test', 'SUBMITTED')`,
    [ctx.workflowId, `sig-${n}`, ctx.correlationId, accountId],
  );
  await db.pool.query(
    `INSERT INTO reservations (workflow_id, account_id, symbol, side, qty, notional, status)
     VALUES ($1, $2, 'NVDA', 'buy', $3, $4, 'HELD')`,
    [ctx.workflowId, accountId, qty, qty * 20],
  );
  await recordOrderIntent(db.pool, { ...ctx, request });
  const order = (filledQty: number, price: number): BrokerOrder => ({
    brokerOrderId: `broker-${n}`,
    clientOrderId: request.clientOrderId,
    symbol: 'NVDA',
    side: 'buy',
    qty,
    type: 'market',
    timeInForce: 'day',
    status: filledQty >= qty ? 'filled' : 'partially_filled',
    filledQty,
    filledAvgPrice: price,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
  });
  const fill = (qtyOf: number, price: number, cumQty: number, fee = 0.5): LedgerFill => ({
    executionId: `exec-${n}-${cumQty}`,
    clientOrderId: request.clientOrderId,
    brokerOrderId: `broker-${n}`,
    symbol: 'NVDA',
    side: 'buy',
    qty: qtyOf,
    price,
    fee,
    cumQty,
    timestamp: new Date().toISOString(),
  });
  return { ctx, order, fill };
}

async function ledgerOf(accountId: string, workflowId: string) {
  const r = await db.pool.query<{
    cash: string;
    qty: string | null;
    avg_cost: string | null;
    fills: number;
    trade_status: string;
    reservation: string;
    order_filled: string;
  }>(
    `SELECT a.cash::text,
            (SELECT qty::text FROM positions p WHERE p.account_id = a.account_id AND symbol = 'NVDA') AS qty,
            (SELECT avg_cost::text FROM positions p WHERE p.account_id = a.account_id AND symbol = 'NVDA') AS avg_cost,
            (SELECT count(*)::int FROM fills f WHERE f.account_id = a.account_id) AS fills,
            (SELECT status FROM trades WHERE workflow_id = $2) AS trade_status,
            (SELECT status FROM reservations WHERE workflow_id = $2) AS reservation,
            (SELECT filled_qty::text FROM orders WHERE workflow_id = $2) AS order_filled
       FROM accounts a WHERE a.account_id = $1`,
    [accountId, workflowId],
  );
  const row = r.rows[0]!;
  return {
    cash: Number(row.cash),
    qty: Number(row.qty ?? 0),
    avgCost: Number(row.avg_cost ?? 0),
    fills: row.fills,
    tradeStatus: row.trade_status,
    reservation: row.reservation,
    orderFilled: Number(row.order_filled),
  };
}

describe.each([
  ['on a pipelined pool (as the trade worker books)', true],
  ['one statement at a time', false],
])('bookOrderProgress %s', (_, pipelined) => {
  const pool = () => (pipelined ? pipelinedPool : db.pool);

  it('books a partial fill with the running status, then the rest and the close with the reservation released', async () => {
    const { ctx, order, fill } = await openOrder(10);
    const first = await bookOrderProgress(pool(), ctx, order(4, 20), [fill(4, 20, 4)], 'PARTIALLY_FILLED');
    expect(first).toMatchObject({ closed: false, booked: [{ cumQty: 4 }] });
    expect(await ledgerOf(ctx.accountId, ctx.workflowId)).toEqual({
      cash: 100_000 - 80 - 0.5,
      qty: 4,
      avgCost: 20,
      fills: 1,
      tradeStatus: 'PARTIALLY_FILLED',
      reservation: 'HELD',
      orderFilled: 4,
    });
    const last = await bookOrderProgress(pool(), ctx, order(10, 21.2), [fill(4, 20, 4), fill(6, 22, 10)], null, {
      outcome: 'FILLED',
    });
    expect(last).toMatchObject({ closed: true, booked: [{ cumQty: 10 }] });
    expect(await ledgerOf(ctx.accountId, ctx.workflowId)).toEqual({
      cash: 100_000 - 80 - 132 - 1,
      qty: 10,
      avgCost: 21.2,
      fills: 2,
      tradeStatus: 'FILLED',
      reservation: 'RELEASED',
      orderFilled: 10,
    });
    // A retry of the closing booking books nothing and does not count as closing the trade again.
    const retry = await bookOrderProgress(pool(), ctx, order(10, 21.2), [fill(6, 22, 10)], null, { outcome: 'FILLED' });
    expect(retry).toEqual({ booked: [], closed: false });
    const inv = await ledgerInvariants(db.pool, ctx.accountId);
    expect(inv).toEqual({ cashMinusMovements: 0, unknownFeeFills: 0, positionBreaks: [] });
  });

  it('racing bookers of the same progress book every share once and close the trade once', async () => {
    const { ctx, order, fill } = await openOrder(12);
    const progress = [fill(5, 20, 5), fill(7, 20, 12)];
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        bookOrderProgress(pool(), ctx, order(12, 20), i % 2 ? progress : [...progress].reverse(), null, {
          outcome: 'FILLED',
        }),
      ),
    );
    expect(results.flatMap((r) => r.booked.map((f) => f.cumQty)).sort((a, b) => a - b)).toEqual([5, 12]);
    expect(results.filter((r) => r.closed)).toHaveLength(1);
    expect(await ledgerOf(ctx.accountId, ctx.workflowId)).toMatchObject({
      cash: 100_000 - 240 - 1,
      qty: 12,
      fills: 2,
      tradeStatus: 'FILLED',
      reservation: 'RELEASED',
    });
    expect(await ledgerInvariants(db.pool, ctx.accountId)).toEqual({
      cashMinusMovements: 0,
      unknownFeeFills: 0,
      positionBreaks: [],
    });
  });
});

describe('bookOrderProgress round trips (pipelined pool)', () => {
  it('fills and the close: mirror, lock and progress; the fills; their moves with the close and COMMIT', async () => {
    const { ctx, order, fill } = await openOrder(3);
    const before = roundTrips.count;
    const r = await bookOrderProgress(pipelinedPool, ctx, order(3, 20), [fill(3, 20, 3)], null, { outcome: 'FILLED' });
    expect(r.closed).toBe(true);
    expect(roundTrips.count - before).toBe(3);
    // Three fills at once: still three (the inserts in one trip, every move in the last), and each booked once.
    const three = await openOrder(6);
    const beforeThree = roundTrips.count;
    const r3 = await bookOrderProgress(
      pipelinedPool,
      three.ctx,
      three.order(6, 21),
      [three.fill(1, 20, 1), three.fill(2, 21, 3), three.fill(3, 21.5, 6)],
      null,
      { outcome: 'FILLED' },
    );
    expect(r3).toMatchObject({ closed: true });
    expect(r3.booked.map((f) => f.qty)).toEqual([1, 2, 3]);
    expect(roundTrips.count - beforeThree).toBe(3);
    expect(await ledgerOf(three.ctx.accountId, three.ctx.workflowId)).toMatchObject({
      qty: 6,
      fills: 3,
      orderFilled: 6,
      reservation: 'RELEASED',
    });
    // Nothing new to book: the mirror, lock and progress, then the close with COMMIT.
    const again = roundTrips.count;
    await bookOrderProgress(pipelinedPool, ctx, order(3, 20), [fill(3, 20, 3)], null, { outcome: 'FILLED' });
    expect(roundTrips.count - again).toBe(2);
  });

  it('a statement failing in the close batch rolls the whole booking back', async () => {
    const { ctx, order, fill } = await openOrder(2);
    const fn = `fail_release_${seq}`;
    await db.pool.query(
      `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.workflow_id = '${ctx.workflowId}' AND NEW.status = 'RELEASED' THEN
           RAISE EXCEPTION 'injected release failure';
         END IF;
         RETURN NEW;
       END $$`,
    );
    await db.pool.query(`CREATE TRIGGER ${fn} BEFORE UPDATE ON reservations FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
    try {
      await expect(
        bookOrderProgress(pipelinedPool, ctx, order(2, 20), [fill(2, 20, 2)], null, { outcome: 'FILLED' }),
      ).rejects.toThrow(/injected release failure/);
      expect(await ledgerOf(ctx.accountId, ctx.workflowId)).toMatchObject({
        cash: 100_000,
        qty: 0,
        fills: 0,
        tradeStatus: 'SUBMITTED',
        reservation: 'HELD',
        orderFilled: 0,
      });
    } finally {
      await db.pool.query(`DROP TRIGGER ${fn} ON reservations`);
      await db.pool.query(`DROP FUNCTION ${fn}()`);
    }
    // The activity's retry books it once.
    const retry = await bookOrderProgress(pipelinedPool, ctx, order(2, 20), [fill(2, 20, 2)], null, {
      outcome: 'FILLED',
    });
    expect(retry).toMatchObject({ closed: true, booked: [{ cumQty: 2 }] });
    expect(await ledgerOf(ctx.accountId, ctx.workflowId)).toMatchObject({ qty: 2, fills: 1, reservation: 'RELEASED' });
  });
});
