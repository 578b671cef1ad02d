import type { Pool } from 'pg';
import type { TradeOutcome } from '../../../domain/trade-lifecycle';
import type { QueryResult } from 'pg';
import { withTransaction, type Queryable, type Statement } from '../pool';
import { hasReservationStatement, releaseReservationStatement } from './reservations';

/**
 * The `trades` row: one per workflow, opened with the risk decision, moved while the order works, closed with
 * the trade's outcome.
 */

export type { TradeOutcome };

export interface TradeOpening {
  workflowId: string;
  signalId: string;
  correlationId: string;
  accountId: string;
  symbol: string;
  side: string;
  strategy: string;
  /** The risk decision (APPROVED / REJECTED) and its reason. */
  status: string;
  reasonCode: string | null;
}

/** Open the trade row with its risk decision. Idempotent on workflow id. */
export async function openTrade(c: Queryable, t: TradeOpening): Promise<void> {
  await c.query(openTradeStatement(t));
}

/** openTrade's statement, for a batch. */
export function openTradeStatement(t: TradeOpening): Statement {
  return {
    text: `INSERT INTO trades (workflow_id, signal_id, correlation_id, account_id, symbol, side, strategy, status, reason_code)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
    values: [
      t.workflowId,
      t.signalId,
      t.correlationId,
      t.accountId,
      t.symbol,
      t.side,
      t.strategy,
      t.status,
      t.reasonCode,
    ],
  };
}

/**
 * Move a running trade's status (SUBMITTED, WORKING, PARTIALLY_FILLED) as part of booking. A running status
 * never overwrites a final one (a late attempt of a killed worker may book after the trade was finalised; its
 * shares are booked, its status is not): a released reservation means finalizeTrade has run.
 */
export async function advanceTradeStatus(
  c: Queryable,
  workflowId: string,
  status: string,
  filledQty: number,
  avgFillPrice: number | null,
): Promise<void> {
  await c.query(advanceTradeStatusStatement(workflowId, status, filledQty, avgFillPrice));
}

export function advanceTradeStatusStatement(
  workflowId: string,
  status: string,
  filledQty: number,
  avgFillPrice: number | null,
): Statement {
  return {
    text: `UPDATE trades SET status = $2, filled_qty = $3, avg_fill_price = $4, updated_at = now()
      WHERE workflow_id = $1
        AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.workflow_id = $1 AND r.status = 'RELEASED')`,
    values: [workflowId, status, filledQty, avgFillPrice],
  };
}

/**
 * Move the trade's status while it runs, unguarded: the recordFills path of workflows started before
 * bookOrderProgress (kept so their histories replay and in-flight ones finish exactly as they did).
 */
export async function updateTradeStatus(
  pool: Queryable,
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

/** How a trade closes in the ledger. */
export interface TradeClosing {
  workflowId: string;
  outcome: TradeOutcome;
  reasonCode?: string;
  filledQty: number;
  avgFillPrice: number | null;
}

/**
 * Close the trade in the ledger: outcome, filled quantity, and release of the risk reservation (the
 * filled part now lives in positions; the unfilled part no longer needs reserving). Idempotent; true for the
 * close that ended the trade (see closeTrade).
 */
export async function finalizeTrade(pool: Pool, t: TradeClosing): Promise<boolean> {
  return withTransaction(pool, (c) => closeTrade(c, t));
}

/**
 * finalizeTrade's writes on the caller's transaction (booking closes a complete trade in the same transaction
 * as its last fills). The reservation is released at most once: only a HELD one is released. Returns whether
 * this close ended the trade — it released the reservation, or the trade never held one — so a second close
 * (a retry, or the workflow's finalizeTrade after a follow that closed the trade while a cancel raced it)
 * rewrites the outcome but is not counted as another finished trade.
 */
export async function closeTrade(c: Queryable, t: TradeClosing): Promise<boolean> {
  const answers: QueryResult[] = [];
  for (const s of closeTradeStatements(t)) answers.push(await c.query(s));
  return tradeClosedBy(answers);
}

/**
 * closeTrade's statements, for a batch: the outcome, the release of a HELD reservation, whether the trade ever
 * held one. Their answers (in order) tell whether this close ended the trade: tradeClosedBy.
 */
export function closeTradeStatements(t: TradeClosing): Statement[] {
  return [
    {
      text: `UPDATE trades SET status = $2, reason_code = COALESCE($3, reason_code), filled_qty = $4, avg_fill_price = $5, updated_at = now()
     WHERE workflow_id = $1`,
      values: [t.workflowId, t.outcome, t.reasonCode ?? null, t.filledQty, t.avgFillPrice],
    },
    releaseReservationStatement(t.workflowId),
    hasReservationStatement(t.workflowId),
  ];
}

/** From closeTradeStatements' answers: it released the reservation, or the trade never held one. */
export function tradeClosedBy(answers: readonly QueryResult[]): boolean {
  const [, released, held] = answers;
  return (released?.rowCount ?? 0) > 0 || (held?.rowCount ?? 0) === 0;
}
