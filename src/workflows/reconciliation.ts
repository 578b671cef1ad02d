import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ReconciliationRunResult } from '../activities/reconciliation';

/**
 * Reconciliation on a schedule (docs/reconciliation.md): compare the ledger with the broker, book the broker's
 * fees (and reverse cancelled ones), adopt what is safe and flag the rest. The trade worker reconciles once at
 * start; the schedule `reconcile-<ACCOUNT_ID>` (src/workers/reconciliation-schedule.ts) runs this workflow every
 * RECONCILE_EVERY_MINUTES while it trades, so fees and drift reach the ledger within one interval instead of at
 * the next restart. Every run is a workflow in the Web UI with its summary as its result.
 */

/**
 * The `reconcile` retry class. A run only reads the broker and writes guarded adoptions and flags, so any attempt
 * may be retried. A broker or database outage is retried a few times over about a minute and a half; then the
 * run fails, visibly (`WorkflowType="reconciliationWorkflow" AND ExecutionStatus="Failed"`), and the next
 * scheduled run starts afresh rather than this one retrying into it.
 */
const RECONCILE_OPTIONS = {
  // Fee pages and per-order lookups under the broker's rate limit (a 429 waits for its reset): minutes at worst.
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
} as const;

const { reconcileLedger } = proxyActivities<Pick<Activities, 'reconcileLedger'>>(RECONCILE_OPTIONS);

export async function reconciliationWorkflow(): Promise<ReconciliationRunResult> {
  return reconcileLedger();
}
