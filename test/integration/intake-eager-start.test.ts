import path from 'node:path';
import { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfirmPublisher,
  RabbitConnection,
  TRADE_SIGNALS_EXCHANGE,
  topologySetup,
  signalRoutingKey,
} from '../../src/adapters/rabbitmq';
import { parseTradeSignal } from '../../src/contracts/signal';
import { createLogger } from '../../src/logging';
import { eagerTradeStartOptions, startIntake } from '../../src/workers/signal-intake';
import {
  reportingRiskBegun,
  TRADES_IN_RISK_MAX,
  tradeAdmission,
  TradesOnTheirWayToRisk,
} from '../../src/workers/workflow-task-slots';
import type { TradeStatus } from '../../src/workflows/shared';
import { testSignal } from '../support/pipeline';
import { ScriptedBroker } from '../support/scripted-broker';
import {
  connectDevServer,
  quietTemporalRuntime,
  uniqueTaskQueue,
  workflowBundle,
  type DevServer,
} from '../support/temporal';
import { createPrivateVhost, type PrivateVhost } from '../support/vhost';

/**
 * Intake inside the trade worker (INTAKE_IN_WORKER, issue 12): a Client over the worker's NativeConnection
 * starts each trade with `requestEagerStart`, and the real dev server answers the start with the trade's first
 * workflow task, which the worker in this process runs: no matching before the first task. Real RabbitMQ
 * (private vhost) and the real Temporal dev server (private task queue); the broker side is the scripted one of
 * the workflow tests (it fills at submit), since what is under test is the start, not the broker.
 */
