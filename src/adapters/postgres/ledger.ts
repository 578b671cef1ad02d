import type { Pool, PoolClient } from 'pg';
import type { BrokerOrder, OrderRequest } from '../../contracts/order';
import { fillsToBook, ordersOf, type LedgerFill } from '../../domain/fills';
import type { TradeOutcome } from '../../domain/trade-lifecycle';
import { toNumber, withTransaction } from './pool';

export { withTransaction };

/**
 * Order, fill, position and cash writes. Every write is keyed by a deterministic id (client order id,
 * execution id, workflow id), so an activity that is retried after a crash leaves exactly one trace.
 */

export type { LedgerFill };

/** Who an order belongs to: the trade (workflow), the account, the correlation id and the broker. */
export interface OrderContext {
  workflowId: string;
  accountId: string;
  correlationId: string;
  broker: string;
}

export interface OrderRecord extends OrderContext {
  request: OrderRequest;
  parentClientOrderId?: string;
}

/**
 * Record the order row before the broker call, so even an order whose submit outcome is unknown is
 * visible to reconciliation. Idempotent on client order id.
 */
export async function recordOrderIntent(pool: Pool, o: OrderRecord): Promise<void> {
  const r = o.request;
  await pool.query(
    `INSERT INTO orders (client_order_id, workflow_id, parent_client_order_id, account_id, broker, symbol, side, qty,
                         order_type, time_in_force, spec, status, correlation_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending_submit', $12)
     ON CONFLICT (client_order_id) DO NOTHING`,
    [
      r.clientOrderId,
      o.workflowId,
      o.parentClientOrderId ?? null,
      o.accountId,
      o.broker,
      r.symbol,
      r.side,
      r.qty,
      r.type,
      r.timeInForce,
      JSON.stringify(r),
      o.correlationId,
    ],
  );
}

/** Mirror the broker's view of an order (and its bracket legs) into the ledger. */
export async function syncOrder(pool: Pool | PoolClient, o: OrderContext | null, order: BrokerOrder): Promise<void> {
  await pool.query(
    `UPDATE orders SET broker_order_id = $2, status = $3,
            filled_qty = GREATEST(filled_qty, $4), avg_fill_price = COALESCE($5, avg_fill_price), updated_at = now()
     WHERE client_order_id = $1`,
    [order.clientOrderId, order.brokerOrderId, order.status, order.filledQty, order.filledAvgPrice],
  );
  if (o) {
    for (const leg of order.legs ?? []) {
      await pool.query(
        `INSERT INTO orders (client_order_id, workflow_id, parent_client_order_id, account_id, broker, broker_order_id,
                             symbol, side, qty, order_type, time_in_force, spec, status, correlation_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (client_order_id) DO UPDATE SET status = EXCLUDED.status, broker_order_id = EXCLUDED.broker_order_id,
           filled_qty = GREATEST(orders.filled_qty, $15), avg_fill_price = COALESCE($16, orders.avg_fill_price), updated_at = now()`,
        [
          leg.clientOrderId,
          o.workflowId,
          order.clientOrderId,
          o.accountId,
          o.broker,
          leg.brokerOrderId,
          leg.symbol,
          leg.side,
          leg.qty,
          leg.type,
          leg.timeInForce,
          JSON.stringify({ leg: true, limitPrice: leg.limitPrice, stopPrice: leg.stopPrice }),
          leg.status,
          o.correlationId,
          leg.filledQty,
          leg.filledAvgPrice,
        ],
      );
    }
  }
}

/**
 * Book what the broker reports filled for a trade's orders (the entry and any bracket legs), exactly once.
 *
 * This is the one booking step: the order returned by a submit, by a lookup after an ambiguous submit,
 * by a cancel and by following all come through here. Under a row lock on each order it reads what the
 * ledger already holds (the highest booked cumulative quantity) and books the difference to the broker's
 * cumulative filled quantity (domain/fills.ts), so a retried activity, a zombie attempt of a killed
 * worker, a duplicated stream event or a poll that raced the stream can never book a share twice, and an
 * order that was already filled when the workflow first saw it is booked all the same.
 * It also mirrors the broker's view of the orders and, when given, moves the trade's running status.
 */
