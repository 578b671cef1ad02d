import type { Queryable } from '../pool';

/** A fee as the broker reported it (the broker port's BrokerFee has this shape; the ledger needs no more). */
export interface ChargedFee {
  activityId: string;
  /** Trading day charged for, YYYY-MM-DD. */
  date: string;
  /** Signed cash effect in dollars: negative for a charge. */
  netAmount: number;
  description: string;
  symbol: string | null;
  /** The broker cancelled the charge: it moved no money, and one booked earlier is reversed. */
  cancelled: boolean;
}

/**
 * Fees the broker charged outside any fill (Alpaca's end-of-day REG/TAF FEE activities): booked as cash
 * movements of kind 'fee' keyed by the broker's activity id, so cash = Σ cash movements still holds to the cent and
 * the ledger's cash follows the broker's. Booking is idempotent: a fee already booked (same account and activity id)
 * is skipped, which lets every reconciliation run re-read the last few days. A fee the broker cancels after it was
 * booked comes back with the same activity id, cancelled: it is reversed by a 'fee_reversal' movement of the
 * opposite amount, once; the booked charge stays as it was. A cancelled fee that was never booked moves nothing.
 */

/** How many days before the last booked fee the next read starts: a broker may post a day's fees late. */
export const FEE_READ_OVERLAP_DAYS = 5;

/**
 * The day after which to read the broker's fees (YYYY-MM-DD): FEE_READ_OVERLAP_DAYS before the last booked fee's
 * day, or the day before the account was opened when none is booked yet. null when the account does not exist.
 */
export async function feesReadAfter(c: Queryable, accountId: string): Promise<string | null> {
  const r = await c.query<{ after: string | null }>(
    `SELECT COALESCE(
              (SELECT max(charged_on) - $2::int FROM cash_movements WHERE account_id = $1 AND charged_on IS NOT NULL),
              (SELECT (created_at AT TIME ZONE 'UTC')::date - 1 FROM accounts WHERE account_id = $1)
            )::text AS after`,
    [accountId, FEE_READ_OVERLAP_DAYS],
  );
  return r.rows[0]?.after ?? null;
}

/** What one booking changed: the fees booked now, and the booked fees reversed now (both as the broker listed them). */
export interface FeeBooking<F> {
  booked: F[];
  reversed: F[];
}

/**
 * Book the fees not booked yet and reverse the booked ones the broker has cancelled, in one statement (one
 * transaction): each as a cash movement, and the account's cash moved by their sum. Amounts go in as the broker's
 * decimal text (whole cents), never through a float sum; a reversal is the exact negation of the booked amount.
 */
export async function bookBrokerFees<F extends ChargedFee>(
  c: Queryable,
  accountId: string,
  fees: readonly F[],
): Promise<FeeBooking<F>> {
  if (fees.length === 0) return { booked: [], reversed: [] };
  const rows = fees.map((f) => ({
    activity_id: f.activityId,
    charged_on: f.date,
    amount: String(f.netAmount),
    note: [f.description, f.symbol, f.date].filter(Boolean).join(' '),
    cancelled: f.cancelled,
  }));
  // The two inserts cannot see each other's rows (one snapshot), and need not: an activity is listed once, either
  // charged or cancelled.
  const r = await c.query<{ booked: string[] | null; reversed: string[] | null }>(
    `WITH incoming AS (
       SELECT * FROM jsonb_to_recordset($2::jsonb)
         AS x(activity_id text, charged_on date, amount numeric, note text, cancelled boolean)
     ), charged AS (
       INSERT INTO cash_movements (account_id, kind, amount, note, broker_activity_id, charged_on)
       SELECT $1, 'fee', amount, note, activity_id, charged_on FROM incoming WHERE NOT cancelled
       ON CONFLICT (account_id, broker_activity_id, kind) WHERE broker_activity_id IS NOT NULL DO NOTHING
       RETURNING broker_activity_id, amount
     ), reversed AS (
       INSERT INTO cash_movements (account_id, kind, amount, note, broker_activity_id, charged_on)
       SELECT $1, 'fee_reversal', -m.amount, 'cancelled by the broker: ' || m.note, m.broker_activity_id, m.charged_on
         FROM cash_movements m JOIN incoming i ON i.activity_id = m.broker_activity_id AND i.cancelled
        WHERE m.account_id = $1 AND m.kind = 'fee'
       ON CONFLICT (account_id, broker_activity_id, kind) WHERE broker_activity_id IS NOT NULL DO NOTHING
       RETURNING broker_activity_id, amount
     )
     UPDATE accounts
        SET cash = cash + COALESCE((SELECT sum(amount) FROM charged), 0) + COALESCE((SELECT sum(amount) FROM reversed), 0),
            updated_at = now()
      WHERE account_id = $1
     RETURNING (SELECT array_agg(broker_activity_id) FROM charged) AS booked,
               (SELECT array_agg(broker_activity_id) FROM reversed) AS reversed`,
    [accountId, JSON.stringify(rows)],
  );
  if (r.rowCount === 0) throw new Error(`bookBrokerFees: no ledger account ${accountId}`);
  const booked = new Set(r.rows[0]?.booked ?? []);
  const reversed = new Set(r.rows[0]?.reversed ?? []);
  return {
    booked: fees.filter((f) => !f.cancelled && booked.has(f.activityId)),
    reversed: fees.filter((f) => f.cancelled && reversed.has(f.activityId)),
  };
}
