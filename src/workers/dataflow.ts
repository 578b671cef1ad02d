/**
 * Dataflow worker: replays real market data (a CSV of bars) to the `market.bars` exchange.
 *
 *   npm exec tsx src/workers/dataflow.ts -- [--file path] [--symbol NVDA] [--bars 300] [--start 0] [--follow]
 *
 * Every bar is a valid `Bar` (contracts/bar.ts) with a deterministic message_id (barMessageId: source + symbol +
 * interval + bar start) and correlation_id `corr-<message_id>`, so publishing the same file twice produces the
 * same messages: downstream recognises them (the quant re-uses the remembered outcome, signal ids repeat and the
 * intake starts no second workflow). Each publish waits for the broker's confirm; a failed publish is retried
 * with the same id (a duplicate is harmless, a gap is not): src/services/bar-publishing.ts.
 */
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TickerSchema } from '../contracts/bar';
import { loadConfig, type Config } from '../config';
import { intArg } from '../config/cli-args';
import { createLogger, type Logger } from '../logging';
import { BarValidator } from '../domain/marketdata/validation';
import { gbmBars, intervalMs } from '../domain/marketdata/synthetic';
import {
  loadReplay,
  loadWatchlistReplay,
  mergeByTime,
  toBarMessage,
  type WatchlistReplay,
} from '../adapters/marketdata/replay';
import { PolygonRestClient } from '../adapters/marketdata/polygon/rest';
import { ConfirmPublisher, MARKET_BARS_EXCHANGE, RabbitConnection, topologySetup } from '../adapters/rabbitmq';
import { dropInvalidBars, replayBars } from '../services/bar-publishing';
import { MarketFeed, type FeedSource } from '../services/market-feed';
import { replaySource, restPollingSource, websocketSource } from '../services/market-sources';
import { rabbitCheck, startOps } from './ops';

export { REPLAY_SOURCE, toBarMessage, loadReplay, type LoadedReplay } from '../adapters/marketdata/replay';

/** The repository root (src/workers/ → ../..): REPLAY_DATA_DIR and --file are relative to it. */
export const REPO_ROOT = resolve(__dirname, '..', '..');

const USAGE = `Usage: tsx src/workers/dataflow.ts [options]

Replays recorded market data for a watchlist to the RabbitMQ exchange market.bars (routing key
bars.<interval>.<symbol>): every symbol's bars interleaved by time, one confirmed, persistent message per
bar; impossible bars are logged, counted and skipped. Prints progress and a summary, then exits.

Options (defaults from the environment):
  --symbols <A,B>        tickers; default WATCHLIST (NVDA,ORCL); each replays REPLAY_DATA_DIR/<ticker>-*.csv
  --file <path>          replay this CSV instead (one symbol only), relative to the repository root
  --from <YYYY-MM-DD>    first bar date; default REPLAY_FROM (start of each file)
  --bars <n>             bars per symbol; default REPLAY_BARS (300); 0 = to the end of the file
  --start <n>            with --file: skip the first n rows
  --interval-ms <ms>     pause between bars; default REPLAY_INTERVAL_MS (50); 0 = as fast as confirms allow
  --speed <x>            speed factor against market time (1 = real time, 0 = as fast as possible);
                         default REPLAY_SPEED; overrides --interval-ms
  --batch <n>            bars of one symbol per message when not paced; default BAR_BATCH_SIZE (1)
  --progress-every <n>   progress line every n bars; default 50
  --follow               when done, start over (same message ids: downstream dedupes); until SIGINT
  -h, --help             this help

MARKET_DATA_SOURCE selects the source: replay (recorded bars), synthetic (seeded geometric Brownian motion,
SYNTHETIC_*; --bars per symbol from --from) or polygon: the live feed, MARKET_DATA_FALLBACK chain
(websocket → rest → replay) with backoff, circuit breakers, probing and REST gap fills; runs until SIGINT.
Connection: RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_USER, RABBITMQ_PASS, RABBITMQ_VHOST.
`;

