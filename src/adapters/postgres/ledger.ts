import type { Pool, PoolClient } from 'pg';
import type { BrokerOrder, Fill, OrderRequest } from '../../contracts/order';
import { toNumber, withTransaction } from './pool';

export { withTransaction };

/**
 * Order, fill, position and cash writes. Every write is keyed by a deterministic id (client order id,
 * execution id, workflow id), so an activity that is retried after a crash leaves exactly one trace.
 */

/** A fill plus the order's cumulative filled quantity after it (the ledger's second uniqueness key). */
export interface LedgerFill extends Fill {
  cumQty: number;
}

export interface OrderRecord {
  workflowId: string;
  accountId: string;
  correlationId: string;
  broker: string;
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
export async function syncOrder(pool: Pool | PoolClient, o: OrderRecord | null, order: BrokerOrder): Promise<void> {
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
 * Book fills: one transaction per fill inserts the fill, then moves the position and cash — but only
 * when the insert actually happened. A fill seen twice (duplicate stream event, activity retry, stream
 * and polling both reporting it) hits a unique key and changes nothing. Returns how many were new.
 */
export async function recordFills(
  pool: Pool,
  accountId: string,
  correlationId: string,
  fills: LedgerFill[],
): Promise<{ inserted: number; duplicates: number }> {
  let inserted = 0;
  for (const f of fills) {
    const isNew = await withTransaction(pool, async (c) => {
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
      await applyFillToPosition(c, accountId, f);
      const gross = f.qty * f.price;
      const cashDelta = f.side === 'buy' ? -gross : gross;
      await c.query(`INSERT INTO cash_movements (account_id, kind, amount, execution_id) VALUES ($1, 'fill', $2, $3)`, [
        accountId,
        cashDelta,
        f.executionId,
      ]);
      if (f.fee > 0) {
        await c.query(
          `INSERT INTO cash_movements (account_id, kind, amount, execution_id) VALUES ($1, 'fee', $2, $3)`,
          [accountId, -f.fee, f.executionId],
        );
      }
      await c.query(`UPDATE accounts SET cash = cash + $2, updated_at = now() WHERE account_id = $1`, [
        accountId,
        cashDelta - f.fee,
      ]);
      await c.query(
        `UPDATE orders SET filled_qty = GREATEST(filled_qty, $2), updated_at = now() WHERE client_order_id = $1`,
        [f.clientOrderId, f.cumQty],
      );
      return true;
    });
    if (isNew) inserted++;
  }
  return { inserted, duplicates: fills.length - inserted };
}

/**
 * Average-cost accounting. Adding to a position moves the average; reducing it realises P&L against
 * the average; crossing through zero closes the old side and opens the new one at the fill price.
 */
async function applyFillToPosition(c: PoolClient, accountId: string, f: LedgerFill): Promise<void> {
  const cur = await c.query(
    `INSERT INTO positions (account_id, symbol) VALUES ($1, $2)
     ON CONFLICT (account_id, symbol) DO UPDATE SET symbol = EXCLUDED.symbol
     RETURNING qty, avg_cost, realized_pnl`,
    [accountId, f.symbol],
  );
  const row = cur.rows[0] as { qty: string; avg_cost: string; realized_pnl: string };
  const next = nextPosition(
    { qty: toNumber(row.qty), avgCost: toNumber(row.avg_cost), realizedPnl: toNumber(row.realized_pnl) },
    f.side === 'buy' ? f.qty : -f.qty,
    f.price,
  );
  await c.query(
    `UPDATE positions SET qty = $3, avg_cost = $4, realized_pnl = $5, last_price = $6, updated_at = now()
     WHERE account_id = $1 AND symbol = $2`,
    [accountId, f.symbol, next.qty, next.avgCost, next.realizedPnl, f.price],
  );
}

export interface PositionState {
  qty: number;
  avgCost: number;
  realizedPnl: number;
}

/** Pure average-cost position update for a signed fill quantity. */
export function nextPosition(pos: PositionState, signedQty: number, price: number): PositionState {
  const { qty, avgCost, realizedPnl } = pos;
  if (qty === 0 || Math.sign(qty) === Math.sign(signedQty)) {
    const newQty = qty + signedQty;
    return {
      qty: newQty,
      avgCost: (Math.abs(qty) * avgCost + Math.abs(signedQty) * price) / Math.abs(newQty),
      realizedPnl,
    };
  }
  const closing = Math.min(Math.abs(qty), Math.abs(signedQty));
  const pnl = (price - avgCost) * closing * Math.sign(qty);
  const newQty = qty + signedQty;
  if (newQty === 0) return { qty: 0, avgCost: 0, realizedPnl: realizedPnl + pnl };
  if (Math.sign(newQty) === Math.sign(qty)) return { qty: newQty, avgCost, realizedPnl: realizedPnl + pnl };
  return { qty: newQty, avgCost: price, realizedPnl: realizedPnl + pnl };
}

export type TradeOutcome =
  'FILLED' | 'PARTIALLY_FILLED' | 'CANCELLED' | 'EXPIRED' | 'REJECTED' | 'BROKER_REJECTED' | 'FAILED';

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
