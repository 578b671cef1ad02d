/**
 * Signal intake: turns each `trade_signals` message into exactly one trade workflow.
 *
 *   tsx src/workers/signal-intake.ts [--prefetch N]
 *
 * Exactly once, by construction:
 *  - the workflow id is `trade-<signal_id>` and the start uses REJECT_DUPLICATE + FAIL, so a redelivered or
 *    re-published signal can never start a second trade (Temporal answers "already started");
 *  - the message is acked only after Temporal accepted the start or said it already exists (ack-after-start):
 *    if this process dies first, RabbitMQ redelivers and the start is simply repeated;
 *  - while Temporal is unreachable the start is retried in place with backoff, holding the message un-acked
 *    (prefetch bounds how many), so an outage delays signals but loses none;
 *  - a malformed message is dead-lettered with its reason in `x-rejection-reason`, and intake keeps going.
 */
import { parseArgs } from 'node:util';
import { Client, Connection, WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';
import { loadConfig } from '../config';
import { parseTradeSignal, type TradeSignal } from '../contracts/signal';
import { tradeWorkflowId } from '../contracts/trade-ids';
import { createLogger, withCorrelation, type Logger } from '../logging';
import {
  ConfirmPublisher,
  INTAKE_SIGNALS_QUEUE,
  RabbitConnection,
  assertTopologyOn,
  backoffDelay,
  consumeJson,
  sleep,
  type ConsumerHandle,
} from '../adapters/rabbitmq';
import { SA_SIDE, SA_STRATEGY, SA_SYMBOL, SA_TRADE_STATUS } from '../workflows/shared';
import type { tradeWorkflow } from '../workflows/trade';
import { signalsReceived } from '../metrics';
import { rabbitCheck, startOps, temporalCheck } from './ops';

export interface IntakeStats {
  received: number;
  started: number;
  duplicates: number;
  deadLettered: number;
  startRetries: number;
}

export interface IntakeOptions {
  rabbit: RabbitConnection;
  publisher: ConfirmPublisher;
  client: Client;
  taskQueue: string;
  logger: Logger;
  prefetch: number;
  queue?: string;
  /** Called after each accepted start (benchmarks measure signal → start latency with it). */
  onStarted?: (signal: TradeSignal, workflowId: string) => void;
}

export interface IntakeHandle {
  readonly stats: Readonly<IntakeStats>;
  readonly consumer: ConsumerHandle;
  stop(): Promise<void>;
}

/** Start options for a signal's trade. Shared with tools that start trades by hand. */
export function tradeStartOptions(signal: TradeSignal, taskQueue: string) {
  return {
    taskQueue,
    workflowId: tradeWorkflowId(signal.signal_id),
    args: [{ signal }] as Parameters<typeof tradeWorkflow>,
    // A trade id is used once, ever: not even a failed trade may be re-run by a redelivered message.
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: 'FAIL' as const,
    memo: { correlation_id: signal.correlation_id, signal_id: signal.signal_id },
    typedSearchAttributes: [
      { key: SA_SYMBOL, value: signal.symbol },
      { key: SA_SIDE, value: signal.side },
      { key: SA_STRATEGY, value: signal.strategy },
      { key: SA_TRADE_STATUS, value: 'RECEIVED' },
    ],
    staticSummary: `${signal.side.toUpperCase()} ${signal.symbol} @ ${signal.price} (${signal.strategy}, confidence ${signal.confidence})`,
    staticDetails: `signal \`${signal.signal_id}\`, correlation \`${signal.correlation_id}\`, created ${signal.created_at}`,
  };
}

export function startIntake(opts: IntakeOptions): IntakeHandle {
  const stats: IntakeStats = { received: 0, started: 0, duplicates: 0, deadLettered: 0, startRetries: 0 };
  const stopping = new AbortController();
  const consumer = consumeJson(
    opts.rabbit,
    opts.queue ?? INTAKE_SIGNALS_QUEUE,
    { prefetch: opts.prefetch, publisher: opts.publisher, logger: opts.logger, maxAttempts: 20 },
    async (ctx) => {
      stats.received++;
      const parsed = parseTradeSignal(ctx.body);
      if (!parsed.ok) {
        stats.deadLettered++;
        signalsReceived.inc({ outcome: 'invalid' });
        ctx.log.warn({ reason: parsed.reason }, 'malformed signal dead-lettered');
        await ctx.deadLetter(`invalid signal: ${parsed.reason}`);
        return;
      }
      const signal = parsed.value;
      const log = withCorrelation(opts.logger, signal.correlation_id, { signal_id: signal.signal_id });
      const start = tradeStartOptions(signal, opts.taskQueue);
      for (let attempt = 0; ; attempt++) {
        try {
          await opts.client.workflow.start('tradeWorkflow', start);
          stats.started++;
          signalsReceived.inc({ outcome: 'started' });
          log.info(
            { workflow_id: start.workflowId, symbol: signal.symbol, side: signal.side },
            'trade workflow started',
          );
          opts.onStarted?.(signal, start.workflowId);
          return; // ack
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) {
            stats.duplicates++;
            signalsReceived.inc({ outcome: 'duplicate' });
            log.info({ workflow_id: start.workflowId }, 'signal already has its trade; duplicate delivery acked');
            return; // ack: the one trade for this signal exists
          }
          if (stopping.signal.aborted) throw err; // leave un-acked: redelivered after restart
          stats.startRetries++;
          const delay = backoffDelay(attempt, 250, 10_000);
          log.warn(
            { err, attempt: attempt + 1, retry_in_ms: delay },
            'workflow start failed; retrying (message held un-acked)',
          );
          await sleep(delay, stopping.signal).catch(() => undefined);
        }
      }
    },
  );
  return {
    stats,
    consumer,
    async stop() {
      stopping.abort();
      await consumer.cancel();
    },
  };
}

const USAGE = `Usage: tsx src/workers/signal-intake.ts [--prefetch N]

Consumes trade signals from the RabbitMQ queue intake.signals and starts one tradeWorkflow per signal
(workflow id trade-<signal_id>) on the Temporal task queue TEMPORAL_TASK_QUEUE. Malformed signals go to
intake.signals.dlq with the reason in the x-rejection-reason header. Runs until SIGINT/SIGTERM.

Options:
  --prefetch N   un-acked signals (= workflow starts in flight); default SIGNAL_PREFETCH (32)
  -h, --help     this help
`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { prefetch: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const cfg = loadConfig();
  const log = createLogger('signal-intake', { level: cfg.logLevel });
  const prefetch = values.prefetch ? Number(values.prefetch) : cfg.rabbitmq.signalPrefetch;
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new Error(`--prefetch must be a positive integer`);

  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    name: `signal-intake-${process.pid}`,
    logger: log,
    setup: assertTopologyOn,
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  const intake = startIntake({ rabbit, publisher, client, taskQueue: cfg.temporal.taskQueue, logger: log, prefetch });
  const ops = await startOps(cfg, 'signal-intake', log, {
    ready: { rabbitmq: rabbitCheck(rabbit), temporal: temporalCheck(connection) },
  });
  await rabbit.start();
  log.info({ prefetch, task_queue: cfg.temporal.taskQueue }, 'signal intake running');

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig, ...intake.stats }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await intake.stop();
  await publisher.close();
  await rabbit.close();
  await connection.close();
  await ops.close();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    createLogger('signal-intake').fatal({ err }, 'signal intake failed');
    process.exit(1);
  });
}