function symbolsArg(v: string): string[] {
  const out = v
    .split(',')
    .map((t) => t.trim().toUpperCase())
    .filter((t) => t !== '');
  for (const t of out) {
    if (!TickerSchema.safeParse(t).success) throw new Error(`--symbols: "${t}" is not a ticker`);
  }
  if (out.length === 0) throw new Error('--symbols: at least one ticker');
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      symbols: { type: 'string' },
      symbol: { type: 'string' },
      file: { type: 'string' },
      from: { type: 'string' },
      bars: { type: 'string' },
      start: { type: 'string' },
      'interval-ms': { type: 'string' },
      speed: { type: 'string' },
      'progress-every': { type: 'string' },
      batch: { type: 'string' },
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
  const df = cfg.dataflow;
  if (df.source === 'polygon') return runLive(cfg, createLogger('dataflow', { level: cfg.logLevel }), values);
  const log = createLogger('dataflow', { level: cfg.logLevel });
  const symbols = symbolsArg(values.symbols ?? values.symbol ?? df.watchlist.join(','));
  const count = intArg('bars', values.bars, df.replay.barsPerSymbol);
  const start = intArg('start', values.start, 0);
  const from = values.from ?? df.replay.from;
  if (from !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(from))
    throw new Error(`--from must be YYYY-MM-DD, got "${from}"`);
  const pauseMs = intArg('interval-ms', values['interval-ms'], df.replay.intervalMs);
  const batchSize = intArg('batch', values.batch, df.batchSize, 1);
  const speedRaw = values.speed ?? (df.replay.speed === undefined ? undefined : String(df.replay.speed));
  const speed = speedRaw === undefined ? undefined : Number(speedRaw);
  if (speed !== undefined && !(Number.isFinite(speed) && speed >= 0)) {
    throw new Error(`--speed must be a number >= 0, got "${speedRaw}"`);
  }
  const every = intArg('progress-every', values['progress-every'], 50, 1);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(REPO_ROOT, p));

  let replay: WatchlistReplay;
  if (df.source === 'synthetic') {
    const n = count === 0 ? 300 : count;
    const startMs = Date.parse(`${from ?? '2024-01-02'}T00:00:00Z`);
    const series = symbols.map((symbol, k) =>
      gbmBars({
        symbol,
        seed: df.synthetic.seed + k,
        startPrice: df.synthetic.startPrice,
        drift: df.synthetic.drift,
        volatility: df.synthetic.volatility,
        startMs,
        stepMs: intervalMs(df.interval),
        count: n,
      }).map((b) => toBarMessage(b, df.interval, 'synthetic')),
    );
    replay = {
      bars: mergeByTime(series),
      interval: df.interval,
      files: {},
      perSymbol: Object.fromEntries(symbols.map((sy) => [sy, n])),
    };
  } else if (values.file !== undefined) {
    if (symbols.length !== 1) throw new Error('--file replays one symbol: pass --symbols with exactly one ticker');
    const file = abs(values.file);
    const r = await loadReplay(file, symbols[0]!, {
      start,
      ...(from ? { from } : {}),
      count: count === 0 ? undefined : count,
    });
    replay = {
      bars: r.bars,
      interval: r.interval,
      files: { [symbols[0]!]: file },
      perSymbol: { [symbols[0]!]: r.bars.length },
    };
  } else {
    replay = await loadWatchlistReplay(abs(df.replay.dataDir), symbols, {
      ...(from ? { from } : {}),
      barsPerSymbol: count,
    });
  }
  if (replay.interval !== df.interval) {
    throw new Error(
      `DATA_INTERVAL=${df.interval} but the recorded bars are ${replay.interval}: set DATA_INTERVAL=${replay.interval}`,
    );
  }
  const validator = new BarValidator();
  const bars = dropInvalidBars(replay.bars, validator, log);
  if (bars.length === 0) throw new Error(`no bars to replay for ${symbols.join(',')} (from ${from ?? 'start'})`);
  log.info(
    {
      files: replay.files,
      per_symbol: replay.perSymbol,
      interval: replay.interval,
      bars: bars.length,
      skipped_invalid: validator.rejected,
      from,
      interval_ms: pauseMs,
      speed,
      batch: batchSize,
      source: df.source,
    },
    'replay loaded',
  );

  const stop = new AbortController();
  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `dataflow-${process.pid}`,
    logger: log,
    setup: topologySetup(cfg.rabbitmq),
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  const ops = await startOps(cfg.ops, 'dataflow', log, { ready: { rabbitmq: rabbitCheck(rabbit) } });
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
        bars,
        intervalMs: pauseMs,
        batchSize,
        ...(speed !== undefined ? { speed } : {}),
        logger: log,
        signal: stop.signal,
        onProgress: (n, bar) => {
          if (n % every === 0 || n === bars.length) {
            process.stdout.write(
              `published ${n}/${bars.length} ${bar.symbol} ${bar.timestamp.slice(0, 10)} close=${bar.close}\n`,
            );
          }
        },
      });
      total += summary.published;
      const rate = summary.elapsedMs > 0 ? (summary.published / summary.elapsedMs) * 1000 : 0;
      const per = Object.entries(replay.perSymbol)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ');
      process.stdout.write(
        `summary: round ${rounds}: ${summary.published} bars (${per}) ${replay.interval} (${summary.first?.slice(0, 10)} .. ${summary.last?.slice(0, 10)}) ` +
          `to ${MARKET_BARS_EXCHANGE} in ${(summary.elapsedMs / 1000).toFixed(1)} s (${rate.toFixed(0)} bars/s), ` +
          `${summary.retries} retries, ${validator.rejected} impossible bars skipped, all confirmed\n`,
      );
    } while (values.follow && !stop.signal.aborted);
  } finally {
    await publisher.close();
    await rabbit.close();
    await ops.close();
  }
  if (interrupted) process.stdout.write(`interrupted: ${total} bars published and confirmed\n`);
  return 0;
}

