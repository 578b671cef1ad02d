/**
 * Signal intake: turns each trade signal into exactly one trade workflow. A `trade_signals` message is one signal
 * or a batch of them (contracts/signal.ts, `signal_batch`: the quant's form); every signal is started by its own id.
 *
 *   tsx src/workers/signal-intake.ts [--prefetch N]
 *
 * Exactly once, by construction:
 *  - the workflow id is `trade-<signal_id>` and the start uses REJECT_DUPLICATE + FAIL, so a redelivered or
 *    re-published signal can never start a second trade (Temporal answers "already started");
 *  - the message is acked only after Temporal accepted the start or said it already exists (ack-after-start):
 *    if this process dies first, RabbitMQ redelivers and the start is simply repeated;
 *  - a failed start is sorted by its gRPC status (`classifyStartError`): a *transient* one (Temporal unreachable,
 *    overloaded, timing out) is retried in place with backoff, holding the message un-acked (prefetch bounds
 *    how many), so an outage delays signals but loses none; a *permanent* one (unknown namespace, unregistered
 *    search attribute, payload over the size limit, no permission...) would fail the same way for ever, so the
 *    message is dead-lettered with the reason and intake moves on: 32 such messages can no longer fill the
 *    prefetch window and stop intake;
 *  - a malformed message is dead-lettered with its reason in `x-rejection-reason`, and intake keeps going; a batch
 *    is valid as a whole or dead-lettered as it came (no signal of it started); a batch with a refused start is
 *    dead-lettered whole, with the refusals named, once every other signal of it has its trade (those are
 *    duplicates if it is ever re-published from the DLQ).
 */
import { parseArgs } from 'node:util';
import {
  Client,
  Connection,
  NamespaceNotFoundError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  isGrpcServiceError,
} from '@temporalio/client';
import { loadConfig, type Config } from '../config';
import { parseSignalMessage, type TradeSignal } from '../contracts/signal';
import { tradeWorkflowId } from '../contracts/trade-ids';
import { createLogger, withCorrelation, type Logger } from '../logging';
import {
  ConfirmPublisher,
  INTAKE_SIGNALS_QUEUE,
  RabbitConnection,
  topologySetup,
  consumeJson,
  type ConsumerHandle,
} from '../adapters/rabbitmq';
import { backoffDelay } from '../lib/backoff';
import { sleep } from '../lib/sleep';
import { SA_SIDE, SA_STRATEGY, SA_SYMBOL, SA_TRADE_STATUS, TRADE_WORKFLOW_TYPE } from '../workflows/shared';
import type { tradeWorkflowV2 } from '../workflows/trade';
import { signalsReceived } from '../metrics';
import { rabbitCheck, startOps, temporalCheck } from './ops';

export interface IntakeStats {
  /** Signals received (a batch message counts each of its signals; a malformed message counts one). */
  received: number;
  started: number;
  duplicates: number;
  /** Messages dead-lettered (malformed, or with a signal whose start was refused). */
  deadLettered: number;
  startRetries: number;
  /** Starts the server answered with the first workflow task for a worker in this process (eager start). */
  eagerStarts: number;
  /** Signals whose workflow start failed permanently (their message dead-lettered with the reason). */
  startRejected: number;
  /** Polls of the worker's admission that found it busy (each a wait of `admission.pollMs` before a start). */
  admissionWaits: number;
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
  /**
   * Adjust a signal's start options before the start (default: `tradeStartOptions` as is). Lets a deployment
   * or a test add search attributes or memo fields; whatever the server refuses is sorted like any start error.
   */
  startOptions?: (signal: TradeSignal, taskQueue: string) => TradeStartOptions;
  /** Cap of the transient-error backoff in ms (default 10 s). */
  maxRetryDelayMs?: number;
  /**
   * Admission (the intake inside the trade worker): a start waits while `admission.busy(startsInFlight)` says
   * the worker has enough trades in their first steps already, counting this intake's start calls still in
   * flight (tradeAdmission, src/workers/workflow-task-slots.ts), so a burst beyond what the worker can take
   * waits in RabbitMQ instead of inside the Temporal server. Polled every `pollMs`.
   */
  admission?: {
    busy: (startsInFlight: number) => boolean;
    /** A start this intake made was answered (the trade exists): counted until its risk evaluation begins. */
    started?: (workflowId: string) => void;
    pollMs: number;
  };
  /**
   * Deliveries of a message whose handling keeps failing before it is dead-lettered with the reason (default
   * 20 = the default RABBITMQ_DELIVERY_LIMIT; keep it at or below the queue's limit).
   */
  maxAttempts?: number;
}

