import { z } from 'zod';
import { BarIntervalSchema, TickerSchema } from '../contracts/bar';
import { ConfigError, bool, int, isoDate, num, optStr, str, url, type Parsed } from './fields';

/** The `dataflow` section's variables: market data (original names kept: POLYGON_API_KEY, WATCHLIST, DATA_INTERVAL). */
export const dataflowVars = {
  /** Comma-separated tickers; trimmed and upper-cased. */
  WATCHLIST: str('NVDA,ORCL').pipe(
    z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((t) => t.trim().toUpperCase())
          .filter((t) => t !== ''),
      )
      .pipe(z.array(TickerSchema, { invalid_type_error: 'tickers' }).min(1, 'at least one ticker')),
  ),
  DATA_INTERVAL: str('1d').pipe(BarIntervalSchema),
  POLYGON_API_KEY: optStr,
  POLYGON_BASE_URL: url('https://api.polygon.io', ['http:', 'https:']),
  POLYGON_WS_URL: url('wss://delayed.polygon.io/stocks', ['ws:', 'wss:']),
  POLYGON_REQUESTS_PER_MINUTE: int(5, 0),
  POLYGON_ADJUSTED: bool(true),
  POLYGON_POLL_MS: int(60_000, 100),
  POLYGON_FROM: isoDate,
  MARKET_DATA_SOURCE: z.enum(['replay', 'polygon', 'synthetic']).default('replay'),
  MARKET_DATA_FALLBACK: str('websocket,rest,replay').pipe(
    z
      .string()
      .transform((s) => s.split(',').map((t) => t.trim()))
      .pipe(z.array(z.enum(['websocket', 'rest', 'replay'])).min(1)),
  ),
  DATAFLOW_BREAKER_FAILURES: int(3, 1, 1000),
  DATAFLOW_BREAKER_PROBE_MS: int(60_000, 0),
  BAR_BATCH_SIZE: int(1, 1, 10_000),
  SYNTHETIC_SEED: int(42),
  SYNTHETIC_START_PRICE: num(100, (s) => s.positive()),
  SYNTHETIC_DRIFT: num(0.05),
  SYNTHETIC_VOLATILITY: num(0.3, (s) => s.min(0).max(10)),
  REPLAY_DATA_DIR: str('../shared/data'),
  REPLAY_FROM: isoDate,
  REPLAY_BARS: int(300, 0),
  REPLAY_INTERVAL_MS: int(50, 0),
  REPLAY_SPEED: z.preprocess(
    (v) => (v === undefined || v === '' ? undefined : Number(v)),
    z.number({ invalid_type_error: 'a number' }).finite().min(0).optional(),
  ),
};

export type MarketDataSource = z.infer<(typeof dataflowVars)['MARKET_DATA_SOURCE']>;

/** The Dataflow section: what to publish to `market.bars`, from where, and how fast. */
export interface DataflowConfig {
  watchlist: string[];
  /** Bar interval, e.g. `1d` (the shared CSVs are daily) or `1m`. */
  interval: string;
  source: MarketDataSource;
  replay: {
    /** Directory of `<symbol>-*.csv` files, relative to the repository root unless absolute. */
    dataDir: string;
    /** First bar date (inclusive) per symbol, or from the start of each file. */
    from: string | undefined;
    /** Bars per symbol; 0 = to the end of the file. */
    barsPerSymbol: number;
    /** Fixed pause between bars when `speed` is unset. */
    intervalMs: number;
    /** Speed factor against market time (1 = real time, 0 = as fast as confirms allow); unset = `intervalMs`. */
    speed: number | undefined;
  };
  polygon: {
    apiKey: string | undefined;
    baseUrl: string;
    wsUrl: string;
    requestsPerMinute: number;
    adjusted: boolean;
    pollMs: number;
    from: string | undefined;
  };
  /** The live chain when source = polygon, in order of preference. */
  fallback: Array<'websocket' | 'rest' | 'replay'>;
  breaker: { failures: number; probeAfterMs: number };
  /** Bars of one symbol per message for replay and backfill (1 = one bar per message). */
  batchSize: number;
  synthetic: { seed: number; startPrice: number; drift: number; volatility: number };
}

export function dataflowSection(e: Parsed<typeof dataflowVars>): DataflowConfig {
  if (e.MARKET_DATA_SOURCE === 'polygon' && !e.POLYGON_API_KEY) {
    throw new ConfigError('Invalid configuration: POLYGON_API_KEY is required when MARKET_DATA_SOURCE=polygon');
  }
  return {
    watchlist: e.WATCHLIST,
    interval: e.DATA_INTERVAL,
    source: e.MARKET_DATA_SOURCE,
    replay: {
      dataDir: e.REPLAY_DATA_DIR,
      from: e.REPLAY_FROM,
      barsPerSymbol: e.REPLAY_BARS,
      intervalMs: e.REPLAY_INTERVAL_MS,
      speed: e.REPLAY_SPEED,
    },
    polygon: {
      apiKey: e.POLYGON_API_KEY,
      baseUrl: e.POLYGON_BASE_URL,
      wsUrl: e.POLYGON_WS_URL,
      requestsPerMinute: e.POLYGON_REQUESTS_PER_MINUTE,
      adjusted: e.POLYGON_ADJUSTED,
      pollMs: e.POLYGON_POLL_MS,
      from: e.POLYGON_FROM,
    },
    fallback: e.MARKET_DATA_FALLBACK,
    breaker: { failures: e.DATAFLOW_BREAKER_FAILURES, probeAfterMs: e.DATAFLOW_BREAKER_PROBE_MS },
    batchSize: e.BAR_BATCH_SIZE,
    synthetic: {
      seed: e.SYNTHETIC_SEED,
      startPrice: e.SYNTHETIC_START_PRICE,
      drift: e.SYNTHETIC_DRIFT,
      volatility: e.SYNTHETIC_VOLATILITY,
    },
  };
}