export async function bookOrderProgress(
  pool: Pool,
  ctx: OrderContext,
  order: BrokerOrder,
  executions: LedgerFill[],
  tradeStatus: string | null,
): Promise<{ booked: LedgerFill[] }> {
  return withTransaction(pool, async (c) => {
    await syncOrder(c, ctx, order);
    const booked: LedgerFill[] = [];
    for (const o of ordersOf(order)) {
      // Serialises every booker of this order (retries, zombie attempts, reconciliation).
      await c.query(`SELECT 1 FROM orders WHERE client_order_id = $1 FOR UPDATE`, [o.clientOrderId]);
      const r = await c.query<{ cum: string; notional: string }>(
        `SELECT COALESCE(max(cum_qty), 0)::text AS cum, COALESCE(sum(qty * price), 0)::text AS notional
           FROM fills WHERE client_order_id = $1`,
        [o.clientOrderId],
      );
      const progress = { cumQty: toNumber(r.rows[0]!.cum), notional: toNumber(r.rows[0]!.notional) };
      const mine = executions.filter((e) => e.clientOrderId === o.clientOrderId);
      for (const f of fillsToBook(o, progress, mine)) {
        if (await insertFill(c, ctx.accountId, ctx.correlationId, f)) booked.push(f);
      }
    }
    if (tradeStatus) {
      await c.query(
        // A running status never overwrites a final one (a late attempt of a killed worker may book after
        // the trade was finalised; its shares are booked, its status is not).
        `UPDATE trades SET status = $2, filled_qty = $3, avg_fill_price = $4, updated_at = now()
          WHERE workflow_id = $1
            AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.workflow_id = $1 AND r.status = 'RELEASED')`,
        [ctx.workflowId, tradeStatus, order.filledQty, order.filledAvgPrice],
      );
    }
    return { booked };
  });
}

/**
 * Book fills given one by one (the recordFills activity of workflows started before bookOrderProgress;
 * kept so their histories replay and in-flight ones finish). Same idempotent insert.
 */
export async function recordFills(
  pool: Pool,
  accountId: string,
  correlationId: string,
  fills: LedgerFill[],
): Promise<{ inserted: number; duplicates: number }> {
  let inserted = 0;
  for (const f of fills) {
    if (await withTransaction(pool, (c) => insertFill(c, accountId, correlationId, f))) inserted++;
  }
  return { inserted, duplicates: fills.length - inserted };
}

/**
 * Insert one fill and, only when the insert happened, move the position and the cash in the same
 * transaction. All arithmetic is PostgreSQL NUMERIC: quantities, prices, fees and cash never pass through
 * floating point, so account cash = starting cash + Σ cash movements holds to the cent.
 */
async function insertFill(c: PoolClient, accountId: string, correlationId: string, f: LedgerFill): Promise<boolean> {
  const r = await c.query(
    `INSERT INTO fills (execution_id, client_order_id, broker_order_id, account_id, symbol, side, qty, price, fee,
                        cum_qty, executed_at, correlation_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT DO NOTHING RETURNING execution_id`,
    [
      f.executionId,
      f.clientOrderId,
      f.brokerOrderId,
      accountId,
      f.symbol,
      f.side,
      f.qty,
      f.price,
      f.fee,
      f.cumQty,
      f.timestamp,
      correlationId,
    ],
  );
  if (!r.rowCount) return false;
  const signed = f.side === 'buy' ? 1 : -1;
  // Average-cost accounting in one UPDATE (every expression reads the row as it was): adding to a position
  // moves the average; reducing it realises P&L against the average; crossing through zero closes the
  // old side and opens the new one at the fill price.
  await c.query(
    `INSERT INTO positions (account_id, symbol) VALUES ($1, $2) ON CONFLICT (account_id, symbol) DO NOTHING`,
    [accountId, f.symbol],
  );
  await c.query(
    `WITH f AS (SELECT $3::numeric * $4::numeric AS s, $5::numeric AS p)
     UPDATE positions SET
       realized_pnl = realized_pnl + CASE WHEN qty <> 0 AND sign(qty) <> sign(f.s)
                                          THEN (f.p - avg_cost) * LEAST(abs(qty), abs(f.s)) * sign(qty) ELSE 0 END,
       avg_cost = CASE WHEN qty = 0 OR sign(qty) = sign(f.s) THEN (abs(qty) * avg_cost + abs(f.s) * f.p) / abs(qty + f.s)
                       WHEN qty + f.s = 0 THEN 0
                       WHEN sign(qty + f.s) = sign(qty) THEN avg_cost
                       ELSE f.p END,
       qty = qty + f.s, last_price = f.p, updated_at = now()
     FROM f WHERE account_id = $1 AND symbol = $2`,
    [accountId, f.symbol, signed, f.qty, f.price],
  );
  await c.query(
    `INSERT INTO cash_movements (account_id, kind, amount, execution_id)
     VALUES ($1, 'fill', -($2::numeric * $3::numeric * $4::numeric), $5)`,
    [accountId, signed, f.qty, f.price, f.executionId],
  );
  if (f.fee !== null && f.fee > 0) {
    await c.query(
      `INSERT INTO cash_movements (account_id, kind, amount, execution_id) VALUES ($1, 'fee', -($2::numeric), $3)`,
      [accountId, f.fee, f.executionId],
    );
  }
  await c.query(
    `UPDATE accounts SET cash = cash - ($2::numeric * $3::numeric * $4::numeric) - $5::numeric, updated_at = now()
      WHERE account_id = $1`,
    [accountId, signed, f.qty, f.price, f.fee ?? 0],
  );
  await c.query(
    `UPDATE orders SET filled_qty = GREATEST(filled_qty, $2), updated_at = now() WHERE client_order_id = $1`,
    [f.clientOrderId, f.cumQty],
  );
  return true;
}

export type { TradeOutcome };

/**
 * Close the trade in the ledger: outcome, filled quantity, and release of the risk reservation (the
 * filled part now lives in positions; the unfilled part no longer needs reserving). Idempotent.
 */
