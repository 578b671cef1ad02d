import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { BrokerRateLimitedError, type Broker } from '../adapters/brokers/broker';
import { ledgerInvariants, withTransaction } from '../adapters/postgres/ledger';
import { toNumber } from '../adapters/postgres/pool';
import type { BrokerOrder, Side } from '../contracts/order';
import {
  LEDGER_OPEN_STATUSES,
  reconcile,
  type BrokerState,
  type DeferredOrder,
  type FindingKind,
  type LedgerOrder,
  type LedgerState,
  type ReconcileAdoption,
  type ReconcileFinding,
  type ReconcileFlag,
  type ReconcileOptions,
  invariantFlags,
} from '../domain/reconcile';
import type { Logger } from '../logging';
import { rateLimitWaitSeconds, rateLimitWaits, reconciliationFlags } from '../metrics';

/**
 * Reconciliation I/O: read the ledger, read the broker, diff (src/domain/reconcile.ts), apply the safe
 * adoptions and record every finding in reconciliation_issues under one run id.
 *
 * Money safety:
 * - Only `orders` bookkeeping is ever written (status, cumulative filled qty, broker order id). Fills,
 *   positions and cash are never written here, and nothing is ever sent to the broker: no cancel, no order.
 * - Each adoption is an UPDATE guarded by the row's status and filled qty as the diff saw them. If the trade
 *   workflow moved the row in the meantime the adoption is skipped (the workflow is more current), never
 *   forced. That also makes a second run adopt nothing: an adopted row no longer differs from the broker.
 * - Adoptions and their audit rows commit in one transaction: an adoption never happens without its record.
 * - If the broker's open orders, positions or account cannot be read the run fails before writing
 *   anything: a diff against a partial broker picture would flag (or adopt) the wrong things.
 */

export interface ReconcileDeps {
  pool: Pool;
  broker: Broker;
  accountId: string;
  logger: Logger;
}

export interface ReconcileRunOptions extends Partial<Omit<ReconcileOptions, 'now'>> {
  /** Clock (tests). */
  now?: () => Date;
  /** Diff and report only: no adoption, no reconciliation_issues rows. */
  dryRun?: boolean;
  runId?: string;
  /** Called between broker lookups (the activity heartbeats here). */
  onProgress?: (what: string) => void;
  /** Attempts per order lookup when the broker rate-limits (each waits for the reset). Default 3. */
  lookupAttempts?: number;
}

export interface ReconciliationReport {
  runId: string;
  accountId: string;
  broker: string;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  /** Applied adoptions (in a dry run: the adoptions a real run would apply). */
  adopted: ReconcileAdoption[];
  flagged: ReconcileFlag[];
  /** Adoptions not applied because the ledger row changed while the run was reading the broker. */
  skipped: ReconcileAdoption[];
  /** pending_submit orders inside the grace period (a submit may be in flight): untouched. */
  deferred: DeferredOrder[];
  checked: {
    ledgerOpenOrders: number;
    ledgerPositions: number;
    brokerOpenOrders: number;
    brokerPositions: number;
    brokerLookups: number;
    lookupFailures: number;
  };
  /** One line: counts and flagged kinds. */
  summary: string;
}

