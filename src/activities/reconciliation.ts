import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { Broker } from '../adapters/brokers/broker';
import type { FindingKind, Severity } from '../domain/reconciliation';
import type { Logger } from '../logging';
import { reconcileWithBroker } from '../services/reconciliation';

export interface ReconciliationActivityDeps {
  pool: Pool;
  broker: Broker;
  accountId: string;
  logger: Logger;
}

/** What a run returns: small enough for the workflow's history; the full detail is in reconciliation_issues. */
export interface ReconciliationRunResult {
  runId: string;
  adopted: number;
  flagged: number;
  feesBooked: number;
  feesReversed: number;
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

/**
 * `reconcileLedger`: one reconciliation run (src/services/reconciliation.ts) as a Temporal activity, for the
 * scheduled `reconciliationWorkflow`. It never cancels, fills or books a trade (docs/reconciliation.md), and a
 * retried run re-diffs and adopts only what still differs, so retrying it is safe. Broker fees are booked by
 * activity id, once.
 */
export function createReconciliationActivities(deps: ReconciliationActivityDeps) {
  return {
    async reconcileLedger(): Promise<ReconciliationRunResult> {
      const ctx = Context.current();
      const r = await reconcileWithBroker(
        { pool: deps.pool, broker: deps.broker, accountId: deps.accountId, logger: deps.logger },
        // Lookups can take a while under the broker's rate limit: the Web UI shows where the run is.
        { onProgress: (what) => ctx.heartbeat(what) },
      );
      return {
        runId: r.runId,
        adopted: r.adopted.length,
        flagged: r.flagged.length,
        feesBooked: r.fees.length,
        feesReversed: r.feeReversals?.length ?? 0,
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