export interface IntakeHandle {
  readonly stats: Readonly<IntakeStats>;
  readonly consumer: ConsumerHandle;
  stop(): Promise<void>;
}

export type TradeStartOptions = ReturnType<typeof tradeStartOptions> & { requestEagerStart?: boolean };

/** Start options for a signal's trade. Shared with tools that start trades by hand. */
export function tradeStartOptions(signal: TradeSignal, taskQueue: string) {
  return {
    taskQueue,
    workflowId: tradeWorkflowId(signal.signal_id),
    args: [{ signal }] as Parameters<typeof tradeWorkflowV2>,
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

/**
 * The same start, asking the server to return the first workflow task in the start response (eager workflow
 * start). Only a Client over the worker's NativeConnection can take it; the SDK refuses it otherwise.
 */
export function eagerTradeStartOptions(signal: TradeSignal, taskQueue: string): TradeStartOptions {
  return { ...tradeStartOptions(signal, taskQueue), requestEagerStart: true };
}

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html), by number as they arrive. */
export const GRPC_STATUS: Readonly<Record<number, string>> = {
  0: 'OK',
  1: 'CANCELLED',
  2: 'UNKNOWN',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  10: 'ABORTED',
  11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  15: 'DATA_LOSS',
  16: 'UNAUTHENTICATED',
};

/**
 * Statuses that mean "this request will never succeed as sent": retrying holds the message (and a prefetch
 * slot) for ever. Temporal answers with them for an unregistered search attribute or a blob/memo over the
 * size limit (INVALID_ARGUMENT), a namespace it does not know (NOT_FOUND), a caller it does not allow
 * (PERMISSION_DENIED), an API the server lacks (UNIMPLEMENTED).
 */
const PERMANENT_STATUSES = new Set([
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'PERMISSION_DENIED',
  'UNIMPLEMENTED',
  'ALREADY_EXISTS',
]);

/**
 * Everything else is transient: UNAVAILABLE and DEADLINE_EXCEEDED (server down, restarting, slow: the start
 * is idempotent by workflow id, so repeating one that did land only finds "already started"),
 * RESOURCE_EXHAUSTED (Temporal's rate limits), ABORTED, INTERNAL, UNKNOWN, CANCELLED, DATA_LOSS, OUT_OF_RANGE
 * (the SDK's own gRPC retry treats these as retryable), FAILED_PRECONDITION (Temporal's NamespaceNotActive
 * during a failover of a global namespace clears when the failover ends), UNAUTHENTICATED (an expired token
 * is replaced) and errors without a gRPC status (a connection being re-established).
 */
export type StartErrorClass =
  | { kind: 'duplicate' }
  | { kind: 'permanent'; status: string; reason: string }
  | { kind: 'transient'; status: string; reason: string };

/** Sort a `client.workflow.start` error. Pure: unit-tested with the errors the SDK throws. */
export function classifyStartError(err: unknown): StartErrorClass {
  if (err instanceof WorkflowExecutionAlreadyStartedError) return { kind: 'duplicate' };
  if (err instanceof NamespaceNotFoundError) {
    return { kind: 'permanent', status: 'NOT_FOUND', reason: `namespace not found: ${err.namespace}` };
  }
  // The client wraps the gRPC error in a ServiceError ("Failed to start Workflow") with it as `cause`.
  const grpc = isGrpcServiceError(err)
    ? err
    : isGrpcServiceError((err as { cause?: unknown } | null)?.cause)
      ? ((err as { cause: unknown }).cause as { code: number; details?: string; message: string })
      : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (!grpc) return { kind: 'transient', status: 'NO_STATUS', reason: message };
  const status = GRPC_STATUS[grpc.code] ?? `CODE_${grpc.code}`;
  const detail = grpc.details || grpc.message;
  const reason = `${status}: ${detail}`;
  // The gRPC layer's own size check (4 MiB by default) answers RESOURCE_EXHAUSTED, which otherwise means a
  // rate limit: the same message will always be too large.
  if (status === 'RESOURCE_EXHAUSTED' && /larger than max/i.test(detail)) return { kind: 'permanent', status, reason };
  if (PERMANENT_STATUSES.has(status)) return { kind: 'permanent', status, reason };
  return { kind: 'transient', status, reason };
}

export function startIntake(opts: IntakeOptions): IntakeHandle {
  const stats: IntakeStats = {
    received: 0,
    started: 0,
    duplicates: 0,
    deadLettered: 0,
    startRetries: 0,
    eagerStarts: 0,
    startRejected: 0,
    admissionWaits: 0,
  };
  const stopping = new AbortController();
  let freeStarts = opts.prefetch;
  let startsInFlight = 0; // start calls awaiting the server (admission counts them)
  const startWaiters: (() => void)[] = [];
  const consumer = consumeJson(
    opts.rabbit,
    opts.queue ?? INTAKE_SIGNALS_QUEUE,
    { prefetch: opts.prefetch, publisher: opts.publisher, logger: opts.logger, maxAttempts: opts.maxAttempts ?? 20 },
    async (ctx) => {
      // One signal, or a batch of them (contracts/signal.ts): each signal is its own trade, started by its own id.
      const parsed = parseSignalMessage(ctx.body);
      if (!parsed.ok) {
        stats.received++;
        stats.deadLettered++;
        signalsReceived.inc({ outcome: 'invalid' });
        ctx.log.warn({ reason: parsed.reason }, 'malformed signal dead-lettered');
        await ctx.deadLetter(`invalid signal: ${parsed.reason}`);
        return;
      }
      const signals = parsed.value;
      stats.received += signals.length;
      // A batch's starts run side by side (each retried on its own, all within the `prefetch` starts in flight);
      // the message is acked when every one of them has its trade (started now or before), never earlier.
      const refusals =
        signals.length === 1
          ? [await startTrade(signals[0]!)]
          : await Promise.all(signals.map((signal) => startTrade(signal)));
      const refused: string[] = [];
      refusals.forEach((r, i) => {
        if (r !== undefined) refused.push(signals.length === 1 ? r : `${signals[i]!.signal_id}: ${r}`);
      });
      if (refused.length === 0) return; // ack
      stats.deadLettered++;
      // The whole message as it came, with every refusal named: the signals of a batch that did start are
      // duplicates if it is ever re-published from the DLQ (their workflow ids exist), so nothing is doubled.
      // Resolves after the broker confirmed the copy; only then is the original acked.
      await ctx.deadLetter(
        signals.length === 1
          ? refused[0]!
          : `${refused.length} of ${signals.length} signals refused: ${refused.join('; ')}`,
      );
    },
  );

  /**
   * Start one signal's trade, retrying a transient failure in place. Resolves undefined once the trade exists
   * (started now, or already started: a redelivery or re-publication), or the dead-letter reason of a permanent
   * refusal. Throws only when intake is stopping (the message stays un-acked and is redelivered).
   */
  async function startTrade(signal: TradeSignal): Promise<string | undefined> {
    // At most `prefetch` starts in flight, batches or not (what the prefetch bounded when a message was one signal).
    if (freeStarts > 0) freeStarts--;
    else await new Promise<void>((resolve) => startWaiters.push(resolve));
    try {
      await admitted(); // counts this start in startsInFlight
      try {
        return await startTradeInSlot(signal);
      } finally {
        startsInFlight--;
      }
    } finally {
      const next = startWaiters.shift();
      if (next) next();
      else freeStarts++;
    }
  }

  /**
   * Wait for the worker's admission, then count the start in flight in the same synchronous step as the check that
   * let it through (two starts let through by one check would pass the bound). Throws when intake stops meanwhile
   * (the message stays un-acked).
   */
  async function admitted(): Promise<void> {
    while (opts.admission?.busy(startsInFlight)) {
      if (stopping.signal.aborted) throw new Error('signal intake stopping');
      stats.admissionWaits++;
      await sleep(opts.admission.pollMs, stopping.signal).catch(() => undefined);
    }
    startsInFlight++;
  }

  async function startTradeInSlot(signal: TradeSignal): Promise<string | undefined> {
    const log = withCorrelation(opts.logger, signal.correlation_id, { signal_id: signal.signal_id });
    const start = opts.startOptions?.(signal, opts.taskQueue) ?? tradeStartOptions(signal, opts.taskQueue);
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await opts.client.workflow.start<typeof tradeWorkflowV2>(TRADE_WORKFLOW_TYPE, start);
        // Before this start leaves startsInFlight: the trade stays counted until its risk evaluation begins.
        opts.admission?.started?.(start.workflowId);
        stats.started++;
        if (handle.eagerlyStarted) stats.eagerStarts++;
        signalsReceived.inc({ outcome: 'started' });
        log.info({ workflow_id: start.workflowId, symbol: signal.symbol, side: signal.side }, 'trade workflow started');
        opts.onStarted?.(signal, start.workflowId);
        return undefined;
      } catch (err) {
        const verdict = classifyStartError(err);
        if (verdict.kind === 'duplicate') {
          stats.duplicates++;
          signalsReceived.inc({ outcome: 'duplicate' });
          log.info({ workflow_id: start.workflowId }, 'signal already has its trade; duplicate delivery acked');
          return undefined; // the one trade for this signal exists
        }
        if (verdict.kind === 'permanent') {
          stats.startRejected++;
          signalsReceived.inc({ outcome: 'refused' });
          log.error(
            { workflow_id: start.workflowId, grpc_status: verdict.status, reason: verdict.reason },
            'workflow start refused permanently; signal dead-lettered',
          );
          return `workflow start refused (${verdict.reason})`;
        }
        if (stopping.signal.aborted) throw err; // leave un-acked: redelivered after restart
        stats.startRetries++;
        const delay = backoffDelay(attempt, 250, opts.maxRetryDelayMs ?? 10_000);
        log.warn(
          { err, grpc_status: verdict.status, attempt: attempt + 1, retry_in_ms: delay },
          'workflow start failed (transient); retrying (message held un-acked)',
        );
        await sleep(delay, stopping.signal).catch(() => undefined);
      }
    }
  }
  return {
    stats,
    consumer,
    async stop() {
      stopping.abort();
      await consumer.cancel();
    },
  };
}

