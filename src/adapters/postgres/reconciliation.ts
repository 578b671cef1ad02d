import type { Pool } from 'pg';
import type { Side } from '../../contracts/order';
import {
  LEDGER_OPEN_STATUSES,
  type LedgerOrder,
  type LedgerState,
  type ReconcileAdoption,
  type ReconcileFinding,
} from '../../domain/reconciliation';
import { adoptBrokerOrderState } from './ledger';
import { toNumber, withTransaction, type Queryable } from './pool';

/**
 * Reconciliation's reads of the ledger and its own table, reconciliation_issues (the audit of every finding).
 * The one ledger write it makes, an order row catching up with the broker, goes through the ledger module
 * (adoptBrokerOrderState), guarded by the row still being what the diff saw.
 */

const RECONCILIATION_LOCK_PREFIX = 'stockautotrader.reconcile:';
/** Trade statuses that are final without doubt (FILLED / PARTIALLY_FILLED also occur mid-run). */
const FINAL_TRADE_STATUSES = new Set(['CANCELLED', 'EXPIRED', 'REJECTED', 'BROKER_REJECTED', 'FAILED']);

interface OrderRow {
  client_order_id: string;
  workflow_id: string;
  parent_client_order_id: string | null;
  broker_order_id: string | null;
  symbol: string;
  side: Side;
  qty: string;
  status: string;
  filled_qty: string;
  created_at: Date | string;
  booked_qty: string;
  reservation_status: string | null;
  trade_status: string | null;
}

const ORDER_COLUMNS = `
  o.client_order_id, o.workflow_id, o.parent_client_order_id, o.broker_order_id, o.symbol, o.side, o.qty::text AS qty,
  o.status, o.filled_qty::text AS filled_qty, o.created_at,
  COALESCE((SELECT SUM(f.qty) FROM fills f WHERE f.client_order_id = o.client_order_id), 0)::text AS booked_qty,
  (SELECT r.status FROM reservations r WHERE r.workflow_id = o.workflow_id) AS reservation_status,
  (SELECT t.status FROM trades t WHERE t.workflow_id = o.workflow_id) AS trade_status`;

function toLedgerOrder(r: OrderRow): LedgerOrder {
  // A released reservation is written only by finalizeTrade (or a failed trade's release): the trade is over.
  let tradeFinished: boolean | null = null;
  if (r.reservation_status) tradeFinished = r.reservation_status === 'RELEASED';
  else if (r.trade_status) tradeFinished = FINAL_TRADE_STATUSES.has(r.trade_status);
  return {
    clientOrderId: r.client_order_id,
    workflowId: r.workflow_id,
    parentClientOrderId: r.parent_client_order_id,
    brokerOrderId: r.broker_order_id,
    symbol: r.symbol,
    side: r.side,
    qty: toNumber(r.qty),
    status: r.status,
    filledQty: toNumber(r.filled_qty),
    bookedQty: toNumber(r.booked_qty),
    createdAt: r.created_at instanceof Date ? r.created_at.toISOString() : new Date(r.created_at).toISOString(),
    tradeFinished,
  };
}

/**
 * The ledger side, read in one REPEATABLE READ snapshot so orders, fills, positions and cash agree with each
 * other even while trade workflows keep booking.
 */
export async function loadLedgerState(pool: Pool, accountId: string): Promise<LedgerState> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const orders = await c.query<OrderRow>(
      `SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.account_id = $1 AND o.status = ANY($2::text[])
       ORDER BY o.created_at, o.client_order_id`,
      [accountId, LEDGER_OPEN_STATUSES],
    );
    const positions = await c.query<{ symbol: string; qty: string }>(
      `SELECT symbol, qty::text AS qty FROM positions WHERE account_id = $1 AND qty <> 0 ORDER BY symbol`,
      [accountId],
    );
    const account = await c.query<{ cash: string; equity: string }>(
      `SELECT a.cash::text AS cash,
              (a.cash + COALESCE((SELECT SUM(p.qty * COALESCE(p.last_price, p.avg_cost)) FROM positions p
                                   WHERE p.account_id = a.account_id), 0))::text AS equity
         FROM accounts a WHERE a.account_id = $1`,
      [accountId],
    );
    await c.query('COMMIT');
    const acct = account.rows[0];
    return {
      openOrders: orders.rows.map(toLedgerOrder),
      positions: positions.rows.map((p) => ({ symbol: p.symbol, qty: toNumber(p.qty) })),
      ...(acct ? { cash: toNumber(acct.cash), equity: toNumber(acct.equity) } : {}),
    };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** Ledger rows (any status) for these client order ids. */
export async function loadKnownOrders(pool: Queryable, accountId: string, ids: string[]): Promise<LedgerOrder[]> {
  if (ids.length === 0) return [];
  const r = await pool.query<OrderRow>(
    `SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.account_id = $1 AND o.client_order_id = ANY($2::text[])`,
    [accountId, ids],
  );
  return r.rows.map(toLedgerOrder);
}

async function recordIssue(c: Queryable, runId: string, f: ReconcileFinding): Promise<void> {
  await c.query(
    `INSERT INTO reconciliation_issues (run_id, kind, symbol, client_order_id, detail, action) VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      runId,
      f.kind,
      f.symbol,
      f.clientOrderId,
      JSON.stringify({ ...f.detail, severity: f.severity, message: f.message }),
      f.action,
    ],
  );
}

/**
 * Apply a run's adoptions and record every finding, in one transaction (an adoption never happens without its
 * audit row), serialised with other runs of the account on an advisory lock. An adoption whose row changed
 * since the diff read it is skipped: its trade workflow is more current.
 */
export async function applyReconciliation(
  pool: Pool,
  accountId: string,
  runId: string,
  findings: { adoptions: ReconcileAdoption[]; flags: ReconcileFinding[] },
): Promise<{ applied: ReconcileAdoption[]; skipped: ReconcileAdoption[] }> {
  return withTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [RECONCILIATION_LOCK_PREFIX + accountId]);
    const applied: ReconcileAdoption[] = [];
    const skipped: ReconcileAdoption[] = [];
    for (const a of findings.adoptions) {
      if (await adoptBrokerOrderState(c, accountId, a.update)) {
        applied.push(a);
        await recordIssue(c, runId, a);
      } else {
        skipped.push(a);
      }
    }
    for (const f of findings.flags) await recordIssue(c, runId, f);
    return { applied, skipped };
  });
}
