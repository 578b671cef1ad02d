import type { Pool, PoolClient } from 'pg';
import type { BrokerOrder } from '../../../contracts/order';
import { fillsToBook, ordersOf, type LedgerFill } from '../../../domain/fills';
import { inOneRoundTrip, toNumber, withPipelinedTransaction, withTransaction, type Statement } from '../pool';
import { lockOrderStatement, raiseOrderFilledQtyStatement, syncOrderStatements, type OrderContext } from './orders';
import { advanceTradeStatusStatement, closeTradeStatements, tradeClosedBy, type TradeClosing } from './trades';

/**
 * Fills, and what each fill moves: the position, the cash and its movements, the order's filled quantity.
 * Every fill is keyed by its execution id, so a retried activity leaves exactly one trace.
 */

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
 *
 * Round trips (on a pipelined pool; the same statements one by one on any other), three whatever the number of
 * fills: the mirror, each order's lock and its booked progress in one (each progress read is a statement after
 * its lock, so it sees every booking committed before the lock was granted); the inserts of the fills to book
 * in the second (each keyed by its execution id: an insert that finds its fill already there books nothing);
 * and in the last, with COMMIT, the moves of the fills inserted (position, cash and its movements, the order's
 * filled quantity) and the trade's status or close. The position and account rows every booking of the account
 * updates are so locked only while that last batch runs, not across a round trip through this process: at
 * saturation the event loop's lag between two trips was a lock convoy on the account row (4.7 backends waiting
 * on average in bench:trades).
 */
export async function bookOrderProgress(
  pool: Pool,
  ctx: OrderContext,
  order: BrokerOrder,
  executions: LedgerFill[],
  tradeStatus: string | null,
  /**
   * The trade's end, when the order is complete and the workflow lets the booking close the trade
   * (finalize-joins-follow): the last fills and the close (outcome, reservation released) commit together.
   */
  closing?: Omit<TradeClosing, 'workflowId' | 'filledQty' | 'avgFillPrice'>,
): Promise<{ booked: LedgerFill[]; closed: boolean }> {
  return withPipelinedTransaction(pool, async (tx) => {
    const orders = ordersOf(order);
    const mirror = syncOrderStatements(ctx, order);
    const answers = await tx.batch([
      ...mirror,
      // Serialises every booker of this order (retries, zombie attempts, reconciliation).
      ...orders.flatMap((o) => [lockOrderStatement(o.clientOrderId), bookedProgressStatement(o.clientOrderId)]),
    ]);
    const toBook: LedgerFill[] = [];
    for (const [i, o] of orders.entries()) {
      const row = answers[mirror.length + 2 * i + 1]!.rows[0] as { cum: string; notional: string };
      const progress = { cumQty: toNumber(row.cum), notional: toNumber(row.notional) };
      const mine = executions.filter((e) => e.clientOrderId === o.clientOrderId);
      toBook.push(...fillsToBook(o, progress, mine));
    }
    const inserted =
      toBook.length > 0
        ? await tx.batch(toBook.map((f) => fillInsertStatement(ctx.accountId, ctx.correlationId, f)))
        : [];
    const booked = toBook.filter((_, i) => (inserted[i]!.rowCount ?? 0) > 0);
    const moves = booked.flatMap((f) => fillMoveStatements(ctx.accountId, f));
    // A running status never overwrites a final one (a late attempt of a killed worker may book after
    // the trade was finalised; its shares are booked, its status is not).
    if (closing) {
      return {
        writes: [
          ...moves,
          ...closeTradeStatements({
            ...closing,
            workflowId: ctx.workflowId,
            filledQty: order.filledQty,
            avgFillPrice: order.filledAvgPrice,
          }),
        ],
        commit: true,
        result: (answers) => ({ booked, closed: tradeClosedBy(answers.slice(moves.length)) }),
      };
    }
    return {
      writes: [
        ...moves,
        ...(tradeStatus
          ? [advanceTradeStatusStatement(ctx.workflowId, tradeStatus, order.filledQty, order.filledAvgPrice)]
          : []),
      ],
      commit: true,
      result: () => ({ booked, closed: false }),
    };
  });
}

function bookedProgressStatement(clientOrderId: string): Statement {
  return {
    text: `SELECT COALESCE(max(cum_qty), 0)::text AS cum, COALESCE(sum(qty * price), 0)::text AS notional
           FROM fills WHERE client_order_id = $1`,
    values: [clientOrderId],
  };
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
  const r = await c.query(fillInsertStatement(accountId, correlationId, f));
  if (!r.rowCount) return false;
  await inOneRoundTrip(c, fillMoveStatements(accountId, f));
  return true;
}

function fillInsertStatement(accountId: string, correlationId: string, f: LedgerFill): Statement {
  return {
    text: `INSERT INTO fills (execution_id, client_order_id, broker_order_id, account_id, symbol, side, qty, price, fee,
                        cum_qty, executed_at, correlation_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT DO NOTHING RETURNING execution_id`,
    values: [
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
  };
}

/** What an inserted fill moves, in order: the position, the cash and its movements, the order's filled quantity. */
function fillMoveStatements(accountId: string, f: LedgerFill): Statement[] {
  const signed = f.side === 'buy' ? 1 : -1;
  const out: Statement[] = [
    {
      text: `INSERT INTO positions (account_id, symbol) VALUES ($1, $2) ON CONFLICT (account_id, symbol) DO NOTHING`,
      values: [accountId, f.symbol],
    },
    // Average-cost accounting in one UPDATE (every expression reads the row as it was): adding to a position
    // moves the average; reducing it realises P&L against the average; crossing through zero closes the
    // old side and opens the new one at the fill price.
    {
      text: `WITH f AS (SELECT $3::numeric * $4::numeric AS s, $5::numeric AS p)
     UPDATE positions SET
       realized_pnl = realized_pnl + CASE WHEN qty <> 0 AND sign(qty) <> sign(f.s)
                                          THEN (f.p - avg_cost) * LEAST(abs(qty), abs(f.s)) * sign(qty) ELSE 0 END,
       avg_cost = CASE WHEN qty = 0 OR sign(qty) = sign(f.s) THEN (abs(qty) * avg_cost + abs(f.s) * f.p) / abs(qty + f.s)
                       WHEN qty + f.s = 0 THEN 0
                       WHEN sign(qty + f.s) = sign(qty) THEN avg_cost
                       ELSE f.p END,
       qty = qty + f.s, last_price = f.p, updated_at = now()
     FROM f WHERE account_id = $1 AND symbol = $2`,
      values: [accountId, f.symbol, signed, f.qty, f.price],
    },
    {
      text: `INSERT INTO cash_movements (account_id, kind, amount, execution_id)
     VALUES ($1, 'fill', -($2::numeric * $3::numeric * $4::numeric), $5)`,
      values: [accountId, signed, f.qty, f.price, f.executionId],
    },
  ];
  if (f.fee !== null && f.fee > 0) {
    out.push({
      text: `INSERT INTO cash_movements (account_id, kind, amount, execution_id) VALUES ($1, 'fee', -($2::numeric), $3)`,
      values: [accountId, f.fee, f.executionId],
    });
  }
  out.push(
    {
      text: `UPDATE accounts SET cash = cash - ($2::numeric * $3::numeric * $4::numeric) - $5::numeric, updated_at = now()
      WHERE account_id = $1`,
      values: [accountId, signed, f.qty, f.price, f.fee ?? 0],
    },
    raiseOrderFilledQtyStatement(f.clientOrderId, f.cumQty),
  );
  return out;
}
