/**
 * Bar store: consumes every bar from `store.bars` and upserts it into `market_bars`, where RiskOps reads
 * realised volatility and the ATR stop (risk-store.ts loadRecentBars).
 *
 *   tsx src/workers/bar-store.ts [--prefetch 500] [--batch 500] [--flush-ms 20]
 *
 * A message is acked only after the transaction holding its bars has committed (ack-after-commit): a crash or
 * a database outage loses nothing, the broker redelivers, and the upsert (unique per symbol, interval and
 * bar start) makes a redelivery, a replay or an overlapping backfill land once. Single bars and bar batches
 * (contracts/bar.ts BarBatchSchema) are both accepted. A body that is not a valid bar is dead-lettered to
 * `store.bars.dlq` with the reason.
 *
 * Deliveries are grouped: up to `--batch` bars (or whatever arrived within `--flush-ms`) are written in one
 * statement, so the store keeps up with a replay at full speed.
 */
import { parseArgs } from 'node:util';
import type { Pool } from 'pg';
import { barsOfMessage, type Bar } from '../contracts/bar';
import { formatZodError } from '../contracts/signal';
import { loadConfig } from '../config';
import { createLogger, type Logger } from '../logging';
import { createPool } from '../adapters/postgres/pool';
import { upsertBars } from '../adapters/postgres/bars';
import {
  ConfirmPublisher,
  RabbitConnection,
  STORE_BARS_QUEUE,
  topologySetup,
  consumeJson,
  type ConsumerHandle,
} from '../adapters/rabbitmq';
import { barsReceived } from '../metrics';
import { postgresCheck, rabbitCheck, startOps } from './ops';
import { intArg } from '../config/cli-args';

export interface BarStoreStats {
  /** Bars written (upserted) to market_bars, including re-deliveries. */
  stored: number;
  /** Messages carrying more than one bar. */
  batches: number;
  /** Statements (flushes). */
  flushes: number;
  invalid: number;
}

export interface BarStoreOptions {
  rabbit: RabbitConnection;
  publisher: ConfirmPublisher;
  pool: Pool;
  queue?: string;
  logger?: Logger;
  prefetch?: number;
  /** Flush when this many bars are waiting. Default 500. */
  batchBars?: number;
  /** Flush at the latest this long after the first waiting bar. Default 20 ms. */
  flushMs?: number;
}

export interface BarStoreHandle {
  readonly stats: Readonly<BarStoreStats>;
  readonly consumer: ConsumerHandle;
  stop(): Promise<void>;
}

interface Waiting {
  bars: Bar[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Group concurrent writes into one upsert; each caller resolves when its bars are committed. */
class BarWriter {
  private waiting: Waiting[] = [];
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: Pool,
    private readonly batchBars: number,
    private readonly flushMs: number,
    private readonly stats: BarStoreStats,
  ) {}

  write(bars: Bar[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ bars, resolve, reject });
      this.count += bars.length;
      if (this.count >= this.batchBars) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const group = this.waiting;
    this.waiting = [];
    this.count = 0;
    if (group.length === 0) return;
    // One statement at a time: a later copy of a bar never races an earlier one.
    this.chain = this.chain.then(async () => {
      try {
        const bars = group.flatMap((w) => w.bars);
        await upsertBars(this.pool, bars);
        this.stats.stored += bars.length;
        this.stats.flushes++;
        for (const w of group) w.resolve();
      } catch (err) {
        for (const w of group) w.reject(err);
      }
    });
  }
}

export function startBarStore(opts: BarStoreOptions): BarStoreHandle {
  const log = opts.logger ?? createLogger('bar-store');
  const stats: BarStoreStats = { stored: 0, batches: 0, flushes: 0, invalid: 0 };
  const writer = new BarWriter(opts.pool, opts.batchBars ?? 500, opts.flushMs ?? 20, stats);
  const consumer = consumeJson(
    opts.rabbit,
    opts.queue ?? STORE_BARS_QUEUE,
    { prefetch: opts.prefetch ?? 500, publisher: opts.publisher, logger: log, maxAttempts: 20, retryDelayMs: 500 },
    async (ctx) => {
      const m = barsOfMessage(ctx.body);
      if (!m.ok) {
        stats.invalid++;
        await ctx.deadLetter(`invalid bar: ${formatZodError(m.error)}`);
        return;
      }
      if (m.batched) stats.batches++;
      for (const b of m.bars) {
        barsReceived.inc({ symbol: b.symbol });
        log.debug({ correlation_id: b.correlation_id, symbol: b.symbol, bar_ts: b.timestamp }, 'bar received');
      }
      // Throws on a database error → consumeJson requeues with backoff; acked only after the commit.
      await writer.write(m.bars);
    },
  );
  return { stats, consumer, stop: () => consumer.cancel() };
}

const USAGE = `Usage: tsx src/workers/bar-store.ts [options]

Consumes every bar from the RabbitMQ queue ${STORE_BARS_QUEUE} (bound to market.bars bars.#), single or batched,
and upserts it into the PostgreSQL table market_bars (unique per symbol, interval and bar start), where
RiskOps reads realised volatility and the ATR stop. Runs until SIGINT/SIGTERM.

Options:
  --prefetch <n>      un-acked messages in flight; default 500
  --batch <n>         bars per upsert statement; default 500
  --flush-ms <ms>     longest wait before writing a partial group; default 20
  --stats-every <s>   log counters every s seconds (0 = never); default 30
  -h, --help          this help

Connection: DATABASE_URL, RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_USER, RABBITMQ_PASS, RABBITMQ_VHOST.
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      prefetch: { type: 'string' },
      batch: { type: 'string' },
      'flush-ms': { type: 'string' },
      'stats-every': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const cfg = loadConfig();
  const log = createLogger('bar-store', { level: cfg.logLevel });
  const pool = createPool(cfg.databaseUrl, 4);
  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `bar-store-${process.pid}`,
    logger: log,
    setup: topologySetup(cfg.rabbitmq),
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  const store = startBarStore({
    rabbit,
    publisher,
    pool,
    logger: log,
    prefetch: intArg('prefetch', values.prefetch, 500, 1),
    batchBars: intArg('batch', values.batch, 500, 1),
    flushMs: intArg('flush-ms', values['flush-ms'], 20, 0),
  });
  const ops = await startOps(cfg.ops, 'bar-store', log, {
    ready: { rabbitmq: rabbitCheck(rabbit), postgres: postgresCheck(pool) },
  });
  await rabbit.start();
  await store.consumer.ready();
  log.info({ queue: STORE_BARS_QUEUE }, 'bar store running');
  const statsEvery = intArg('stats-every', values['stats-every'], 30, 0);
  const timer =
    statsEvery > 0
      ? setInterval(
          () => log.info({ ...store.stats, consumer: store.consumer.stats }, 'bar store stats'),
          statsEvery * 1000,
        )
      : undefined;
  timer?.unref();
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  if (timer) clearInterval(timer);
  await store.stop();
  await publisher.close();
  await rabbit.close();
  await pool.end();
  await ops.close();
  log.info({ ...store.stats, consumer: store.consumer.stats }, 'bar store stopped');
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bar-store: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
