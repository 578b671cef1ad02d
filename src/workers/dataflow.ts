/**
 * Dataflow worker: replays real market data (a CSV of bars) to the `market.bars` exchange.
 *
 *   npm exec tsx src/workers/dataflow.ts -- [--file path] [--symbol NVDA] [--bars 300] [--start 0] [--follow]
 *
 * Every bar is a valid `Bar` (contracts/bar.ts) with a deterministic message_id (barMessageId: source + symbol +
 * interval + bar start) and correlation_id `corr-<message_id>`, so publishing the same file twice produces the
 * same messages: downstream recognises them (the quant re-uses the remembered outcome, signal ids repeat and the
 * intake starts no second workflow). Each publish waits for the broker's confirm; a failed publish is retried
 * with the same id (a duplicate is harmless, a gap is not).
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BarSchema, type Bar, type OhlcvBar } from '../contracts/bar';
import { barMessageId } from '../contracts/ids';
import { loadConfig } from '../config';
import { createLogger, type Logger } from '../logging';
import { parseBarsCsv, detectLayout } from '../adapters/marketdata/csv';
import {
  ConfirmPublisher,
  MARKET_BARS_EXCHANGE,
  PublishError,
  RabbitConnection,
  assertTopologyOn,
  backoffDelay,
  barRoutingKey,
  sleep,
} from '../adapters/rabbitmq';

export const REPLAY_SOURCE = 'replay';
/** The repository root (src/workers/ → ../..): REPLAY_FILE is relative to it. */
export const REPO_ROOT = resolve(__dirname, '..', '..');

/** OHLCV row → the `market.bars` message. Pure and deterministic. */
export function toBarMessage(b: OhlcvBar, interval: string, source = REPLAY_SOURCE): Bar {
  const timestamp = new Date(Date.parse(b.timestamp)).toISOString();
  const message_id = barMessageId(source, b.symbol, interval, timestamp);
  return BarSchema.parse({
    schema_version: 1,
    message_id,
    symbol: b.symbol,
    interval,
    timestamp,
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volume: b.volume,
    source,
    is_partial: false,
    correlation_id: `corr-${message_id}`,
  });
}

export interface LoadedReplay {
  bars: Bar[];
  interval: string;
  /** Rows in the file (before start/limit). */
  totalRows: number;
}

/** Read a CSV (daily → interval 1d, minute → 1m) and turn rows [start, start+count) into bar messages. */
export async function loadReplay(
  file: string,
  symbol: string,
  opts: { start?: number; count?: number } = {},
): Promise<LoadedReplay> {
  const text = await readFile(file, 'utf8');
  const layout = detectLayout(text.slice(0, text.search(/\r?\n/) >>> 0));
  const interval = layout === 'daily' ? '1d' : '1m';
  const rows = parseBarsCsv(text, { symbol });
  const start = opts.start ?? 0;
  const end = opts.count === undefined ? rows.length : start + opts.count;
  return { bars: rows.slice(start, end).map((r) => toBarMessage(r, interval)), interval, totalRows: rows.length };
}

export interface ReplayOptions {
  publisher: ConfirmPublisher;
  bars: readonly Bar[];
  /** Default `market.bars`. */
  exchange?: string;
  /** Pause between bars. 0 = as fast as confirms allow (pipelined, `window` in flight). */
  intervalMs?: number;
  /** Bars per batch (confirms in flight) when intervalMs is 0. Default 64. */
  window?: number;
  /** Consecutive failed attempts before giving up. Default 10. */
  maxAttempts?: number;
  logger?: Logger;
  /** Called after each confirmed bar (1-based count). */
  onProgress?: (published: number, bar: Bar) => void;
  signal?: AbortSignal;
}

export interface ReplaySummary {
  published: number;
  retries: number;
  elapsedMs: number;
  first?: string;
  last?: string;
}

/** Publish bars in order, each confirmed; on a failure resumes from the first unconfirmed bar (same ids). */
export async function replayBars(opts: ReplayOptions): Promise<ReplaySummary> {
  const exchange = opts.exchange ?? MARKET_BARS_EXCHANGE;
  const maxAttempts = opts.maxAttempts ?? 10;
  const intervalMs = opts.intervalMs ?? 0;
  const window = Math.max(1, opts.window ?? 64);
  const t0 = Date.now();
  let published = 0;
  let retries = 0;

  const send = (bar: Bar) =>
    opts.publisher.publishJson(exchange, barRoutingKey(bar.interval, bar.symbol), bar, {
      messageId: bar.message_id,
      correlationId: bar.correlation_id,
    });

  // Bars must reach the quant in time order (a bar older than one it has seen is treated as a duplicate), so a
  // failure never lets later bars overtake: send a batch in order, and on a failure resume — after a backoff —
  // from the FIRST unconfirmed bar, re-sending anything after it too (duplicates of confirmed bars are harmless,
  // same message ids; a gap or a reordering is not). intervalMs > 0 paces a batch of one, like a live feed.
  const batchSize = intervalMs > 0 ? 1 : window;
  let i = 0;
  let failures = 0;
  while (i < opts.bars.length && !opts.signal?.aborted) {
    const batch = opts.bars.slice(i, i + batchSize);
    // publishJson writes to the channel synchronously in call order, so a batch leaves in file order and its
    // confirms stream back while the next ones are written (temporal-guide C.2/C.3: streaming confirms).
    const results = await Promise.allSettled(batch.map(send));
    const firstFail = results.findIndex((r) => r.status === 'rejected');
    const ok = firstFail === -1 ? batch.length : firstFail;
    for (let k = 0; k < ok; k++) {
      published++;
      opts.onProgress?.(published, batch[k]!);
    }
    i += ok;
    if (firstFail === -1) {
      failures = 0;
      if (intervalMs > 0 && i < opts.bars.length) await sleep(intervalMs, opts.signal);
      continue;
    }
    const err = (results[firstFail] as PromiseRejectedResult).reason as unknown;
    failures++;
    if (!(err instanceof PublishError) || err.reason === 'closed' || failures >= maxAttempts) throw err;
    retries++;
    const delay = backoffDelay(failures - 1, 200, 5000);
    opts.logger?.warn(
      { err, attempt: failures, message_id: opts.bars[i]?.message_id, retry_in_ms: delay },
      'bar publish not confirmed; resuming from it',
    );
    await sleep(delay, opts.signal);
  }
  return {
    published,
    retries,
    elapsedMs: Date.now() - t0,
    first: published > 0 ? opts.bars[0]?.timestamp : undefined,
    last: published > 0 ? opts.bars[published - 1]?.timestamp : undefined,
  };
}

