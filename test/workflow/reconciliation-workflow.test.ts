import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { ReconciliationRunResult } from '../../src/activities/reconciliation';
import { createTimeSkippingEnv, quietTemporalRuntime, tradeWorkflowBundle, uniqueTaskQueue } from '../support/temporal';

/**
 * reconciliationWorkflow's `reconcile` retry class on the time-skipping server (its backoffs of 5, 10, 20 and 40 s
 * skipped): an outage that ends within the attempts gives the run's result; one that does not fails the run after
 * five attempts, for the next scheduled run to start afresh. The run itself, on the real dev server with the
 * ledger and a broker, is test/integration/reconciliation-schedule.test.ts.
 */
const RESULT: ReconciliationRunResult = {
  runId: 'rec-test',
  adopted: 0,
  flagged: 0,
  feesBooked: 2,
  feesReversed: 0,
  skipped: 0,
  deferred: 0,
  flags: [],
  summary:
    'reconciliation rec-test: 0 adopted, 0 FLAGGED, 2 broker fee(s) booked (-0.11) — ledger agrees with the broker',
};

describe('reconciliationWorkflow (time-skipping)', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = uniqueTaskQueue('reconcile-ts');
  /** Per workflow id: how many attempts fail (broker unreachable), and how many were made. */
  const failing = new Map<string, { failures: number; attempts: number }>();

  beforeAll(async () => {
    quietTemporalRuntime();
    env = await createTimeSkippingEnv();
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await tradeWorkflowBundle(),
      activities: {
        reconcileLedger: async () => {
          const run = failing.get(Context.current().info.workflowExecution?.workflowId ?? '')!;
          run.attempts++;
          if (run.attempts <= run.failures)
            throw ApplicationFailure.retryable('broker unreachable', 'BrokerUnavailable');
          return RESULT;
        },
      },
    });
    running = worker.run();
  });
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await env?.teardown();
  });

  async function runWith(failures: number) {
    const workflowId = `reconcile-${taskQueue}-${failing.size}`;
    const run = { failures, attempts: 0 };
    failing.set(workflowId, run);
    const outcome = await env.client.workflow.execute('reconciliationWorkflow', { taskQueue, workflowId }).then(
      (value: unknown) => ({ value }),
      (error: unknown) => ({ error }),
    );
    return { outcome, attempts: run.attempts };
  }

  it('retries a broker outage and returns the run', async () => {
    const { outcome, attempts } = await runWith(3);
    expect(outcome).toEqual({ value: RESULT });
    expect(attempts).toBe(4);
  });

  it('gives up after five attempts: the run fails, visibly', async () => {
    const { outcome, attempts } = await runWith(Number.POSITIVE_INFINITY);
    expect(attempts).toBe(5);
    expect('error' in outcome && outcome.error).toBeInstanceOf(WorkflowFailedError);
  });
});
