import type { Queryable, Statement } from '../pool';

/**
 * Risk reservations: the exposure an approved trade may still add, HELD from approval until the trade is
 * final (its filled part then lives in positions; its unfilled part no longer needs reserving). Risk sees
 * every HELD reservation of the account when it evaluates, so concurrent trades cannot together exceed a limit.
 */

export interface ReservationHold {
  workflowId: string;
  accountId: string;
  symbol: string;
  side: string;
  qty: number;
  notional: number;
  assetClass: string | null;
}

/** Hold an approved trade's exposure. Idempotent on workflow id. Call under withAccountLock. */
export async function holdReservation(c: Queryable, r: ReservationHold): Promise<void> {
  await c.query(holdReservationStatement(r));
}

/** holdReservation's statement, for a batch under the account lock. */
export function holdReservationStatement(r: ReservationHold): Statement {
  return {
    text: `INSERT INTO reservations (workflow_id, account_id, symbol, side, qty, notional, status, asset_class)
     VALUES ($1, $2, $3, $4, $5, $6, 'HELD', $7) ON CONFLICT (workflow_id) DO NOTHING`,
    values: [r.workflowId, r.accountId, r.symbol, r.side, r.qty, r.notional, r.assetClass],
  };
}

/** Whether a trade ever held a reservation (released or not). */
export async function hasReservation(c: Queryable, workflowId: string): Promise<boolean> {
  const r = await c.query(hasReservationStatement(workflowId));
  return (r.rowCount ?? 0) > 0;
}

export function hasReservationStatement(workflowId: string): Statement {
  return { text: `SELECT 1 FROM reservations WHERE workflow_id = $1`, values: [workflowId] };
}

/** Release a trade's HELD reservation. Idempotent: true only for the call that released it. */
export async function releaseReservation(c: Queryable, workflowId: string): Promise<boolean> {
  const r = await c.query(releaseReservationStatement(workflowId));
  return (r.rowCount ?? 0) > 0;
}

export function releaseReservationStatement(workflowId: string): Statement {
  return {
    text: `UPDATE reservations SET status = 'RELEASED', released_at = now() WHERE workflow_id = $1 AND status = 'HELD'`,
    values: [workflowId],
  };
}