const log = createLogger('test-intake-eager', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const WORKFLOWS = path.resolve(__dirname, '../../src/workflows/index.ts');

let vh: PrivateVhost;
let rabbit: RabbitConnection;
let publisher: ConfirmPublisher;
let temporal: DevServer;

beforeAll(async () => {
  quietTemporalRuntime();
  vh = await createPrivateVhost('sat-eager');
  temporal = await connectDevServer();
  rabbit = new RabbitConnection({
    url: vh.url,
    name: 'test-intake-eager',
    logger: log,
    setup: topologySetup(vh.config.rabbitmq),
  });
  publisher = new ConfirmPublisher(rabbit, { logger: log });
  await rabbit.start();
});

afterAll(async () => {
  await publisher?.close();
  await rabbit?.close();
  await temporal?.close();
  await vh?.drop();
});

describe('signal intake in the trade worker: eager workflow start', () => {
  it('starts every trade eagerly on the worker connection, and each one trades to the end', async () => {
    const taskQueue = uniqueTaskQueue('intake-eager');
    const broker = new ScriptedBroker({ atSubmit: (o, b) => b.fill(o, o.qty, 20) });
    const worker = await Worker.create({
      connection: temporal.nativeConnection,
      namespace: temporal.namespace,
      taskQueue,
      workflowBundle: await workflowBundle(WORKFLOWS),
      activities: broker.activities(),
    });
    // The client shares the worker's NativeConnection: only then can the SDK hand the eager task to the worker.
    const client = new Client({ connection: temporal.nativeConnection, namespace: temporal.namespace });
    const signals = [testSignal(), testSignal({ side: 'sell' }), testSignal()];
    const results = await worker.runUntil(async () => {
      const intake = startIntake({
        rabbit,
        publisher,
        client,
        taskQueue,
        logger: log,
        prefetch: 4,
        startOptions: eagerTradeStartOptions,
      });
      try {
        for (const s of signals) {
          await publisher.publishJson(TRADE_SIGNALS_EXCHANGE, signalRoutingKey(s.strategy, s.symbol), s, {
            messageId: s.signal_id,
            correlationId: s.correlation_id,
          });
        }
        const out = await Promise.all(
          signals.map(async (s) => {
            const id = `trade-${s.signal_id}`;
            for (let i = 0; ; i++) {
              try {
                return await client.workflow.getHandle(id).result();
              } catch (err) {
                if (i > 300 || (err as Error).name !== 'WorkflowNotFoundError') throw err;
                await new Promise((r) => setTimeout(r, 100)); // intake has not started it yet
              }
            }
          }),
        );
        return { out: out as TradeStatus[], stats: { ...intake.stats } };
      } finally {
        await intake.stop();
      }
    });
    expect(results.out.map((s) => s.phase)).toEqual(['FILLED', 'FILLED', 'FILLED']);
    expect(results.stats.started).toBe(3);
    // The server's own answer: the start response carried the first workflow task (eagerWorkflowTask).
    expect(results.stats.eagerStarts).toBe(3);
  });

  it('admission: while the worker has TRADES_IN_RISK_MAX trades in risk, the next signals wait in RabbitMQ, then all trade', async () => {
    const taskQueue = uniqueTaskQueue('intake-admission');
    const broker = new ScriptedBroker({ atSubmit: (o, b) => b.fill(o, o.qty, 20) });
    const activities = broker.activities();
    // Risk held until the test lets go, as an account lock held elsewhere would: every evaluation waits in flight.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let holding = false; // off for the warm-up trade
    let inRisk = 0; // evaluations begun while held (a held one that times out is retried and counts again)
    const evaluate = activities.evaluateRisk;
    activities.evaluateRisk = async (...args) => {
      if (holding) {
        inRisk++;
        await held;
      }
      return evaluate(...args);
    };
    // Wired as the trade worker wires it: the admission counts a started trade until its evaluation begins.
    const onTheirWay = new TradesOnTheirWayToRisk();
    const worker = await Worker.create({
      connection: temporal.nativeConnection,
      namespace: temporal.namespace,
      taskQueue,
      workflowBundle: await workflowBundle(WORKFLOWS),
      activities: reportingRiskBegun(activities, onTheirWay),
      maxConcurrentWorkflowTaskExecutions: 60,
    });
    const client = new Client({ connection: temporal.nativeConnection, namespace: temporal.namespace });
    const prefetch = 8;
    // One trade first, unheld: the burst then meets a worker that has run the workflow code already.
    const warmUp = testSignal();
    const signals = Array.from({ length: TRADES_IN_RISK_MAX + 10 }, (_, i) =>
      testSignal({ side: i % 2 ? 'sell' : 'buy' }),
    );
    const results = await worker.runUntil(async () => {
      const intake = startIntake({
        rabbit,
        publisher,
        client,
        taskQueue,
        logger: log,
        prefetch,
        startOptions: eagerTradeStartOptions,
        admission: tradeAdmission(worker, onTheirWay),
      });
      try {
        const publish = (s: typeof warmUp) =>
          publisher.publishJson(TRADE_SIGNALS_EXCHANGE, signalRoutingKey(s.strategy, s.symbol), s, {
            messageId: s.signal_id,
            correlationId: s.correlation_id,
          });
        await publish(warmUp);
        for (let i = 0; ; i++) {
          try {
            await client.workflow.getHandle(`trade-${warmUp.signal_id}`).result();
            break;
          } catch (err) {
            if (i > 600 || (err as Error).name !== 'WorkflowNotFoundError') throw err;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        holding = true;
        for (const s of signals) await publish(s);
        for (let i = 0; !(inRisk >= TRADES_IN_RISK_MAX && intake.stats.admissionWaits > 0); i++) {
          if (i > 600)
            throw new Error(`admission never held a start: ${inRisk} in risk, ${JSON.stringify(intake.stats)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        await new Promise((r) => setTimeout(r, 1000)); // a start that was let through would show by now
        const whileHeld = { inRisk, ...intake.stats };
        release();
        const out = await Promise.all(
          signals.map(async (s) => {
            const id = `trade-${s.signal_id}`;
            for (let i = 0; ; i++) {
              try {
                return await client.workflow.getHandle(id).result();
              } catch (err) {
                if (i > 600 || (err as Error).name !== 'WorkflowNotFoundError') throw err;
                await new Promise((r) => setTimeout(r, 100)); // intake has not started it yet
              }
            }
          }),
        );
        return { out: out as TradeStatus[], whileHeld, stats: { ...intake.stats } };
      } finally {
        release(); // also on a failure, so the worker's evaluations end and it can shut down
        await intake.stop();
      }
    });
    // Held: the trades in risk are the bound (every started trade is counted from its start call to its evaluation,
    // and each start is counted in the same step as the check that lets it through), and the rest of the burst was
    // not started. Before the trades on their way were counted, a loaded machine started 26 and 27 of the 27.
    expect(results.whileHeld.inRisk).toBeGreaterThanOrEqual(TRADES_IN_RISK_MAX);
    expect(results.whileHeld.started).toBe(1 + TRADES_IN_RISK_MAX);
    expect(results.whileHeld.started).toBeLessThan(1 + signals.length);
    // Released: every signal has its one trade, filled, and every start was eager.
    expect(results.out.map((s) => s.phase)).toEqual(signals.map(() => 'FILLED'));
    expect(results.stats.started).toBe(1 + signals.length);
    expect(results.stats.eagerStarts).toBe(1 + signals.length);
    expect(broker.submitted).toHaveLength(1 + signals.length);
  });

  it('the SDK refuses an eager start over a plain gRPC Connection, so intake cannot silently lose it', async () => {
    const parsed = parseTradeSignal(testSignal());
    if (!parsed.ok) throw new Error(parsed.reason);
    const s = parsed.value;
    await expect(
      temporal.client.workflow.start('tradeWorkflowV2', eagerTradeStartOptions(s, uniqueTaskQueue('x'))),
    ).rejects.toThrow(/NativeConnection/);
  });
});
