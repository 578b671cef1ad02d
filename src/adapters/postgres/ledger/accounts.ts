import type { Pool, PoolClient, QueryResult } from 'pg';
import type { LedgerInvariants } from '../../../domain/reconciliation';
import {
  toNumber,
  withTransaction,
  withTransactionInTwoRoundTrips,
  type Queryable,
  type Statement,
  type TransactionEnd,
} from '../pool';

/**
 * Accounts and their cash: the opening deposit, the trading-day roll, the per-account lock and the ledger's own
 * double-entry checks.
 */

const ACCOUNT_LOCK_PREFIX = 'stockautotrader.risk-account:';

/**
 * Run `fn` in ONE transaction that first takes a transaction-scoped advisory lock keyed on the account.
 *
 * Risk's lock → evaluate → reserve runs in here, so evaluations of one account are serialised: each sees the
 * reservations of every evaluation committed before it, and N concurrent approvals can never together spend
 * more of a limit than one could. The lock is released by COMMIT/ROLLBACK (or a dropped connection), never
 * leaked. Other accounts are not blocked. The kill switch takes the same lock, so once it returns no
 * evaluation that read the old state can still commit.
 */
export async function withAccountLock<T>(pool: Pool, accountId: string, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (c) => {
    await c.query(accountLockStatement(accountId));
    return fn(c);
  });
}

function accountLockStatement(accountId: string): Statement {
  return { text: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', values: [ACCOUNT_LOCK_PREFIX + accountId] };
}

/**
 * `withAccountLock` in two round trips (on a pipelined pool; one statement at a time on any other): BEGIN, the
 * lock and then `reads` in the first, `decide`'s writes and COMMIT in the second. The same guarantee: the reads
 * are statements of their own after the lock statement, so under READ COMMITTED each takes its snapshot after
 * the lock was granted and sees every write committed under the lock before. What shrinks is the time the lock
 * is held: one trip through this process's event loop between the reads and the writes instead of one per
 * statement. `decide` is synchronous, so no other I/O can happen while the lock is held. It gets the results of
 * `reads`, and of `beforeLock` (reads that need no lock, sent ahead of it) second.
 */
export async function withAccountLockInTwoRoundTrips<T>(
  pool: Pool,
  accountId: string,
  reads: readonly Statement[],
  decide: (results: QueryResult[], beforeLock: QueryResult[]) => TransactionEnd<T>,
  /** Reads that need no lock, sent first in the same round trip (their answers are decide's second argument). */
  beforeLock: readonly Statement[] = [],
): Promise<T> {
  return withTransactionInTwoRoundTrips(pool, [...beforeLock, accountLockStatement(accountId), ...reads], (results) =>
    decide(results.slice(beforeLock.length + 1), results.slice(0, beforeLock.length)),
  );
}

/** The UTC calendar date of `now`: the trading day boundary of the circuit breaker. */
export function tradingDay(now: Date): string {
  return now.toISOString().slice(0, 10);
}

/**
 * Create the account with its opening deposit, once. Safe to race: the deposit is written only by the call
 * whose INSERT created the account, so account cash = Σ cash movements from the first row on.
 * Returns true when this call created it.
 */
export async function openAccount(c: PoolClient, accountId: string, startingCash: number): Promise<boolean> {
  const created = await c.query(
    `INSERT INTO accounts (account_id, starting_cash, cash, day_start_equity)
     VALUES ($1, $2, $2, $2) ON CONFLICT (account_id) DO NOTHING RETURNING account_id`,
    [accountId, startingCash],
  );
  if (!created.rowCount) return false;
  await c.query(
    `INSERT INTO cash_movements (account_id, kind, amount, note) VALUES ($1, 'deposit', $2, 'opening balance')`,
    [accountId, startingCash],
  );
  return true;
}

/** Whether the account exists. */
export async function accountExists(c: Queryable, accountId: string): Promise<boolean> {
  const r = await c.query(`SELECT 1 FROM accounts WHERE account_id = $1`, [accountId]);
  return (r.rowCount ?? 0) > 0;
}

/**
 * New trading day: day-start equity := current equity (positions at their last price), so the circuit
 * breaker measures today's drawdown, not a stale one. No-op when already rolled today.
 */
export async function rollDayStart(c: Queryable, accountId: string, now: Date): Promise<boolean> {
  const r = await c.query(rollDayStartStatement(accountId, now));
  return (r.rowCount ?? 0) > 0;
}

/** rollDayStart's statement, for a batch. */
export function rollDayStartStatement(accountId: string, now: Date): Statement {
  return {
    text: `UPDATE accounts a
        SET day_start_equity = a.cash + COALESCE(
              (SELECT SUM(p.qty * COALESCE(p.last_price, p.avg_cost)) FROM positions p WHERE p.account_id = a.account_id), 0),
            day_start_date = $2::date,
            updated_at = now()
      WHERE a.account_id = $1 AND a.day_start_date < $2::date`,
    values: [accountId, tradingDay(now)],
  };
}

/**
 * The ledger's own invariants, computed in NUMERIC: account cash = Σ cash movements (the opening balance is
 * the first, a deposit), each position = Σ its signed fills, and how many fills still lack a broker fee.
 */
export async function ledgerInvariants(pool: Queryable, accountId: string): Promise<LedgerInvariants> {
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
