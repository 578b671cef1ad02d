import pino from 'pino';
import { loadConfig } from '../config';
import { createBroker } from '../adapters/brokers';
import { createPool } from '../adapters/postgres/pool';
import type { ReconcileFinding } from '../domain/reconciliation';
import { createLogger, scrubSecrets } from '../logging';
import { reconcileWithBroker, type ReconciliationReport } from '../services/reconciliation';

/**
 * `npm run reconcile [-- --json] [-- --dry-run]` (= tsx src/cli/reconcile.ts): compare the ledger with the
 * broker now, adopt what is safe, record and print the rest. Never cancels or places an order.
 *
 * Exit codes: 0 nothing needs a human (adoptions alone are fine), 3 something was FLAGGED (so cron and
 * operators notice), 1 the run failed (database or broker unreachable: nothing was written), 2 bad usage.
 */

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_FLAGGED = 3;

const USAGE = `Usage: tsx src/cli/reconcile.ts [--json] [--dry-run] [--grace-minutes N]
       npm run reconcile [-- --json] [-- --dry-run]

Compares the ledger (PostgreSQL) with the broker's open orders, positions and cash.
  ADOPTED  order bookkeeping the ledger can safely take from the broker (status, filled qty of an order
           whose fills are all booked; a pending_submit the broker never received → not_submitted)
  FLAGGED  everything else: unknown broker orders, unbooked fills, position or cash differences.
           Nothing is cancelled, filled or booked automatically. Findings go to reconciliation_issues.

Options:
  --json             print the full report as JSON on stdout (logs go to stderr either way)
  --dry-run          diff only: adopt nothing, record nothing
  --grace-minutes N  leave pending_submit orders younger than N minutes alone (default 5)
  -h, --help         this text

Exit codes: 0 clean (or only adoptions), 3 something FLAGGED, 1 failed, 2 bad usage.
Account, database and broker come from the environment (.env): ACCOUNT_ID, DATABASE_URL, BROKER,
ALPACA_BASE_URL, BROKER_API_KEY, BROKER_API_SECRET, SIM_EXCHANGE_PORT.`;

export interface CliArgs {
  json: boolean;
  dryRun: boolean;
  graceMs?: number;
}

export function parseArgs(argv: readonly string[]): CliArgs | { help: true } | { error: string } {
  const out: CliArgs = { json: false, dryRun: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return { help: true };
    if (a === '--json') out.json = true;
    else if (a === '--dry-run') out.dryRun = true;
    else if (a === '--grace-minutes' || a.startsWith('--grace-minutes=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      const n = Number(v);
      if (v === undefined || v === '' || !Number.isFinite(n) || n < 0) {
        return { error: '--grace-minutes needs a number ≥ 0' };
      }
      out.graceMs = n * 60_000;
    } else return { error: `unknown argument ${a}` };
  }
  return out;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** The human-readable report: one table row per finding, then the summary line. */
export function formatReport(r: ReconciliationReport): string {
  const rows: ReconcileFinding[] = [...r.flagged, ...r.adopted];
  const lines: string[] = [
    `Reconciliation ${r.runId}${r.dryRun ? ' (dry run: nothing adopted or recorded)' : ''}`,
    `account ${r.accountId}, broker ${r.broker}; checked ${r.checked.ledgerOpenOrders} open ledger orders, ` +
      `${r.checked.brokerOpenOrders} open broker orders, ${r.checked.brokerLookups} lookups, ` +
      `${r.checked.ledgerPositions}/${r.checked.brokerPositions} positions (ledger/broker)`,
    '',
  ];
  if (rows.length === 0) {
    lines.push('No differences.');
  } else {
    const header = ['ACTION', 'SEVERITY', 'KIND', 'SYMBOL', 'CLIENT ORDER ID', 'WHAT'];
    const table = rows.map((f) => [f.action, f.severity, f.kind, f.symbol ?? '-', f.clientOrderId ?? '-', f.message]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => (i === 5 ? 0 : t[i]!.length))));
    const fmt = (cols: string[]) =>
      cols
        .map((c, i) => (i === cols.length - 1 ? c : pad(c, widths[i]!)))
        .join('  ')
        .trimEnd();
    lines.push(fmt(header), fmt(widths.map((w, i) => (i === 5 ? '----' : '-'.repeat(w)))));
    for (const t of table) lines.push(fmt(t));
  }
  for (const f of r.fees) {
    lines.push(
      `broker fee ${r.dryRun ? 'listed (not booked)' : 'booked'}: ${f.date} ${f.description}` +
        `${f.symbol ? ` ${f.symbol}` : ''} ${f.netAmount.toFixed(2)} (activity ${f.activityId})`,
    );
  }
  for (const f of r.feeReversals ?? []) {
    lines.push(
      `broker fee cancelled by the broker, reversed: ${f.date} ${f.description}` +
        `${f.symbol ? ` ${f.symbol}` : ''} +${(-f.netAmount).toFixed(2)} (activity ${f.activityId})`,
    );
  }
  for (const s of r.skipped) lines.push(`skipped (ledger changed during the run): ${s.message}`);
  for (const d of r.deferred) {
    lines.push(`deferred: ${d.clientOrderId} (${d.symbol}) pending_submit for ${Math.round(d.ageMs / 1000)} s`);
  }
  lines.push('', r.summary);
  return lines.join('\n');
}

export function exitCodeFor(r: Pick<ReconciliationReport, 'flagged'>): number {
  return r.flagged.length > 0 ? EXIT_FLAGGED : EXIT_OK;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if ('help' in args) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if ('error' in args) {
    process.stderr.write(`reconcile: ${args.error}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const config = loadConfig();
  // Logs on stderr, so stdout carries only the table or the JSON report.
  const logger = createLogger('reconcile', { level: config.logLevel, destination: pino.destination(2) });
  const pool = createPool(config.databaseUrl, 2, { logger });
  const broker = createBroker(config.broker, logger.child({ component: 'broker' }));
  try {
    const report = await reconcileWithBroker(
      { pool, broker, accountId: config.accountId, logger },
      { dryRun: args.dryRun, ...(args.graceMs !== undefined ? { pendingSubmitGraceMs: args.graceMs } : {}) },
    );
    process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    return exitCodeFor(report);
  } catch (err) {
    process.stderr.write(`reconcile: failed: ${scrubSecrets(err instanceof Error ? err.message : String(err))}\n`);
    return EXIT_FAILED;
  } finally {
    await broker.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
  }
}

if (require.main === module) {
  main().then(
    (code) => {
      // Let the stdout write drain before exiting (large --json reports on a pipe).
      process.stdout.write('', () => process.exit(code));
    },
    (err: unknown) => {
      process.stderr.write(`reconcile: ${scrubSecrets(String(err))}\n`);
      process.exit(EXIT_FAILED);
    },
  );
}
