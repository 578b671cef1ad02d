import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import {
  ConfirmPublisher,
  INTAKE_SIGNALS_QUEUE,
  MARKET_BARS_EXCHANGE,
  RabbitConnection,
  TRADE_SIGNALS_EXCHANGE,
  assertConsumerQueue,
  RabbitManagement,
  topologySetup,
  barRoutingKey,
  signalRoutingKey,
  withChannel,
} from '../../src/adapters/rabbitmq';
import { EPHEMERAL_OPS_ENV, parseEnv } from '../../src/config';
import type { Bar } from '../../src/contracts/bar';
import { barMessageId } from '../../src/contracts/ids';
import type { TradeSignalInput } from '../../src/contracts/signal';
import { createLogger } from '../../src/logging';
import { ServiceRunner, freePort, type ServiceProcess } from '../../src/cli/service-runner';
import { EXCHANGE_BARS_QUEUE } from '../../src/workers/exchange-sim';
import { createTestDatabase, type TestDatabase } from './pg';
import { devServerAddress, uniqueTaskQueue } from './temporal';

/**
 * The real pipeline processes (simulated venue, trade worker, signal intake) as child processes on the real
 * servers, isolated per test file by a fresh database, a private task queue, a private venue port and a private
 * RabbitMQ vhost. As in production, the trade worker runs the signal intake by default (INTAKE_IN_WORKER); a
 * test of the scale-out layout creates the harness with INTAKE_IN_WORKER=false and starts `signal-intake`.
 * Used by the end-to-end and fault-injection tests: processes can be killed (-9) and restarted.
 */

const ROOT = path.resolve(__dirname, '../..');
export const LOG_DIR = path.join(ROOT, '.data/test-logs');

export type ServiceName = 'exchange-sim' | 'trade-worker' | 'signal-intake' | 'quant' | 'bar-store';
const SCRIPTS: Record<ServiceName, { script: string; ready: RegExp }> = {
  'exchange-sim': { script: 'src/workers/exchange-sim.ts', ready: /simulated exchange listening/ },
  'trade-worker': { script: 'src/workers/trade-worker.ts', ready: /trade worker running/ },
  'signal-intake': { script: 'src/workers/signal-intake.ts', ready: /signal intake running/ },
  quant: { script: 'src/workers/quant.ts', ready: /quant running/ },
  'bar-store': { script: 'src/workers/bar-store.ts', ready: /bar store running/ },
};

export type RunningService = ServiceProcess<ServiceName>;

export { freePort };

export class PipelineHarness {
  /** The services by name; a restart replaces the entry with the new process. */
  readonly services: Map<ServiceName, RunningService>;
  private readonly runner: ServiceRunner<ServiceName>;
  private constructor(
    readonly db: TestDatabase,
    readonly taskQueue: string,
    readonly simPort: number,
    readonly env: NodeJS.ProcessEnv,
    readonly connection: Connection,
    readonly client: Client,
    readonly rabbit: RabbitConnection,
    readonly publisher: ConfirmPublisher,
  ) {
    // Logs survive the test: <LOG_DIR>/<task queue>-<service>.log, appended across restarts.
    this.runner = new ServiceRunner<ServiceName>({
      logDir: LOG_DIR,
      logName: (name) => `${taskQueue}-${name}.log`,
      env,
      cwd: ROOT,
    });
    this.services = this.runner.services;
  }

