import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { Broker } from '../adapters/brokers/broker';
import type { FindingKind, Severity } from '../domain/reconcile';
import type { Logger } from '../logging';
import { reconcileWithBroker as runReconciliation, type ReconcileRunOptions } from '../services/reconciliation';

export interface ReconcileActivityDeps {
  pool: Pool;
  broker: Broker;
  accountId: string;
  logger: Logger;
  /** Grace period, cash tolerance, clock (tests). */
  options?: Omit<ReconcileRunOptions, 'onProgress' | 'runId'>;
}

/** What the activity returns: small enough for workflow history; the full detail is in reconciliation_issues. */
export interface ReconcileActivityResult {
  runId: string;
  adopted: number;
  flagged: number;
  skipped: number;
  deferred: number;
  flags: Array<{
    kind: FindingKind;
    severity: Severity;
    symbol: string | null;
    clientOrderId: string | null;
    message: string;
  }>;
  summary: string;
}

/** Heartbeat when running as an activity (lookups can take a while under the broker's rate limit). */
function heartbeat(details: string): void {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return; // called directly (worker start-up, tests): nobody to heartbeat to
  }
  ctx.heartbeat(details);
}

/**
 * `reconcileWithBroker`: one reconciliation run (src/services/reconciliation.ts) as a Temporal activity, for a
 * scheduled or on-demand workflow. It never cancels or books anything (see docs/reconciliation.md), so it is
 * safe to retry: a retried run re-diffs and adopts only what still differs.
 */
export function createReconcileActivities(deps: ReconcileActivityDeps) {
  return {
    async reconcileWithBroker(): Promise<ReconcileActivityResult> {
      const r = await runReconciliation(
        { pool: deps.pool, broker: deps.broker, accountId: deps.accountId, logger: deps.logger },
        { ...deps.options, onProgress: heartbeat },
      );
      return {
        runId: r.runId,
        adopted: r.adopted.length,
        flagged: r.flagged.length,
        skipped: r.skipped.length,
        deferred: r.deferred.length,
        flags: r.flagged.map((f) => ({
          kind: f.kind,
          severity: f.severity,
          symbol: f.symbol,
          clientOrderId: f.clientOrderId,
          message: f.message,
        })),
        summary: r.summary,
      };
    },
  };
}

export type ReconcileActivities = ReturnType<typeof createReconcileActivities>;
