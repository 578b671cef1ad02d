/**
 * `npm run backfill -- --symbols NVDA,ORCL --from 2024-01-02 --to 2024-03-28`: fill the bar store's gaps from
 * Polygon REST aggregates. For each symbol it reads which bar starts `market_bars` already holds in the range,
 * fetches the range (following next_url, within POLYGON_REQUESTS_PER_MINUTE, honouring 429 resets), drops
 * impossible bars and the ones already stored, and publishes the rest to `market.bars` with confirms (batched
 * by BAR_BATCH_SIZE / --batch), where the bar store upserts them and every other consumer sees them too. Bars
 * carry the provider's deterministic ids, so a re-run or an overlap with the live feed is de-duplicated.
 */
import { parseArgs } from 'node:util';
import { TickerSchema, type Bar } from '../contracts/bar';
import { loadConfig } from '../config';
import { createLogger } from '../logging';
import { BarValidator } from '../domain/marketdata/validation';
import { PolygonRestClient } from '../adapters/marketdata/polygon/rest';
import { POLYGON_PROVIDER, POLYGON_REST_SOURCE } from '../adapters/marketdata/polygon/wire';
import { toBarMessage } from '../adapters/marketdata/replay';
import { createPool } from '../adapters/postgres/pool';
import { storedBarTimes } from '../adapters/postgres/bars';
import { ConfirmPublisher, RabbitConnection, topologySetup } from '../adapters/rabbitmq';
import { replayBars } from '../services/bar-publishing';

const USAGE = `Usage: npm run backfill -- --symbols NVDA,ORCL --from YYYY-MM-DD --to YYYY-MM-DD [options]

Fills gaps in the bar store (market_bars) from Polygon REST aggregates: fetches the range for each symbol,
skips bars already stored and impossible bars, and publishes the rest to market.bars (the bar store upserts
them). Needs POLYGON_API_KEY (never printed); POLYGON_BASE_URL, POLYGON_REQUESTS_PER_MINUTE (free tier: 5),
POLYGON_ADJUSTED apply.

Options:
  --symbols <A,B>    tickers (default WATCHLIST)
  --from <date>      first session date (inclusive), YYYY-MM-DD
  --to <date>        last session date (inclusive), YYYY-MM-DD
  --interval <i>     bar interval (default DATA_INTERVAL, e.g. 1d, 1m)
  --batch <n>        bars of one symbol per message (default BAR_BATCH_SIZE)
  --all              publish every fetched bar, stored or not (a re-sync; consumers de-duplicate)
  --dry-run          fetch and count, publish nothing
  -h, --help         this help
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      symbols: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      interval: { type: 'string' },
      batch: { type: 'string' },
      all: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const date = /^\d{4}-\d{2}-\d{2}$/;
  if (!values.from || !date.test(values.from)) throw new Error('--from YYYY-MM-DD is required');
  if (!values.to || !date.test(values.to)) throw new Error('--to YYYY-MM-DD is required');
  if (values.to < values.from) throw new Error('--to is before --from');
  const cfg = loadConfig();
  const df = cfg.dataflow;
  if (!df.polygon.apiKey) throw new Error('POLYGON_API_KEY is required for a backfill from Polygon');
  const symbols = (values.symbols ?? df.watchlist.join(','))
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  for (const s of symbols) if (!TickerSchema.safeParse(s).success) throw new Error(`--symbols: "${s}" is not a ticker`);
  const interval = values.interval ?? df.interval;
  const batch = values.batch === undefined ? df.batchSize : Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1) throw new Error('--batch must be an integer >= 1');
  const log = createLogger('backfill', { level: cfg.logLevel });
  const say = (s: string) => process.stdout.write(`${s}\n`);

  const rest = new PolygonRestClient({
    baseUrl: df.polygon.baseUrl,
    apiKey: df.polygon.apiKey,
    requestsPerWindow: df.polygon.requestsPerMinute,
    windowMs: 60_000,
    logger: log,
  });
  const pool = createPool(cfg.databaseUrl, 2);
  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `backfill-${process.pid}`,
    logger: log,
    setup: topologySetup(cfg.rabbitmq),
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: log });
  const validator = new BarValidator();
  let total = 0;
  try {
    if (!values['dry-run']) await rabbit.start();
    for (const symbol of symbols) {
      const stored = values.all
        ? new Set<string>()
        : await storedBarTimes(pool, symbol, interval, `${values.from}T00:00:00Z`, `${values.to}T23:59:59.999Z`);
      const fetched: Bar[] = [];
      let pages = 0;
      for await (const page of rest.aggregatePages({
        ticker: symbol,
        interval,
        from: values.from,
        to: values.to,
        adjusted: df.polygon.adjusted,
      })) {
        pages++;
        for (const b of page.bars) {
          const r = validator.check(b, interval);
          if (!r.ok) {
            log.warn({ symbol, bar_ts: b.timestamp, reason: r.reason, detail: r.detail }, 'impossible bar skipped');
            continue;
          }
          fetched.push(toBarMessage(b, interval, POLYGON_REST_SOURCE, b.vwap, POLYGON_PROVIDER));
        }
        say(`${symbol}: page ${pages}, ${fetched.length} bars so far`);
      }
      const missing = fetched.filter((b) => !stored.has(b.timestamp));
      say(
        `${symbol}: ${fetched.length} bars from Polygon (${values.from} .. ${values.to}), ${stored.size} already stored, ${missing.length} to publish`,
      );
      if (missing.length && !values['dry-run']) {
        const s = await replayBars({ publisher, bars: missing, batchSize: batch, logger: log });
        total += s.published;
        say(`${symbol}: ${s.published} bars published and confirmed (${s.retries} retries)`);
      }
    }
  } finally {
    await publisher.close();
    await rabbit.close();
    await pool.end();
  }
  say(
    `summary: ${total} bars published for ${symbols.join(',')}; ${validator.rejected} impossible bars skipped; ` +
      `${rest.stats.requests} requests, ${rest.stats.rateLimited} rate-limited, ${rest.stats.malformedRows} malformed rows`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`backfill: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