const USAGE = `Usage: tsx src/workers/dataflow.ts [options]

Replays real market data from a CSV file to the RabbitMQ exchange market.bars (routing key
bars.<interval>.<symbol>), one confirmed, persistent message per bar, then prints a summary and exits.

Options (defaults from the environment):
  --file <path>          CSV (Date,Open,High,Low,Close,Adj Close,Volume or the 1-minute layout), relative to
                         the repository root; default REPLAY_FILE (../shared/data/nvda-1999-2014.csv)
  --symbol <ticker>      symbol stamped on the bars; default REPLAY_SYMBOL (NVDA)
  --bars <n>             how many bars; default REPLAY_BARS (300); 0 = to the end of the file
  --start <n>            skip the first n rows of the file; default 0
  --interval-ms <ms>     pause between bars; default REPLAY_INTERVAL_MS (50); 0 = as fast as confirms allow
  --progress-every <n>   progress line every n bars; default 50
  --follow               when done, start over from --start (same message ids: downstream dedupes); until SIGINT
  -h, --help             this help

MARKET_DATA_SOURCE must be 'replay' (polygon is not implemented in this build).
Connection: RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_USER, RABBITMQ_PASS, RABBITMQ_VHOST.
`;

function intArg(name: string, v: string | undefined, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      file: { type: 'string' },
      symbol: { type: 'string' },
      bars: { type: 'string' },
      start: { type: 'string' },
      'interval-ms': { type: 'string' },
      'progress-every': { type: 'string' },
      follow: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const cfg = loadConfig();
  if (cfg.env.MARKET_DATA_SOURCE !== 'replay') {
    throw new Error(
      `MARKET_DATA_SOURCE=${cfg.env.MARKET_DATA_SOURCE} is not implemented in this build; use MARKET_DATA_SOURCE=replay`,
    );
  }
  const log = createLogger('dataflow', { level: cfg.logLevel });
  const fileArg = values.file ?? cfg.env.REPLAY_FILE;
  const file = isAbsolute(fileArg) ? fileArg : resolve(REPO_ROOT, fileArg);
  const symbol = (values.symbol ?? cfg.env.REPLAY_SYMBOL).toUpperCase();
  const count = intArg('bars', values.bars, cfg.env.REPLAY_BARS);
  const start = intArg('start', values.start, 0);
  const intervalMs = intArg('interval-ms', values['interval-ms'], cfg.env.REPLAY_INTERVAL_MS);
  const every = intArg('progress-every', values['progress-every'], 50, 1);

  const replay = await loadReplay(file, symbol, { start, count: count === 0 ? undefined : count });
  if (replay.bars.length === 0) throw new Error(`no bars: ${file} has ${replay.totalRows} rows, --start ${start}`);
  log.info(
    { file, symbol, interval: replay.interval, bars: replay.bars.length, start, interval_ms: intervalMs },
    'replay loaded',
  );

  const stop = new AbortController();
  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    name: `dataflow-${process.pid}`,
    logger: log,
    setup: assertTopologyOn,
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true;
      log.info({ signal: sig }, 'stopping after the bars in flight are confirmed');
      stop.abort();
    });
  }
  let total = 0;
  let rounds = 0;
  try {
    await rabbit.start();
    do {
      rounds++;
      const summary = await replayBars({
        publisher,
        bars: replay.bars,
        intervalMs,
        logger: log,
        signal: stop.signal,
        onProgress: (n, bar) => {
          if (n % every === 0 || n === replay.bars.length) {
            process.stdout.write(
              `published ${n}/${replay.bars.length} ${bar.symbol} ${bar.timestamp.slice(0, 10)} close=${bar.close}\n`,
            );
          }
        },
      });
      total += summary.published;
      const rate = summary.elapsedMs > 0 ? (summary.published / summary.elapsedMs) * 1000 : 0;
      process.stdout.write(
        `summary: round ${rounds}: ${summary.published} bars of ${symbol} ${replay.interval} (${summary.first?.slice(0, 10)} .. ${summary.last?.slice(0, 10)}) ` +
          `to ${MARKET_BARS_EXCHANGE} in ${(summary.elapsedMs / 1000).toFixed(1)} s (${rate.toFixed(0)} bars/s), ${summary.retries} retries, all confirmed\n`,
      );
    } while (values.follow && !stop.signal.aborted);
  } finally {
    await publisher.close();
    await rabbit.close();
  }
  if (interrupted) process.stdout.write(`interrupted: ${total} bars published and confirmed\n`);
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`dataflow: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