export async function finalizeTrade(
  pool: Pool,
  t: { workflowId: string; outcome: TradeOutcome; reasonCode?: string; filledQty: number; avgFillPrice: number | null },
): Promise<void> {
  await withTransaction(pool, async (c) => {
    await c.query(
      `UPDATE trades SET status = $2, reason_code = COALESCE($3, reason_code), filled_qty = $4, avg_fill_price = $5, updated_at = now()
       WHERE workflow_id = $1`,
      [t.workflowId, t.outcome, t.reasonCode ?? null, t.filledQty, t.avgFillPrice],
    );
    await c.query(
      `UPDATE reservations SET status = 'RELEASED', released_at = now() WHERE workflow_id = $1 AND status = 'HELD'`,
      [t.workflowId],
    );
  });
}

/** The broker refused the order outright: mirror that on the order row. */
export async function markOrderRejected(pool: Pool, clientOrderId: string): Promise<void> {
  await pool.query(`UPDATE orders SET status = 'rejected', updated_at = now() WHERE client_order_id = $1`, [
    clientOrderId,
  ]);
}

/** Move the trade's status while it runs (SUBMITTED, WORKING, PARTIALLY_FILLED). */
export async function updateTradeStatus(
  pool: Pool,
  workflowId: string,
  status: string,
  filledQty: number,
  avgFillPrice: number | null,
): Promise<void> {
  await pool.query(
    `UPDATE trades SET status = $2, filled_qty = $3, avg_fill_price = $4, updated_at = now() WHERE workflow_id = $1`,
    [workflowId, status, filledQty, avgFillPrice],
  );
}

/** Seconds since the trade entered the ledger, by the database's clock (one clock for every worker host). */
export async function tradeAgeSeconds(pool: Pool, workflowId: string): Promise<number | null> {
  const r = await pool.query<{ age: string }>(
    `SELECT extract(epoch FROM clock_timestamp() - created_at) AS age FROM trades WHERE workflow_id = $1`,
    [workflowId],
  );
  return r.rows[0] ? Number(r.rows[0].age) : null;
}

export interface TradeRow {
  workflowId: string;
  signalId: string;
  status: string;
  reasonCode: string | null;
  filledQty: number;
  avgFillPrice: number | null;
}

export async function getTrade(pool: Pool, workflowId: string): Promise<TradeRow | null> {
  const r = await pool.query(`SELECT * FROM trades WHERE workflow_id = $1`, [workflowId]);
  const row = r.rows[0] as Record<string, string | null> | undefined;
  if (!row) return null;
  return {
    workflowId: row.workflow_id!,
    signalId: row.signal_id!,
    status: row.status!,
    reasonCode: row.reason_code ?? null,
    filledQty: toNumber(row.filled_qty),
    avgFillPrice: row.avg_fill_price === null || row.avg_fill_price === undefined ? null : toNumber(row.avg_fill_price),
  };
}

/**
 * The ledger's own invariants, computed in NUMERIC: account cash = Σ cash movements (the opening balance is
 * the first, a deposit), each position = Σ its signed fills, and how many fills still lack a broker fee.
 */
export async function ledgerInvariants(
  pool: Pool,
  accountId: string,
): Promise<{
  cashMinusMovements: number;
  positionBreaks: Array<{ symbol: string; positionQty: number; fillsQty: number }>;
  unknownFeeFills: number;
}> {
  const a = await pool.query<{ diff: string | null; unknown_fees: string }>(
    `SELECT (a.cash - COALESCE((SELECT sum(m.amount) FROM cash_movements m WHERE m.account_id = a.account_id), 0))::text
              AS diff,
            (SELECT count(*) FROM fills f WHERE f.account_id = a.account_id AND f.fee IS NULL)::text AS unknown_fees
       FROM accounts a WHERE a.account_id = $1`,
    [accountId],
  );
  const p = await pool.query<{ symbol: string; position_qty: string; fills_qty: string }>(
    `WITH pos AS (SELECT symbol, qty FROM positions WHERE account_id = $1),
          f AS (SELECT symbol, sum(CASE side WHEN 'buy' THEN qty ELSE -qty END) AS qty FROM fills
                 WHERE account_id = $1 GROUP BY symbol)
     SELECT COALESCE(pos.symbol, f.symbol) AS symbol, COALESCE(pos.qty, 0)::text AS position_qty,
            COALESCE(f.qty, 0)::text AS fills_qty
       FROM pos FULL JOIN f ON f.symbol = pos.symbol
      WHERE COALESCE(pos.qty, 0) <> COALESCE(f.qty, 0)`,
    [accountId],
  );
  return {
    cashMinusMovements: toNumber(a.rows[0]?.diff ?? 0),
    unknownFeeFills: toNumber(a.rows[0]?.unknown_fees ?? 0),
    positionBreaks: p.rows.map((r) => ({
      symbol: r.symbol,
      positionQty: toNumber(r.position_qty),
      fillsQty: toNumber(r.fills_qty),
    })),
  };
}
