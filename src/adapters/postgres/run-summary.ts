import type { Pool } from 'pg';
import { portfolioEquity, type BookedPosition } from '../../domain/portfolio';

/**
 * What one account's ledger says, for the end-of-run summary of `npm start` (read-only): trades and fills
 * recorded since `since` (this run), positions and cash as they stand.
 */
export interface AccountSummary {
  trades: Array<{ status: string; reasonCode: string | null; count: number }>;
  fills: number;
  positions: BookedPosition[];
  cash: number;
  /** Cash + positions marked at their last fill (domain/portfolio.ts). */
  equity: number;
  startingCash: number;
}

export async function accountSummary(pool: Pool, accountId: string, since: Date): Promise<AccountSummary> {
  const trades = await pool.query<{ status: string; reason_code: string | null; n: string }>(
    `SELECT status, reason_code, count(*) AS n FROM trades WHERE account_id = $1 AND created_at >= $2
      GROUP BY 1, 2 ORDER BY 3 DESC, 1`,
    [accountId, since],
  );
  const positions = await pool.query<{
    symbol: string;
    qty: string;
    avg_cost: string;
    realized_pnl: string;
    last_price: string | null;
  }>(`SELECT symbol, qty, avg_cost, realized_pnl, last_price FROM positions WHERE account_id = $1 ORDER BY symbol`, [
    accountId,
  ]);
  const account = await pool.query<{ cash: string; starting_cash: string }>(
    `SELECT cash, starting_cash FROM accounts WHERE account_id = $1`,
    [accountId],
  );
  const fills = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM fills WHERE account_id = $1 AND recorded_at >= $2`,
    [accountId, since],
  );
  const booked: BookedPosition[] = positions.rows.map((p) => ({
    symbol: p.symbol,
    qty: Number(p.qty),
    avgCost: Number(p.avg_cost),
    realizedPnl: Number(p.realized_pnl),
    lastPrice: p.last_price === null ? null : Number(p.last_price),
  }));
  const cash = Number(account.rows[0]?.cash ?? 0);
  return {
    trades: trades.rows.map((r) => ({ status: r.status, reasonCode: r.reason_code, count: Number(r.n) })),
    fills: Number(fills.rows[0]?.n ?? 0),
    positions: booked,
    cash,
    equity: portfolioEquity({ cash, positions: Object.fromEntries(booked.map((p) => [p.symbol, p])) }),
    startingCash: Number(account.rows[0]?.starting_cash ?? 0),
  };
}
