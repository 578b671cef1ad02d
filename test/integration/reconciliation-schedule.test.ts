import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScheduleNotFoundError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createReconciliationActivities, type ReconciliationRunResult } from '../../src/activities/reconciliation';
import { createBroker, type Broker } from '../../src/adapters/brokers';
import { ensureAccount } from '../../src/adapters/postgres/risk-store';
import { parseEnv } from '../../src/config';
import { createLogger } from '../../src/logging';
import { keepReconciliationSchedule, reconciliationScheduleId } from '../../src/workers/reconciliation-schedule';
import { startFakeAlpaca, type FakeAlpaca } from '../fakes/fake-alpaca';
import { createTestDatabase, type TestDatabase } from '../support/pg';
import {
  connectDevServer,
  quietTemporalRuntime,
  tradeWorkflowBundle,
  uniqueTaskQueue,
  type DevServer,
} from '../support/temporal';

/**
 * Reconciliation on a Temporal schedule, for real: the schedule the trade worker keeps (created, updated, deleted
 * on the dev server), and one of its runs (reconciliationWorkflow → reconcileLedger on a worker) against a real
 * PostgreSQL ledger and the fake Alpaca through the production adapter. The broker charges a fee outside any
 * fill; the scheduled run books it, and the ledger's cash equals the broker's to the cent.
 */
const KEY = 'schedule-test-key';
const SECRET = 'schedule-test-secret';
const logger = createLogger('reconciliation-schedule-test', { level: 'silent' });

describe('reconciliation schedule (real Temporal dev server, PostgreSQL, fake Alpaca)', () => {
  let db: TestDatabase;
  let fake: FakeAlpaca;
  let broker: Broker;
  let temporal: DevServer;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = uniqueTaskQueue('reconcile');
  // The schedule id is per account: an account of this run only.
  const accountId = `acct-${taskQueue}`;
  const scheduleId = reconciliationScheduleId(accountId);

  beforeAll(async () => {
    quietTemporalRuntime();
    db = await createTestDatabase('sat_rec_schedule');
    fake = await startFakeAlpaca({ apiKey: KEY, apiSecret: SECRET, startingCash: 100_000 });
    const cfg = parseEnv({
      BROKER: 'alpaca',
      ALPACA_BASE_URL: fake.url,
      BROKER_API_KEY: KEY,
      BROKER_API_SECRET: SECRET,
      DATABASE_URL: db.url,
    });
    broker = createBroker(cfg.broker, logger);
    await ensureAccount(db.pool, accountId, 100_000);
    temporal = await connectDevServer();
    worker = await Worker.create({
      connection: temporal.nativeConnection,
      namespace: temporal.namespace,
      taskQueue,
      workflowBundle: await tradeWorkflowBundle(),
      activities: createReconciliationActivities({ pool: db.pool, broker, accountId, logger }),
    });
    running = worker.run();
  }, 120_000);
  afterAll(async () => {
    await temporal?.client.schedule
      .getHandle(scheduleId)
      .delete()
      .catch(() => undefined);
    worker?.shutdown();
    await running;
    await temporal?.close();
    await broker?.close();
    await fake?.close();
    await db?.drop();
  });

  it('keeps one schedule per account: created, updated to new settings, left alone by another task queue, deleted at 0', async () => {
    const keep = (everyMinutes: number, queue = taskQueue) =>
      keepReconciliationSchedule(temporal.client, { accountId, taskQueue: queue, everyMinutes }, logger);
    const handle = temporal.client.schedule.getHandle(scheduleId);

    expect(await keep(60)).toBe('created');
    let d = await handle.describe();
    expect((d.spec.intervals ?? []).map((i) => i.every)).toEqual([60 * 60_000]);
    expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconciliationWorkflow', taskQueue });
    expect(d.policies.overlap).toBe('SKIP');

    // A second worker of the account (or a restart with other settings) updates it: still one schedule.
    expect(await keep(15)).toBe('updated');
    d = await handle.describe();
    expect((d.spec.intervals ?? []).map((i) => i.every)).toEqual([15 * 60_000]);

    // Turned off by a worker on another task queue: not its schedule, left alone.
    expect(await keep(0, `${taskQueue}-other`)).toBe('none');
    await handle.describe();
    // Turned off by this deployment: deleted.
    expect(await keep(0)).toBe('deleted');
    await expect(handle.describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect(await keep(0)).toBe('none');
  });

  it("a scheduled run books a fee the broker charged outside any fill: ledger cash equals the broker's to the cent", async () => {
    const today = new Date().toISOString().slice(0, 10);
    fake.engine.chargeFee(today, 'TAF fee', 'NVDA', 0.37);
    expect((await broker.getAccount()).cash).toBe(99_999.63);

    expect(await keepReconciliationSchedule(temporal.client, { accountId, taskQueue, everyMinutes: 60 }, logger)).toBe(
      'created',
    );
    const handle = temporal.client.schedule.getHandle(scheduleId);
    // Run it now rather than wait for the interval, as `temporal schedule trigger` does.
    await handle.trigger();
    let workflowId: string | undefined;
    const until = Date.now() + 60_000;
    while (!workflowId && Date.now() < until) {
      workflowId = (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId;
      if (!workflowId) await new Promise((r) => setTimeout(r, 200));
    }
    expect(workflowId, 'the schedule started a run').toMatch(new RegExp(`^${scheduleId}-`));
    const result = (await temporal.client.workflow.getHandle(workflowId!).result()) as ReconciliationRunResult;
    expect(result).toMatchObject({ feesBooked: 1, flagged: 0, adopted: 0 });
    expect(result.summary).toMatch(/1 broker fee\(s\) booked \(-0\.37\) — ledger agrees with the broker/);

    const { rows } = await db.pool.query<{ cash: string }>(`SELECT cash::text FROM accounts WHERE account_id = $1`, [
      accountId,
    ]);
    expect(rows[0]!.cash).toBe((await broker.getAccount()).cash.toFixed(6));
  });
});
