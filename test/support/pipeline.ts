import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import {
  ConfirmPublisher,
  INTAKE_SIGNALS_QUEUE,
  MARKET_BARS_EXCHANGE,
  RabbitConnection,
  TRADE_SIGNALS_EXCHANGE,
  assertConsumerQueue,
  assertTopologyOn,
  barRoutingKey,
  signalRoutingKey,
  withChannel,
} from '../../src/adapters/rabbitmq';
import { EPHEMERAL_OPS_ENV, parseEnv } from '../../src/config';
import type { Bar } from '../../src/contracts/bar';
import { barMessageId } from '../../src/contracts/ids';
import type { TradeSignalInput } from '../../src/contracts/signal';
import { createLogger } from '../../src/logging';
import { EXCHANGE_BARS_QUEUE } from '../../src/workers/exchange-sim';
import { createTestDatabase, type TestDatabase } from './pg';
import { devServerAddress, uniqueTaskQueue } from './temporal';

/**
 * The real pipeline processes (simulated venue, trade worker, signal intake) as child processes on the real
 * servers, isolated per test file by a fresh database, a private task queue, a private venue port and a private
 * RabbitMQ vhost.
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

export interface RunningService {
  name: ServiceName;
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export class PipelineHarness {
  readonly services = new Map<ServiceName, RunningService>();
  private constructor(
    readonly db: TestDatabase,
    readonly taskQueue: string,
    readonly simPort: number,
    readonly env: NodeJS.ProcessEnv,
    readonly connection: Connection,
    readonly client: Client,
    readonly rabbit: RabbitConnection,
    readonly publisher: ConfirmPublisher,
  ) {}

  /** `opts.db`: a database of the caller's (e.g. on a private server the test restarts); default a fresh one. */
  static async create(
    extraEnv: Record<string, string> = {},
    opts: { db?: TestDatabase } = {},
  ): Promise<PipelineHarness> {
    const db = opts.db ?? (await createTestDatabase('sat_e2e'));
    const taskQueue = uniqueTaskQueue('e2e');
    const simPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...(await createPrivateVhost(taskQueue)),
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
      setup: assertTopologyOn,
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
    fs.mkdirSync(LOG_DIR, { recursive: true });
    return new PipelineHarness(db, taskQueue, simPort, env, connection, client, rabbit, publisher);
  }

  /** Start a service and wait until it says it is ready. */
  async start(name: ServiceName, timeoutMs = 90_000): Promise<RunningService> {
    const { script, ready } = SCRIPTS[name];
    // Node itself with tsx's hooks, not the tsx CLI: the CLI runs the script in a grandchild process, so a
    // SIGKILL of the CLI (which cannot relay it) would leave the real service running as an orphan.
    // Its own process group (detached), so stop() can signal the whole tree: a crash test's SIGKILL must take
    // down anything the service started too, never leave a child running on (issue 8: a `tsx` wrapper's
    // child survives a kill of the wrapper).
    const child = spawn(process.execPath, ['--require', 'tsx/preflight', '--import', 'tsx', path.join(ROOT, script)], {
      cwd: ROOT,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    const logFile = fs.createWriteStream(path.join(LOG_DIR, `${this.taskQueue}-${name}.log`), { flags: 'a' });
    const onData = (d: Buffer) => {
      out += d.toString();
      logFile.write(d);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    // The log closes with the child's pipes ('close' comes after the last output), not at 'exit'.
    child.on('close', () => logFile.end());
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const svc: RunningService = { name, child, exited, output: () => out };
    this.services.set(name, svc);
    const t0 = Date.now();
    while (!ready.test(out)) {
      if (child.exitCode !== null)
        throw new Error(`${name} exited (${child.exitCode}) before ready:\n${out.slice(-3000)}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`${name} not ready after ${timeoutMs} ms:\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return svc;
  }

  /** Base URL of a running service's /metrics, /healthz, /readyz endpoint (a free port, from its log). */
  opsUrl(name: ServiceName): string {
    const out = this.services.get(name)?.output() ?? '';
    let url: string | undefined;
    for (const line of out.split('\n')) {
      if (!line.includes('ops endpoint listening')) continue;
      try {
        url = (JSON.parse(line) as { url?: string }).url ?? url;
      } catch {
        // not a log line
      }
    }
    if (!url) throw new Error(`${name} has not logged its ops endpoint`);
    return url;
  }

  /**
   * kill -9 (crash) or SIGTERM (graceful), and wait for the exit. The signal goes to the service's whole
   * process group (`kill -SIG -pgid`): with SIGKILL nothing of the service survives, whatever it spawned.
   */
  async stop(name: ServiceName, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const svc = this.services.get(name);
    if (!svc || svc.child.exitCode !== null || svc.child.signalCode !== null) return;
    killGroup(svc.child, signal);
    await svc.exited;
    // A graceful stop lets the leader exit first; whatever it left behind in its group goes now.
    if (signal !== 'SIGKILL') killGroup(svc.child, 'SIGKILL');
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
    if (this.env.SAT_TEST_PRIVATE_VHOST) await managementRequest('DELETE', vhostPath(this.env.SAT_TEST_PRIVATE_VHOST));
  }
}

/** Signal a detached child's process group (its pid is the group id); no-op when the group is gone. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * A RabbitMQ vhost of the harness's own, so its queues (intake.signals, exchange.bars) are not shared with
 * another test run, a benchmark or `npm start` on the same broker: they would otherwise consume each other's
 * signals and bars. Created through the management API; without it, the configured (shared) vhost is used.
 */
export async function createPrivateVhost(taskQueue: string): Promise<Record<string, string>> {
  const vhost = `sat-test-${taskQueue}`;
  const cfg = parseEnv(process.env);
  const ok =
    (await managementRequest('PUT', vhostPath(vhost))) &&
    (await managementRequest(
      'PUT',
      `/api/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(cfg.rabbitmq.user)}`,
      { configure: '.*', write: '.*', read: '.*' },
    ));
  return ok ? { RABBITMQ_VHOST: vhost, SAT_TEST_PRIVATE_VHOST: vhost } : {};
}

const vhostPath = (vhost: string) => `/api/vhosts/${encodeURIComponent(vhost)}`;

export async function dropPrivateVhost(vhost: string): Promise<void> {
  await managementRequest('DELETE', vhostPath(vhost));
}

async function managementRequest(method: string, apiPath: string, body?: unknown): Promise<boolean> {
  const cfg = parseEnv(process.env);
  const auth = Buffer.from(`${cfg.rabbitmq.user}:${cfg.env.RABBITMQ_PASS}`).toString('base64');
  try {
    const res = await fetch(`http://${cfg.rabbitmq.host}:${cfg.rabbitmq.managementPort}${apiPath}`, {
      method,
      headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return res.ok;
  } catch {
    return false;
  }
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
