import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createTimeSkippingEnv, quietTemporalRuntime, uniqueTaskQueue, workflowBundle } from '../support/temporal';
import * as activities from './fixtures/activities';
import { echoWorkflow, sleeper } from './fixtures/workflows';

// Proves the workflow tier's server: Temporal's time-skipping test server (provisioned by
// scripts/provision/test-server.sh — native from a pinned PyPI wheel, or the Java fallback — and passed via
// TEMPORAL_TEST_SERVER_PATH) starts and skips time. test/provision/ runs the Java fallback the same way.
describe('time-skipping test server', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let run: Promise<void>;
  const taskQueue = uniqueTaskQueue('time-skipping');

  beforeAll(async () => {
    quietTemporalRuntime();
    const t0 = Date.now();
    env = await createTimeSkippingEnv();
    console.log(
      `time-skipping server ready in ${Date.now() - t0} ms (${process.env.TEMPORAL_TEST_SERVER_PATH ?? 'SDK download'})`,
    );
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities,
    });
    run = worker.run();
  });

  afterAll(async () => {
    if (worker) {
      worker.shutdown();
      await run;
    }
    await env?.teardown();
  });

  it('reports time skipping support', () => {
    expect(env.supportsTimeSkipping).toBe(true);
  });

  it('a workflow that sleeps one simulated day completes within the test timeout: the server skips the day', async () => {
    const oneDay = 24 * 60 * 60 * 1000;
    const t0 = performance.now();
    const serverBefore = await env.currentTimeMs();
    const result = await env.client.workflow.execute(sleeper, {
      taskQueue,
      workflowId: `sleeper-${taskQueue}`,
      args: [oneDay],
    });
    const serverAfter = await env.currentTimeMs();
    console.log(`1 simulated day took ${(performance.now() - t0).toFixed(0)} ms of real time`);
    // The workflow and the server's clock both saw a day pass. That it was skipped, not waited, is the test's
    // own timeout (workflow tier: 2 minutes), not a timed assertion that a loaded machine could break.
    expect(result.sleptMs).toBeGreaterThanOrEqual(oneDay);
    expect(serverAfter - serverBefore).toBeGreaterThanOrEqual(oneDay);
  });

  it('runs an activity', async () => {
    const out = await env.client.workflow.execute(echoWorkflow, {
      taskQueue,
      workflowId: `echo-${taskQueue}`,
      args: ['hi'],
    });
    expect(out).toBe('echo: hi');
  });
});
