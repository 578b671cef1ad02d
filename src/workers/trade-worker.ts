/**
 * Trade worker: runs the trade workflow (tradeWorkflowV2; tradeWorkflow for trades started before it) and its activities (RiskOps, ExecConnect, ledger) on the Temporal task
 * queue TEMPORAL_TASK_QUEUE.
 *
 *   tsx src/workers/trade-worker.ts
 *
 * - Uses the prebuilt workflow bundle (dist/workflow-bundle.js, `npm run build:workflows`) when present and
 *   newer than the workflow sources, otherwise bundles once at start.
 * - Reconciles the ledger with the broker before polling for work, so a restart after a crash starts from a
 *   known state (docs/reconciliation.md).
 * - With INTAKE_IN_WORKER=true it also consumes the signals and starts each trade itself, on the
 *   worker's own NativeConnection with eager workflow start: the server returns the trade's first workflow
 *   task in the start response to this worker, so the order can leave within that one task (risk is a local
 *   activity, the submit is dispatched eagerly). A separate signal-intake process remains possible.
 * - On SIGINT/SIGTERM stops polling and gives in-flight activities WORKER_SHUTDOWN_GRACE_MS to finish, so a
 *   broker call in progress completes and is recorded rather than being cut off mid-flight.
 */
import fs from 'node:fs';
import {
  NativeConnection,
  Worker,
  bundleWorkflowCode,
  type WorkerOptions,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import { loadConfig, type Config } from '../config';
import { createLogger, type Logger } from '../logging';
import { createBroker } from '../adapters/brokers';
import { OrderTracker } from '../adapters/brokers/order-tracker';
import { countRoundTrips, createPool } from '../adapters/postgres/pool';
import { ensureAccount } from '../adapters/postgres/risk-store';
import { postgresRoundTrips } from '../metrics';
import { installTemporalRuntime } from './temporal-runtime';
import { sleep } from '../lib/sleep';
import { reconcileWithBroker, summaryLine } from '../services/reconciliation';
import { postgresCheck, rabbitCheck, startOps, temporalCheck } from './ops';
import { Client } from '@temporalio/client';
import { openIntake, type RunningIntake } from './signal-intake';
import { keepReconciliationSchedule } from './reconciliation-schedule';
import { tradeActivities } from './trade-activities';
import { PREBUILT_BUNDLE, prebuiltBundleFresh, tradeWorkflowBundleOptions } from './workflow-bundle';
import { reportingRiskBegun, tradeAdmission, TradesOnTheirWayToRisk, workflowTaskSlots } from './workflow-task-slots';

export const WORKFLOWS_PATH = require.resolve('../workflows');

/** The prebuilt bundle if it is at least as new as every source file (workflow-bundle.ts); else bundle now. */
export async function workflowBundleFor(log: Logger): Promise<WorkflowBundleOption> {
  if (prebuiltBundleFresh()) {
    log.info({ path: PREBUILT_BUNDLE }, 'using prebuilt workflow bundle');
    return { codePath: PREBUILT_BUNDLE };
  }
  if (fs.existsSync(PREBUILT_BUNDLE)) {
    log.warn({ path: PREBUILT_BUNDLE }, 'prebuilt workflow bundle is older than the sources; bundling now');
  }
  const t0 = Date.now();
  const bundle = await bundleWorkflowCode(tradeWorkflowBundleOptions(WORKFLOWS_PATH));
  log.info({ ms: Date.now() - t0 }, 'workflow code bundled');
  return bundle;
}

/**
 * Worker.create options that override the product's settings (concurrency, pollers, cache size...), e.g. for
 * the benchmark's --worker-tuning. What the worker runs and where (connection, task queue, code, activities)
 * is not overridable.
 */
export type TradeWorkerTuning = Partial<
  Omit<
    WorkerOptions,
    'connection' | 'namespace' | 'taskQueue' | 'workflowBundle' | 'workflowsPath' | 'activities' | 'sinks'
  >
>;

export interface TradeWorkerOptions {
  /** Stop polling and finish (as SIGTERM would). */
  signal?: AbortSignal;
  workerOptions?: TradeWorkerTuning;
}

export async function runTradeWorker(cfg: Config, log: Logger, opts: TradeWorkerOptions = {}): Promise<void> {
  // Pipelined: risk's evaluation sends its lock and reads, then its writes and COMMIT, one round trip each
  // (evaluateAndReserve), so the account lock is held for one trip through this busy event loop, not nine.
  const pool = createPool(cfg.databaseUrl, 20, { logger: log, pipeline: true });
  countRoundTrips(pool, () => postgresRoundTrips.inc());
  const broker = createBroker(cfg.broker, log.child({ component: 'broker' }));
  // Filled in as start-up proceeds; the health checks read them.
  const started: { connection?: NativeConnection; worker?: Worker; intake?: RunningIntake } = {};
  // Ready = polling Temporal with the ledger and the venue answering; live = the worker has not failed (a
  // failed worker no longer polls: restarting the process is the fix). Up before start-up reconciliation,
  // which can take a minute while the venue starts.
  const ops = await startOps(cfg.ops, 'trade-worker', log, {
    ready: {
      postgres: postgresCheck(pool),
      temporal: () => {
        if (!started.connection) throw new Error('not connected yet');
        return temporalCheck(started.connection)();
      },
      broker: async () => {
        await broker.getAccount();
      },
      worker: () => {
        const state = started.worker?.getState();
        if (state !== 'RUNNING') throw new Error(`worker ${state ?? 'starting'}`);
      },
      ...(cfg.rabbitmq.intakeInWorker
        ? {
            rabbitmq: async () => {
              if (!started.intake) throw new Error('intake not started yet');
              await rabbitCheck(started.intake.rabbit)();
            },
          }
        : {}),
    },
    live: {
      worker: () => {
        if (started.worker?.getState() === 'FAILED') throw new Error('worker failed');
      },
    },
  });
  await ensureAccount(pool, cfg.accountId, cfg.startingCash);
  const tracker = new OrderTracker(broker);
  await reconcileAtStart(pool, broker, cfg.accountId, log);
  const connection = await NativeConnection.connect({ address: cfg.temporal.address });
  started.connection = connection;
  try {
    // Trades the intake in this worker started, until their risk evaluation begins (the admission's count).
    const onTheirWay = new TradesOnTheirWayToRisk();
    const activities = tradeActivities(cfg, { pool, broker, tracker, logger: log });
    const worker = await Worker.create({
      connection,
      namespace: cfg.temporal.namespace,
      taskQueue: cfg.temporal.taskQueue,
      workflowBundle: await workflowBundleFor(log),
      activities: cfg.rabbitmq.intakeInWorker ? reportingRiskBegun(activities, onTheirWay) : activities,
      shutdownGraceTime: cfg.temporal.shutdownGraceMs,
      maxConcurrentActivityTaskExecutions: 200,
      maxConcurrentWorkflowTaskExecutions: workflowTaskSlots(cfg.rabbitmq.intakeInWorker, cfg.rabbitmq.signalPrefetch),
      ...opts.workerOptions,
    });
    started.worker = worker;
    opts.signal?.addEventListener('abort', () => worker.shutdown());
    const running = worker.run();
    // On the worker's NativeConnection: eager start needs it (a gRPC Connection cannot hand the workflow task
    // to a worker).
    const client = new Client({ connection, namespace: cfg.temporal.namespace });
    // Beside start-up, not before it: trading never waits for the schedule. Not fatal either: every order path
    // re-checks the broker by client order id and start-up has reconciled; the periodic run catches fees and
    // drift sooner. Said loudly, so an operator can fix it.
    void keepReconciliationSchedule(
      client,
      { accountId: cfg.accountId, taskQueue: cfg.temporal.taskQueue, everyMinutes: cfg.temporal.reconcileEveryMinutes },
      log,
    ).catch((err: unknown) =>
      log.error({ err }, 'could not keep the reconciliation schedule; reconciliation runs only at worker start'),
    );
    if (cfg.rabbitmq.intakeInWorker) {
      // Intake stops consuming as soon as the worker begins shutting down.
      // Admission: a start waits while the worker has TRADES_IN_RISK_MAX trades in their risk evaluation, so a
      // burst waits in RabbitMQ rather than in the server's matching backlog (workflow-task-slots.ts).
      const intake = openIntake(cfg, log.child({ component: 'signal-intake' }), client, {
        eagerStart: true,
        admission: tradeAdmission(worker, onTheirWay),
      });
      started.intake = intake;
      // Un-acked signals go back to the queue and are started by whoever consumes next (ids are per signal).
      const stopIntake = () => void intake.close().catch(() => undefined);
      opts.signal?.addEventListener('abort', stopIntake);
      process.once('SIGINT', stopIntake);
      process.once('SIGTERM', stopIntake);
      try {
        await intake.start();
      } catch (err) {
        // Closed by a shutdown before RabbitMQ answered: nothing to report. Otherwise stop the worker too.
        if (worker.getState() === 'RUNNING') {
          worker.shutdown();
          await running;
          throw err;
        }
      }
      log.info({ prefetch: cfg.rabbitmq.signalPrefetch }, 'signal intake running in the trade worker (eager start)');
    }
    log.info(
      { task_queue: cfg.temporal.taskQueue, broker: broker.name, address: cfg.temporal.address },
      'trade worker running',
    );
    await running;
    log.info('trade worker stopped');
  } finally {
    await started.intake?.close().catch((err: unknown) => log.warn({ err }, 'closing intake failed'));
    tracker.close();
    await broker.close();
    await connection.close();
    await pool.end();
    await ops.close();
  }
}

/**
 * Start from a known state: adopt what is safe, flag the rest loudly, before taking work. The broker may
 * still be starting (the local venue comes up beside the worker), so retry for a minute; after that the
 * worker runs anyway, because every order path re-checks the broker by client order id, and says so loudly.
 */
async function reconcileAtStart(
  pool: ReturnType<typeof createPool>,
  broker: ReturnType<typeof createBroker>,
  accountId: string,
  log: Logger,
) {
  const rlog = log.child({ component: 'reconciliation' });
  for (let attempt = 1; ; attempt++) {
    try {
      const report = await reconcileWithBroker({ pool, broker, accountId, logger: rlog });
      rlog.info({ summary: summaryLine(report) }, 'start-up reconciliation done');
      return;
    } catch (err) {
      if (attempt >= 30) {
        rlog.error(
          { err },
          'start-up reconciliation failed; starting without it (run `npm run reconcile` once the broker answers)',
        );
        return;
      }
      await sleep(2000);
    }
  }
}

if (require.main === module) {
  const cfg = loadConfig();
  const log = createLogger('trade-worker', { level: cfg.logLevel });
  installTemporalRuntime(log, 'INFO', { metricsBindAddress: cfg.ops.sdkMetricsAddress });
  runTradeWorker(cfg, log).then(
    () => process.exit(0),
    (err: unknown) => {
      log.fatal({ err }, 'trade worker failed');
      process.exit(1);
    },
  );
}