  /** `opts.db`: a database of the caller's (e.g. on a private server the test restarts); default a fresh one. */
  static async create(
    extraEnv: Record<string, string> = {},
    opts: { db?: TestDatabase } = {},
  ): Promise<PipelineHarness> {
    const db = opts.db ?? (await createTestDatabase('sat_e2e'));
    const taskQueue = uniqueTaskQueue('e2e');
    const simPort = await freePort();
    // The vhost is made on the broker the processes will use (a test's private node when extraEnv names one).
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...(await createPrivateVhost(taskQueue, { ...process.env, ...extraEnv })),
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: devServerAddress(),
      TEMPORAL_TASK_QUEUE: taskQueue,
      SIM_EXCHANGE_PORT: String(simPort),
      WORKER_SHUTDOWN_GRACE_MS: '2000',
      LOG_LEVEL: 'info',
      ...EPHEMERAL_OPS_ENV,
      ...extraEnv,
    };
    const cfg = parseEnv(env);
    const connection = await Connection.connect({ address: cfg.temporal.address });
    const client = new Client({ connection, namespace: cfg.temporal.namespace });
    const logger = createLogger('test-harness', { level: 'warn' });
    const rabbit = new RabbitConnection({
      url: cfg.rabbitmq.url,
      name: `test-harness-${process.pid}`,
      logger,
      setup: topologySetup(cfg.rabbitmq),
    });
    const publisher = new ConfirmPublisher(rabbit, { logger });
    await rabbit.start();
    // The venue's bar queue exists before the venue starts (declared exactly as the venue declares it), and
    // nothing an earlier run left is in the way (matters only when the shared vhost is in use).
    await withChannel(rabbit.connection!, async (ch) => {
      await assertConsumerQueue(ch, {
        queue: EXCHANGE_BARS_QUEUE,
        exchange: MARKET_BARS_EXCHANGE,
        bindingKeys: ['bars.#'],
      });
      for (const q of [INTAKE_SIGNALS_QUEUE, EXCHANGE_BARS_QUEUE]) await ch.purgeQueue(q).catch(() => undefined);
    });
    return new PipelineHarness(db, taskQueue, simPort, env, connection, client, rabbit, publisher);
  }

  /** Start a service (a new process of the real entry point) and wait until it says it is ready. */
  async start(name: ServiceName, timeoutMs = 90_000): Promise<RunningService> {
    // By default the trade worker runs the intake (INTAKE_IN_WORKER, eager workflow start); a second consumer
    // of intake.signals would change what a test observes, so a separate intake must be asked for.
    if (name === 'signal-intake' && parseEnv(this.env).rabbitmq.intakeInWorker) {
      throw new Error(
        'signal-intake as its own process needs PipelineHarness.create({ INTAKE_IN_WORKER: "false" }): ' +
          'by default the trade worker runs the intake',
      );
    }
    const { script, ready } = SCRIPTS[name];
    const svc = this.runner.start(name, { script: path.join(ROOT, script) });
    await svc.waitReady({ line: ready, timeoutMs });
    return svc;
  }

  /** Base URL of a running service's /metrics, /healthz, /readyz endpoint (a free port, from its log). */
  opsUrl(name: ServiceName): string {
    const url = this.services.get(name)?.opsUrl();
    if (!url) throw new Error(`${name} has not logged its ops endpoint`);
    return url;
  }

  /**
   * kill -9 (crash) or SIGTERM (graceful), and wait for the exit. The signal goes to the service's whole
   * process group (`kill -SIG -pgid`): with SIGKILL nothing of the service survives, whatever it spawned
   * (issue 8: a `tsx` wrapper's child survived a kill of the wrapper).
   */
  async stop(name: ServiceName, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.services.get(name)?.stop({ signal });
  }

  async publishSignal(signal: TradeSignalInput): Promise<void> {
    await this.publisher.publishJson(TRADE_SIGNALS_EXCHANGE, signalRoutingKey(signal.strategy, signal.symbol), signal, {
      messageId: signal.signal_id,
      correlationId: signal.correlation_id,
    });
  }

  async publishRaw(body: string, messageId: string): Promise<void> {
    await this.publisher.publish(TRADE_SIGNALS_EXCHANGE, 'signal.test.BAD', Buffer.from(body), {
      messageId,
      correlationId: messageId,
      contentType: 'application/json',
    });
  }

  /** Publish a bar for the venue (and any quant) to match against. */
  async publishBar(
    b: Omit<Bar, 'schema_version' | 'message_id' | 'correlation_id' | 'source' | 'is_partial' | 'interval'>,
  ): Promise<void> {
    const message_id = barMessageId('test', b.symbol, '1d', b.timestamp);
    const bar: Bar = {
      schema_version: 1,
      message_id,
      correlation_id: `corr-${message_id}`,
      source: 'test',
      is_partial: false,
      interval: '1d',
      ...b,
    };
    await this.publisher.publishJson(MARKET_BARS_EXCHANGE, barRoutingKey('1d', b.symbol), bar, {
      messageId: message_id,
      correlationId: bar.correlation_id,
    });
  }

  async close(): Promise<void> {
    for (const name of ['bar-store', 'quant', 'signal-intake', 'trade-worker', 'exchange-sim'] as const) {
      await this.stop(name);
    }
    await this.publisher.close().catch(() => undefined);
    await this.rabbit.close().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
    await this.db.drop().catch(() => undefined);
    if (this.env.SAT_TEST_PRIVATE_VHOST) await dropPrivateVhost(this.env.SAT_TEST_PRIVATE_VHOST, this.env);
  }
}

/**
 * A RabbitMQ vhost of the harness's own, so its queues (intake.signals, exchange.bars) are not shared with
 * another test run, a benchmark or `npm start` on the same broker: they would otherwise consume each other's
 * signals and bars. Created through the management API; without it, the configured (shared) vhost is used.
 */
export async function createPrivateVhost(
  taskQueue: string,
  brokerEnv: NodeJS.ProcessEnv = process.env,
): Promise<Record<string, string>> {
  const vhost = `sat-test-${taskQueue}`;
  try {
    await RabbitManagement.fromConfig(parseEnv(brokerEnv).rabbitmq).createVhost(vhost, 'test (temporary)');
    return { RABBITMQ_VHOST: vhost, SAT_TEST_PRIVATE_VHOST: vhost };
  } catch {
    return {};
  }
}

export async function dropPrivateVhost(vhost: string, brokerEnv: NodeJS.ProcessEnv = process.env): Promise<void> {
  await RabbitManagement.fromConfig(parseEnv(brokerEnv).rabbitmq)
    .deleteVhost(vhost)
    .catch(() => undefined);
}

let seq = 0;
/** A valid signal with a unique id. */
export function testSignal(overrides: Partial<TradeSignalInput> = {}): TradeSignalInput {
  seq++;
  const id = `e2e-${Date.now().toString(36)}-${process.pid}-${seq}`;
  return {
    signal_id: id,
    correlation_id: `corr-${id}`,
    symbol: 'NVDA',
    side: 'buy',
    price: 20,
    confidence: 0.9,
    strategy: 'e2e',
    created_at: new Date(Date.UTC(2014, 0, 2) + seq * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...overrides,
  };
}