/** MARKET_DATA_SOURCE=polygon: the live feed with its fallback chain, until SIGINT/SIGTERM. */
async function runLive(cfg: Config, log: Logger, values: { symbols?: string; from?: string }): Promise<number> {
  const df = cfg.dataflow;
  const p = df.polygon;
  const symbols = symbolsArg(values.symbols ?? df.watchlist.join(','));
  const fromDate = values.from ?? p.from;
  const startFromMs = fromDate ? Date.parse(`${fromDate}T00:00:00Z`) : Date.now() - 3 * 86_400_000;
  const rest = new PolygonRestClient({
    baseUrl: p.baseUrl,
    apiKey: p.apiKey ?? '',
    requestsPerWindow: p.requestsPerMinute,
    windowMs: 60_000,
    logger: log,
  });
  const sources: FeedSource[] = [];
  for (const kind of df.fallback) {
    if (kind === 'websocket') {
      sources.push(
        websocketSource({ url: p.wsUrl, apiKey: p.apiKey ?? '', symbols, interval: df.interval, logger: log }),
      );
    } else if (kind === 'rest') {
      sources.push(restPollingSource({ client: rest, pollMs: p.pollMs, startFromMs, adjusted: p.adjusted }));
    } else {
      const r = await loadWatchlistReplay(resolve(REPO_ROOT, df.replay.dataDir), symbols, { barsPerSymbol: 0 });
      sources.push(replaySource({ bars: r.bars, intervalMs: df.replay.intervalMs }));
    }
  }
  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `dataflow-${process.pid}`,
    logger: log,
    setup: topologySetup(cfg.rabbitmq),
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  const ops = await startOps(cfg.ops, 'dataflow', log, { ready: { rabbitmq: rabbitCheck(rabbit) } });
  const feed = new MarketFeed({
    sources,
    symbols,
    interval: df.interval,
    // Confirmed publishes, resumed from the first unconfirmed bar on failure (same ids); effectively unbounded
    // retries: a bar that cannot be published must hold the feed, never be skipped.
    publish: async (bars) => {
      await replayBars({ publisher, bars, logger: log, maxAttempts: 1_000_000 });
    },
    backfill: (symbol, since, signal) =>
      rest.aggregates({
        ticker: symbol,
        interval: df.interval,
        from: since + 1,
        to: Date.now(),
        adjusted: p.adjusted,
        signal,
      }),
    startFromMs,
    failureThreshold: df.breaker.failures,
    probeAfterMs: df.breaker.probeAfterMs,
    logger: log,
  });
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
  const timer = setInterval(() => log.info({ ...feed.stats, rest: rest.stats }, 'dataflow live stats'), 30_000);
  timer.unref();
  try {
    await rabbit.start();
    log.info({ symbols, interval: df.interval, chain: sources.map((x) => x.name) }, 'dataflow live feed running');
    await feed.run(stop.signal);
  } finally {
    clearInterval(timer);
    await publisher.close();
    await rabbit.close();
    await ops.close();
  }
  process.stdout.write(
    `summary: ${feed.stats.published} bars published (${feed.stats.backfilled} from gap fills), ${feed.stats.duplicates} duplicates skipped, ` +
      `${Object.values(feed.stats.rejected).reduce((a, b) => a + (b ?? 0), 0)} impossible bars skipped, ${feed.stats.switches.length} source switches\n`,
  );
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
