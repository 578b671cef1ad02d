import type { Pool, PoolClient } from 'pg';
import type { BrokerOrder, OrderRequest } from '../../../contracts/order';
import type { OrderAdoptionUpdate } from '../../../domain/reconciliation';
import type { Queryable, Statement } from '../pool';

/**
 * The `orders` rows: the ledger's mirror of every order sent (or about to be sent) to the broker, keyed by the
 * deterministic client order id, so a retried activity leaves exactly one row.
 */

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
 * visible to reconciliation. Idempotent on client order id. Returns the trade's age in seconds at this moment
 * (null when the ledger has no trade row for the workflow).
 */
export async function recordOrderIntent(pool: Pool, o: OrderRecord): Promise<number | null> {
  const r = o.request;
  // The trade's age rides along in the same round trip (by the database's clock, one clock for every worker
  // host): it starts sat_signal_to_order_seconds, which used to cost a query of its own after the submit.
  const res = await pool.query<{ age: string | null }>(
    `WITH intent AS (
       INSERT INTO orders (client_order_id, workflow_id, parent_client_order_id, account_id, broker, symbol, side, qty,
                           order_type, time_in_force, spec, status, correlation_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending_submit', $12)
       ON CONFLICT (client_order_id) DO NOTHING)
     SELECT extract(epoch FROM clock_timestamp() - created_at) AS age FROM trades WHERE workflow_id = $2`,
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
  const age = res.rows[0]?.age;
  return age === null || age === undefined ? null : Number(age);
}

/** Mirror the broker's view of an order (and its bracket legs) into the ledger. */
export async function syncOrder(pool: Queryable, o: OrderContext | null, order: BrokerOrder): Promise<void> {
  for (const s of syncOrderStatements(o, order)) await pool.query(s);
}

/** syncOrder's statements (the order, then each leg), for a batch. */
export function syncOrderStatements(o: OrderContext | null, order: BrokerOrder): Statement[] {
  const out: Statement[] = [];
  out.push({
    text: `UPDATE orders SET broker_order_id = $2, status = $3,
            filled_qty = GREATEST(filled_qty, $4), avg_fill_price = COALESCE($5, avg_fill_price), updated_at = now()
     WHERE client_order_id = $1`,
    values: [order.clientOrderId, order.brokerOrderId, order.status, order.filledQty, order.filledAvgPrice],
  });
  if (o) {
    for (const leg of order.legs ?? []) {
      out.push({
        text: `INSERT INTO orders (client_order_id, workflow_id, parent_client_order_id, account_id, broker, broker_order_id,
                             symbol, side, qty, order_type, time_in_force, spec, status, correlation_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (client_order_id) DO UPDATE SET status = EXCLUDED.status, broker_order_id = EXCLUDED.broker_order_id,
           filled_qty = GREATEST(orders.filled_qty, $15), avg_fill_price = COALESCE($16, orders.avg_fill_price), updated_at = now()`,
        values: [
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
      });
    }
  }
  return out;
}

/** The broker refused the order outright: mirror that on the order row. */
export async function markOrderRejected(pool: Queryable, clientOrderId: string): Promise<void> {
  await pool.query(`UPDATE orders SET status = 'rejected', updated_at = now() WHERE client_order_id = $1`, [
    clientOrderId,
  ]);
}

/** Serialise every booker of this order (retries, zombie attempts, reconciliation) until the transaction ends. */
export async function lockOrder(c: PoolClient, clientOrderId: string): Promise<void> {
  await c.query(lockOrderStatement(clientOrderId));
}

/** lockOrder's statement, for a batch: the statements after it in the batch run once the lock is granted. */
export function lockOrderStatement(clientOrderId: string): Statement {
  return { text: `SELECT 1 FROM orders WHERE client_order_id = $1 FOR UPDATE`, values: [clientOrderId] };
}

/** A fill was booked: the order row's cumulative filled quantity never goes backwards. */
export async function raiseOrderFilledQty(c: PoolClient, clientOrderId: string, cumQty: number): Promise<void> {
  await c.query(raiseOrderFilledQtyStatement(clientOrderId, cumQty));
}

export function raiseOrderFilledQtyStatement(clientOrderId: string, cumQty: number): Statement {
  return {
    text: `UPDATE orders SET filled_qty = GREATEST(filled_qty, $2), updated_at = now() WHERE client_order_id = $1`,
    values: [clientOrderId, cumQty],
  };
}

/**
 * Reconciliation's adoption: the order row catches up with the broker, guarded by the row still having the
 * status and filled qty the diff saw. True when applied; false when the row changed since (its trade workflow
 * is more current, so the adoption is skipped, never forced).
 */
export async function adoptBrokerOrderState(c: Queryable, accountId: string, u: OrderAdoptionUpdate): Promise<boolean> {
  const r = await c.query(
    `UPDATE orders
        SET status = $3, filled_qty = $4, avg_fill_price = COALESCE($5, avg_fill_price),
            broker_order_id = COALESCE($6, broker_order_id), updated_at = now()
      WHERE client_order_id = $1 AND account_id = $2 AND status = $7 AND filled_qty = $8`,
    [
      u.clientOrderId,
      accountId,
      u.status,
      u.filledQty,
      u.avgFillPrice,
      u.brokerOrderId,
      u.expect.status,
      u.expect.filledQty,
    ],
  );
  return (r.rowCount ?? 0) === 1;
}
