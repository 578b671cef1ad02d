import type { Pool } from 'pg';

/**
 * Read-only counts the trade benchmark (`npm run bench:trades`) takes from its own scratch database: progress
 * while a phase runs, backend activity, and the ledger half of the zero-loss check. Every benchmark signal id
 * starts with a run-and-phase prefix, and so does its trade workflow id; the queries select by those prefixes.
 */

/** Trades of the signals under `signalPrefix`: risk evaluated, rejected, entry order at the venue, settled. */
export interface TradeProgress {
  evaluated: number;
  rejected: number;
  submitted: number;
  settled: number;
}

export async function tradeProgress(pool: Pool, signalPrefix: string, workflowPrefix: string): Promise<TradeProgress> {
  const r = await pool.query<Record<keyof TradeProgress, string>>(
    `SELECT (SELECT count(*) FROM trades WHERE signal_id LIKE $1) AS evaluated,
            (SELECT count(*) FROM trades WHERE signal_id LIKE $1 AND status = 'REJECTED') AS rejected,
            (SELECT count(*) FROM orders WHERE workflow_id LIKE $2 AND parent_client_order_id IS NULL
                                           AND broker_order_id IS NOT NULL) AS submitted,
            (SELECT count(*) FROM reservations WHERE workflow_id LIKE $2 AND status = 'RELEASED') AS settled`,
    [`${signalPrefix}%`, `${workflowPrefix}%`],
  );
  const row = r.rows[0]!;
  return {
    evaluated: Number(row.evaluated),
    rejected: Number(row.rejected),
    submitted: Number(row.submitted),
    settled: Number(row.settled),
  };
}

/** Backends on `database` (leaving out `exceptApplication`, the benchmark's own): busy ones, and ones waiting for a lock. */
export async function backendActivity(
  pool: Pool,
  database: string,
  exceptApplication: string,
): Promise<{ active: number; lockWaits: number }> {
  const r = await pool.query<{ active: string; lock_waits: string }>(
    `SELECT count(*) FILTER (WHERE state = 'active') AS active,
            count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waits
       FROM pg_stat_activity WHERE datname = $1 AND application_name <> $2`,
    [database, exceptApplication],
  );
  const row = r.rows[0]!;
  return { active: Number(row.active), lockWaits: Number(row.lock_waits) };
}

/** The ledger's side of "nothing lost, nothing doubled" for the signals under `signalPrefix`. */
export interface LedgerLossCounts {
  trades: number;
  tradesDistinctSignals: number;
  filled: number;
  /** Trades not FILLED, by status. */
  notFilled: Record<string, number>;
  entryOrders: number;
  entryOrdersWithBrokerId: number;
  /** Trades with no entry order, or more than one. */
  tradesWithOrderCountNot1: number;
  /** The account's position in `symbol` (all accounts of the database). */
  positionQty: number;
}

export async function ledgerLossCounts(
  pool: Pool,
  signalPrefix: string,
  workflowPrefix: string,
  symbol: string,
): Promise<LedgerLossCounts> {
  const t = await pool.query<{ n: string; distinct_signals: string; filled: string }>(
    `SELECT count(*) AS n, count(DISTINCT signal_id) AS distinct_signals, count(*) FILTER (WHERE status = 'FILLED') AS filled
       FROM trades WHERE signal_id LIKE $1`,
    [`${signalPrefix}%`],
  );
  const notFilled = await pool.query<{ status: string; n: string }>(
    `SELECT status, count(*) AS n FROM trades WHERE signal_id LIKE $1 AND status <> 'FILLED' GROUP BY status`,
    [`${signalPrefix}%`],
  );
  const o = await pool.query<{ n: string; with_broker: string }>(
    `SELECT count(*) AS n, count(broker_order_id) AS with_broker FROM orders
      WHERE workflow_id LIKE $1 AND parent_client_order_id IS NULL`,
    [`${workflowPrefix}%`],
  );
  const per = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM trades t
      WHERE t.signal_id LIKE $1
        AND (SELECT count(*) FROM orders o WHERE o.workflow_id = t.workflow_id AND o.parent_client_order_id IS NULL) <> 1`,
    [`${signalPrefix}%`],
  );
  const pos = await pool.query<{ q: string }>(`SELECT coalesce(sum(qty), 0) AS q FROM positions WHERE symbol = $1`, [
    symbol,
  ]);
  const row = t.rows[0]!;
  const orow = o.rows[0]!;
  return {
    trades: Number(row.n),
    tradesDistinctSignals: Number(row.distinct_signals),
    filled: Number(row.filled),
    notFilled: Object.fromEntries(notFilled.rows.map((x) => [x.status, Number(x.n)])),
    entryOrders: Number(orow.n),
    entryOrdersWithBrokerId: Number(orow.with_broker),
    tradesWithOrderCountNot1: Number(per.rows[0]!.n),
    positionQty: Number(pos.rows[0]!.q),
  };
}

/** The buffers (8 kB pages, cached or read) a statement touches, from EXPLAIN (ANALYZE, BUFFERS): a count that does not depend on the machine. */
export async function buffersTouched(pool: Pool, text: string, values: unknown[]): Promise<number> {
  const r = await pool.query<{ 'QUERY PLAN': Array<{ Plan: Record<string, number> }> }>(
    `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`,
    values,
  );
  const plan = r.rows[0]!['QUERY PLAN'][0]!.Plan;
  return (plan['Shared Hit Blocks'] ?? 0) + (plan['Shared Read Blocks'] ?? 0);
}