export interface RunningIntake {
  intake: IntakeHandle;
  rabbit: RabbitConnection;
  /** Connect to RabbitMQ and begin consuming (after the caller's health endpoints are up). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Intake on its own RabbitMQ connection, starting trades through `client`. The standalone process passes a
 * client over a gRPC Connection; the trade worker (INTAKE_IN_WORKER) passes one over its NativeConnection
 * with `eagerStart`, so the server hands the new trade's first workflow task straight back in the start
 * response to the worker in this process: no matching, no poll round trip. Same ids, same policies, same
 * ack-after-start: a start that cannot be eager (no free workflow-task slot) is an ordinary start.
 */
export function openIntake(
  cfg: Config,
  log: Logger,
  client: Client,
  opts: { prefetch?: number; eagerStart?: boolean; admission?: IntakeOptions['admission'] } = {},
): RunningIntake {
  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `signal-intake-${process.pid}`,
    logger: log,
    setup: topologySetup(cfg.rabbitmq),
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  let closing: Promise<void> | undefined;
  const intake = startIntake({
    rabbit,
    publisher,
    client,
    taskQueue: cfg.temporal.taskQueue,
    logger: log,
    prefetch: opts.prefetch ?? cfg.rabbitmq.signalPrefetch,
    // The consumer dead-letters with the reason no later than the broker would without one.
    maxAttempts: Math.min(20, cfg.rabbitmq.deliveryLimit),
    ...(opts.eagerStart ? { startOptions: eagerTradeStartOptions } : {}),
    ...(opts.admission ? { admission: opts.admission } : {}),
  });
  return {
    intake,
    rabbit,
    start: () => rabbit.start(),
    close() {
      closing ??= (async () => {
        await intake.stop();
        await publisher.close();
        await rabbit.close();
      })();
      return closing;
    },
  };
}

const USAGE = `Usage: tsx src/workers/signal-intake.ts [--prefetch N]

Consumes trade signals from the RabbitMQ queue intake.signals and starts one tradeWorkflowV2 per signal
(workflow id trade-<signal_id>; a message is one signal or a signal_batch) on the Temporal task queue
TEMPORAL_TASK_QUEUE. Malformed signals, and signals whose start Temporal refuses for good (unknown namespace, unregistered search attribute, payload too large,
permission denied), go to intake.signals.dlq with the reason in the x-rejection-reason header; a start that
fails for a passing reason (Temporal unavailable, overloaded, timing out) is retried with backoff.
Runs until SIGINT/SIGTERM.

Options:
  --prefetch N   un-acked signal messages, and workflow starts in flight; default SIGNAL_PREFETCH (32)
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
  const running = openIntake(cfg, log, client, { prefetch });
  const intake = running.intake;
  const ops = await startOps(cfg.ops, 'signal-intake', log, {
    ready: { rabbitmq: rabbitCheck(running.rabbit), temporal: temporalCheck(connection) },
  });
  await running.start();
  log.info({ prefetch, task_queue: cfg.temporal.taskQueue }, 'signal intake running');

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig, ...intake.stats }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await running.close();
  await connection.close();
  await ops.close();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    createLogger('signal-intake').fatal({ err }, 'signal intake failed');
    process.exit(1);
  });
}
