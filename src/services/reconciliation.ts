import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { BrokerRateLimitedError, hasFeeActivities, type Broker, type BrokerFee } from '../adapters/brokers/broker';
import { bookBrokerFees, feesReadAfter, ledgerInvariants } from '../adapters/postgres/ledger';
import { applyReconciliation, loadKnownOrders, loadLedgerState } from '../adapters/postgres/reconciliation';
import type { BrokerOrder } from '../contracts/order';
import {
  reconcile,
  type BrokerState,
  type DeferredOrder,
  type FindingKind,
  type LedgerOrder,
  type ReconcileAdoption,
  type ReconcileFinding,
  type ReconcileFlag,
  type ReconcileOptions,
  invariantFlags,
} from '../domain/reconciliation';
import type { Logger } from '../logging';
import { sleep } from '../lib/sleep';
import { rateLimitWaitSeconds, rateLimitWaits, reconciliationFlags } from '../metrics';

/**
 * Reconciliation I/O: read the ledger, read the broker, diff (src/domain/reconcile.ts), apply the safe
 * adoptions and record every finding in reconciliation_issues under one run id.
 *
 * Money safety:
 * - Only `orders` bookkeeping is ever written (status, cumulative filled qty, broker order id), plus the fees the
 *   broker charged outside any fill (Alpaca's end-of-day REG/TAF FEE activities), booked through the ledger once
 *   each by activity id: they are the broker's own record of money it took, not a guess. Fills and positions
 *   are never written here, and nothing is ever sent to the broker: no cancel, no order.
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
  /**
   * Broker fees booked into the ledger by this run (in a dry run: the fees the broker listed, none booked). Booked
   * before the diff, so the cash comparison sees them.
   */
  fees: BrokerFee[];
  /**
   * Booked broker fees the broker has since cancelled, reversed in the ledger by this run (none in a dry run).
   * Absent in reports of older versions.
   */
  feeReversals?: BrokerFee[];
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

/**
 * Read the fees the broker charged outside fills since a few days before the last one booked, and book the new
 * ones (none in a dry run). A broker without such fees (the simulated venue charges per fill) has nothing to read.
 * A rate-limited read waits for the reset and tries again; any other failure fails the run before it writes
 * anything, as for the other broker reads.
 */
async function bookFeesCharged(
  deps: ReconcileDeps,
  dryRun: boolean,
  log: Logger,
  attempts: number,
): Promise<{ booked: BrokerFee[]; reversed: BrokerFee[] }> {
  const { pool, broker, accountId } = deps;
  const none = { booked: [], reversed: [] };
  if (!hasFeeActivities(broker)) return none;
  const after = await feesReadAfter(pool, accountId);
  if (after === null) return none; // no ledger account: the diff reports it
  for (let attempt = 1; ; attempt++) {
    try {
      const listed = await broker.listFees(after);
      if (dryRun) return { booked: listed.filter((f) => !f.cancelled), reversed: [] };
      const { booked, reversed } = await bookBrokerFees(pool, accountId, listed);
      for (const f of booked) {
        log.info(
          { activity_id: f.activityId, day: f.date, amount: f.netAmount, symbol: f.symbol },
          `broker fee booked: ${f.description}`,
        );
      }
      for (const f of reversed) {
        log.warn(
          { activity_id: f.activityId, day: f.date, amount: -f.netAmount, symbol: f.symbol },
          `broker fee cancelled by the broker after it was booked; reversed: ${f.description}`,
        );
      }
      return { booked, reversed };
    } catch (err) {
      if (!(err instanceof BrokerRateLimitedError) || attempt >= attempts) throw err;
      const waitMs = Math.min(60_000, Math.max(1_000, err.retryAfterMs));
      rateLimitWaits.inc({ where: 'reconciliation' });
      rateLimitWaitSeconds.inc({ where: 'reconciliation' }, waitMs / 1000);
      await sleep(waitMs);
    }
  }
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
  r: Pick<ReconciliationReport, 'runId' | 'adopted' | 'flagged' | 'skipped' | 'deferred' | 'dryRun'> &
    Partial<Pick<ReconciliationReport, 'fees' | 'feeReversals'>>,
): string {
  const kinds = Object.entries(countKinds(r.flagged))
    .map(([k, n]) => `${k}×${n}`)
    .join(', ');
  const parts = [
    `${r.adopted.length} ${r.dryRun ? 'would be adopted' : 'adopted'}`,
    `${r.flagged.length} FLAGGED${kinds ? ` (${kinds})` : ''}`,
  ];
  if (r.fees?.length) {
    const cents = r.fees.reduce((sum, f) => sum + Math.round(f.netAmount * 100), 0);
    parts.push(`${r.fees.length} broker fee(s) ${r.dryRun ? 'listed' : 'booked'} (${(cents / 100).toFixed(2)})`);
  }
  if (r.feeReversals?.length) {
    const cents = r.feeReversals.reduce((sum, f) => sum - Math.round(f.netAmount * 100), 0);
    parts.push(`${r.feeReversals.length} cancelled broker fee(s) reversed (+${(cents / 100).toFixed(2)})`);
  }
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

  // The broker's fees outside fills first: then the cash diff below compares like with like, to the cent.
  const { booked: fees, reversed: feeReversals } = await bookFeesCharged(deps, dryRun, log, opts.lookupAttempts ?? 3);

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
    const applied = await applyReconciliation(pool, accountId, runId, diff);
    adopted = applied.applied;
    skipped.push(...applied.skipped);
  }

  const report: ReconciliationReport = {
    runId,
    accountId,
    broker: broker.name,
    dryRun,
    startedAt: started.toISOString(),
    finishedAt: now().toISOString(),
    fees,
    feeReversals,
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