const ACCOUNT_LOCK_PREFIX = 'stockautotrader.reconcile:';
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
async function loadKnownOrders(pool: Pool, accountId: string, ids: string[]): Promise<LedgerOrder[]> {
  if (ids.length === 0) return [];
  const r = await pool.query<OrderRow>(
    `SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.account_id = $1 AND o.client_order_id = ANY($2::text[])`,
    [accountId, ids],
  );
  return r.rows.map(toLedgerOrder);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The broker side. Open orders, positions and account must all be readable (else throw: no partial diff).
 * Each ledger-open order the open list does not contain is looked up by client order id — one GET each,
 * sequentially (Alpaca allows 200 requests/minute); bracket legs come with their entry, so they are not
 * looked up separately. A lookup that fails leaves its key absent: the diff flags that order as unverified.
 */
export async function loadBrokerState(
  broker: Broker,
  ledgerOpen: LedgerOrder[],
  opts: { onProgress?: (what: string) => void; lookupAttempts?: number; logger?: Logger } = {},
): Promise<{ state: BrokerState; lookups: number; lookupFailures: number }> {
  const [openOrders, positions, account] = await Promise.all([
    broker.listOpenOrders(),
    broker.getPositions(),
    broker.getAccount(),
  ]);
  const seen = new Set<string>();
  const index = (o: BrokerOrder) => {
    seen.add(o.clientOrderId);
    for (const leg of o.legs ?? []) seen.add(leg.clientOrderId);
  };
  openOrders.forEach(index);

  const lookups: Record<string, BrokerOrder | null> = {};
  let made = 0;
  let failures = 0;
  // Entries before legs, so a leg is usually answered by its entry's lookup.
  const todo = [...ledgerOpen].sort(
    (a, b) => Number(a.parentClientOrderId !== null) - Number(b.parentClientOrderId !== null),
  );
  const attempts = Math.max(1, opts.lookupAttempts ?? 3);
  for (const l of todo) {
    if (seen.has(l.clientOrderId)) continue;
    opts.onProgress?.(`lookup ${l.clientOrderId}`);
    for (let attempt = 1; ; attempt++) {
      try {
        made++;
        const o = await broker.getOrderByClientOrderId(l.clientOrderId);
        lookups[l.clientOrderId] = o;
        if (o) index(o);
        else seen.add(l.clientOrderId);
        break;
      } catch (err) {
        if (err instanceof BrokerRateLimitedError && attempt < attempts) {
          const waitMs = Math.min(60_000, Math.max(1_000, err.retryAfterMs));
          rateLimitWaits.inc({ where: 'reconciliation' });
          rateLimitWaitSeconds.inc({ where: 'reconciliation' }, waitMs / 1000);
          await sleep(waitMs);
          continue;
        }
        failures++;
        opts.logger?.warn({ err, client_order_id: l.clientOrderId }, 'reconciliation: broker lookup failed');
        break;
      }
    }
  }
  return {
    state: {
      openOrders,
      lookups,
      positions: positions.map((p) => ({
        symbol: p.symbol,
        qty: p.qty,
        avgEntryPrice: p.avgEntryPrice,
        marketValue: p.marketValue,
      })),
      account: { cash: account.cash, equity: account.equity },
    },
    lookups: made,
    lookupFailures: failures,
  };
}

/** Guarded order-row update. True when applied; false when the row changed since the diff read it. */
async function applyAdoption(c: PoolClient, accountId: string, a: ReconcileAdoption): Promise<boolean> {
  const u = a.update;
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

async function recordIssue(c: PoolClient, runId: string, f: ReconcileFinding): Promise<void> {
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

export function newRunId(now: Date = new Date()): string {
  return `rec-${now.toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomUUID().slice(0, 8)}`;
}

function countKinds(findings: ReconcileFinding[]): Partial<Record<FindingKind, number>> {
  const out: Partial<Record<FindingKind, number>> = {};
  for (const f of findings) out[f.kind] = (out[f.kind] ?? 0) + 1;
  return out;
}

export function summaryLine(
  r: Pick<ReconciliationReport, 'runId' | 'adopted' | 'flagged' | 'skipped' | 'deferred' | 'dryRun'>,
): string {
  const kinds = Object.entries(countKinds(r.flagged))
    .map(([k, n]) => `${k}×${n}`)
    .join(', ');
  const parts = [
    `${r.adopted.length} ${r.dryRun ? 'would be adopted' : 'adopted'}`,
    `${r.flagged.length} FLAGGED${kinds ? ` (${kinds})` : ''}`,
  ];
  if (r.skipped.length) parts.push(`${r.skipped.length} skipped (ledger changed meanwhile)`);
  if (r.deferred.length) parts.push(`${r.deferred.length} deferred (submit may be in flight)`);
  const verdict = r.flagged.length ? ' — NEEDS A HUMAN' : ' — ledger agrees with the broker';
  return `reconciliation ${r.runId}${r.dryRun ? ' (dry run)' : ''}: ${parts.join(', ')}${verdict}`;
}

/**
 * One reconciliation run for an account: diff the ledger against the broker, apply the safe adoptions, record
 * every finding, log flags at error level, and return the report. Safe to run concurrently with trading and
 * with itself (runs of one account serialise their writes on an advisory lock; adoptions are guarded).
 */
export async function reconcileWithBroker(
  deps: ReconcileDeps,
  opts: ReconcileRunOptions = {},
): Promise<ReconciliationReport> {
  const { pool, broker, accountId } = deps;
  const now = opts.now ?? (() => new Date());
  const started = now();
  const runId = opts.runId ?? newRunId(started);
  const dryRun = opts.dryRun ?? false;
  const log = deps.logger.child({ component: 'reconciliation', run_id: runId, account_id: accountId });

  // Ledger first, broker second: anything that happens in between (a fill) then shows as the broker being
  // ahead — a warning the next run clears — never as the ledger being ahead, which would be a false alarm
  // of the critical kind.
  const ledger = await loadLedgerState(pool, accountId);
  const brokerRead = await loadBrokerState(broker, ledger.openOrders, {
    logger: log,
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.lookupAttempts !== undefined ? { lookupAttempts: opts.lookupAttempts } : {}),
  });
  const ledgerOpenIds = new Set(ledger.openOrders.map((o) => o.clientOrderId));
  const brokerIds = brokerRead.state.openOrders.flatMap((o) => [o, ...(o.legs ?? [])].map((x) => x.clientOrderId));
  ledger.knownOrders = await loadKnownOrders(
    pool,
    accountId,
    brokerIds.filter((id) => !ledgerOpenIds.has(id)),
  );

  const diff = reconcile(ledger, brokerRead.state, {
    now: now(),
    ...(opts.pendingSubmitGraceMs !== undefined ? { pendingSubmitGraceMs: opts.pendingSubmitGraceMs } : {}),
    ...(opts.cashTolerance ? { cashTolerance: opts.cashTolerance } : {}),
  });
  // The ledger must also agree with itself, to the cent.
  diff.flags.push(...invariantFlags(await ledgerInvariants(pool, accountId)));

  let adopted = diff.adoptions;
  const skipped: ReconcileAdoption[] = [];
  if (!dryRun && (diff.adoptions.length > 0 || diff.flags.length > 0)) {
    adopted = await withTransaction(pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [ACCOUNT_LOCK_PREFIX + accountId]);
      const applied: ReconcileAdoption[] = [];
      for (const a of diff.adoptions) {
        if (await applyAdoption(c, accountId, a)) {
          applied.push(a);
          await recordIssue(c, runId, a);
        } else {
          skipped.push(a);
        }
      }
      for (const f of diff.flags) await recordIssue(c, runId, f);
      return applied;
    });
  }

  const report: ReconciliationReport = {
    runId,
    accountId,
    broker: broker.name,
    dryRun,
    startedAt: started.toISOString(),
    finishedAt: now().toISOString(),
    adopted,
    flagged: diff.flags,
    skipped,
    deferred: diff.deferred,
    checked: {
      ledgerOpenOrders: ledger.openOrders.length,
      ledgerPositions: ledger.positions.length,
      brokerOpenOrders: brokerRead.state.openOrders.length,
      brokerPositions: brokerRead.state.positions.length,
      brokerLookups: brokerRead.lookups,
      lookupFailures: brokerRead.lookupFailures,
    },
    summary: '',
  };
  report.summary = summaryLine(report);

  for (const a of adopted) {
    log.info(
      { kind: a.kind, symbol: a.symbol, client_order_id: a.clientOrderId, detail: a.detail },
      `reconciliation adopted: ${a.message}`,
    );
  }
  for (const s of skipped) {
    log.info(
      { kind: s.kind, client_order_id: s.clientOrderId },
      'reconciliation: ledger row changed during the run; left to its workflow',
    );
  }
  // Loud on purpose: every FLAGGED finding needs a human, and error level is what alerting watches.
  for (const f of diff.flags) {
    reconciliationFlags.inc({ kind: f.kind });
    log.error(
      { kind: f.kind, severity: f.severity, symbol: f.symbol, client_order_id: f.clientOrderId, detail: f.detail },
      `RECONCILIATION FLAGGED: ${f.message}`,
    );
  }
  const counts = {
    adopted: adopted.length,
    flagged: diff.flags.length,
    skipped: skipped.length,
    deferred: diff.deferred.length,
    flagged_kinds: countKinds(diff.flags),
  };
  if (diff.flags.length) log.error(counts, report.summary);
  else log.info(counts, report.summary);
  return report;
}
