import { config as loadDotenv } from 'dotenv';
import { z } from 'zod';
import { BarIntervalSchema, TickerSchema } from '../contracts/bar';
import { resolveStrategyList, type StrategyName } from '../contracts/strategies';

/**
 * Every setting, read from the environment (and an optional .env file), validated once at start-up.
 * A bad value stops the process with one line naming the variable and what it expects.
 * Every variable is documented in .env.example; keep the two in step.
 */

const num = (def: number, check: (s: z.ZodNumber) => z.ZodNumber = (s) => s) =>
  z.preprocess(
    (v) => (v === undefined || v === '' ? def : Number(v)),
    check(z.number({ invalid_type_error: 'a number' }).finite()),
  );
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(
    (v) => (v === undefined || v === '' ? def : Number(v)),
    z.number({ invalid_type_error: 'an integer' }).int('an integer').min(min).max(max),
  );
const frac = (def: number) => num(def, (s) => s.min(0).max(1));
const bool = (def: boolean) =>
  z.preprocess(
    (v) => {
      if (v === undefined || v === '') return def;
      const s = String(v).toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      return v;
    },
    z.boolean({ invalid_type_error: 'true or false' }),
  );
const str = (def: string) => z.preprocess((v) => (v === undefined || v === '' ? def : v), z.string().min(1));
const optStr = z.preprocess((v) => (v === '' ? undefined : v), z.string().min(1).optional());
const hostPort = (def: string) => str(def).pipe(z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'host:port'));
const url = (def: string, protocols: string[]) =>
  str(def).pipe(
    z.string().refine(
      (s) => {
        try {
          return protocols.includes(new URL(s).protocol);
        } catch {
          return false;
        }
      },
      `a URL (${protocols.join(' or ')})`,
    ),
  );

/** Environment variable name → schema. Names are the contract with operators; do not rename. */
export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),

  // Temporal
  TEMPORAL_ADDRESS: hostPort('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: str('default'),
  TEMPORAL_TASK_QUEUE: str('trades'),
  TEMPORAL_UI_PORT: int(8233, 1, 65535),
  WORKER_SHUTDOWN_GRACE_MS: int(10_000, 0),

  // RabbitMQ (original names kept)
  RABBITMQ_HOST: str('127.0.0.1'),
  RABBITMQ_PORT: int(5672, 1, 65535),
  RABBITMQ_USER: str('stockautotrader'),
  RABBITMQ_PASS: str('stockautotrader-local'),
  RABBITMQ_VHOST: str('stockautotrader'),
  RABBITMQ_MANAGEMENT_PORT: int(15672, 1, 65535),
  /** Un-acked signals = workflow starts in flight. */
  SIGNAL_PREFETCH: int(32, 1, 10_000),
  /** x-delivery-limit of the quorum consumer queues: returns before the broker dead-letters a message. */
  RABBITMQ_DELIVERY_LIMIT: int(20, 1, 1000),
  /** The trade worker also runs signal intake, starting trades eagerly on its own connection. */
  INTAKE_IN_WORKER: bool(false),

  // PostgreSQL
  DATABASE_URL: url('postgres://stockautotrader:stockautotrader-local@127.0.0.1:5432/stockautotrader', [
    'postgres:',
    'postgresql:',
  ]),
  ACCOUNT_ID: str('default'),
  STARTING_CASH: num(100_000, (s) => s.positive()),

  // Broker (original names kept)
  BROKER: z.enum(['simulated', 'alpaca']).default('simulated'),
  BROKER_API_KEY: optStr,
  BROKER_API_SECRET: optStr,
  ALPACA_BASE_URL: url('https://paper-api.alpaca.markets', ['http:', 'https:']),
  ALPACA_STREAM_URL: optStr,
  BROKER_HTTP_TIMEOUT_MS: int(10_000, 100),
  /** Broker requests per minute for this process when BROKER=alpaca (Alpaca: 200/min per account). */
  BROKER_RATE_LIMIT_PER_MIN: int(200, 1, 100_000),
  /** Where the local simulated exchange (the paper venue process) listens. */
  SIM_EXCHANGE_PORT: int(8787, 1, 65535),
  /** Host name the trade worker reaches the venue at (a compose service name, or loopback locally). */
  SIM_EXCHANGE_HOST: str('127.0.0.1'),
  /** Interface the venue binds: loopback locally; 0.0.0.0 in a container so other services can reach it. */
  SIM_EXCHANGE_BIND: str('127.0.0.1'),
  SIM_SLIPPAGE_BPS: num(5, (s) => s.min(0).max(1000)),
  SIM_FEE_PER_SHARE: num(0.005, (s) => s.min(0)),
  SIM_FEE_BPS: num(0, (s) => s.min(0).max(1000)),
  SIM_MAX_VOLUME_PCT: num(0.1, (s) => s.gt(0).max(1)),
  SIM_LATENCY_MS: int(0, 0, 60_000),
  /** Broker requests per minute for this process when BROKER=simulated; 0 = unlimited (the venue is local). */
  SIM_RATE_LIMIT_PER_MIN: int(0, 0, 100_000),
  SIM_SEED: int(42),

  // Market data (original names kept: POLYGON_API_KEY, WATCHLIST, DATA_INTERVAL)
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
  POLYGON_FROM: optStr.pipe(
    z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date YYYY-MM-DD')
      .optional(),
  ),
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
  REPLAY_FROM: optStr.pipe(
    z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date YYYY-MM-DD')
      .optional(),
  ),
  REPLAY_BARS: int(300, 0),
  REPLAY_INTERVAL_MS: int(50, 0),
  REPLAY_SPEED: z.preprocess(
    (v) => (v === undefined || v === '' ? undefined : Number(v)),
    z.number({ invalid_type_error: 'a number' }).finite().min(0).optional(),
  ),

  // Operations: /metrics, /healthz, /readyz per process (src/metrics/server.ts). Port 0 = any free port.
  METRICS_HOST: str('127.0.0.1'),
  DATAFLOW_METRICS_PORT: int(9461, 0, 65535),
  QUANT_METRICS_PORT: int(9462, 0, 65535),
  INTAKE_METRICS_PORT: int(9463, 0, 65535),
  WORKER_METRICS_PORT: int(9464, 0, 65535),
  EXCHANGE_SIM_METRICS_PORT: int(9465, 0, 65535),
  BAR_STORE_METRICS_PORT: int(9467, 0, 65535),
  /** Temporal SDK (Core) Prometheus exporter of the trade worker; 0 = off. */
  WORKER_SDK_METRICS_PORT: int(9466, 0, 65535),

  // RiskOps limits (original names and defaults where they exist)
  CONFIDENCE_THRESH: frac(0.75),
  RISK_MAX_VIX: num(30, (s) => s.positive()),
  RISK_MAX_REALIZED_VOL: num(1.5, (s) => s.positive()),
  RISK_CIRCUIT_BREAKER_PCT: frac(0.05),
  RISK_MARGIN_CALL_PCT: frac(0.1),
  RISK_MAX_POSITION_SHARES: int(1000, 1),
  RISK_MAX_ORDER_NOTIONAL: num(50_000, (s) => s.positive()),
  RISK_STRESS_DROP_PCT: frac(0.1),
  RISK_STRESS_THRESHOLD_PCT: frac(0.05),
  RISK_PER_TRADE_PCT: frac(0.01),
  RISK_ATR_PERIOD: int(14, 1, 500),
  RISK_ATR_STOP_MULTIPLE: num(2, (s) => s.positive()),
  RISK_DUPLICATE_COOLDOWN_SEC: int(60, 0),
  RISK_ALLOW_SHORT: bool(false),

  // Quant strategies (original names and defaults where they exist; docs/quant.md)
  STRATEGY_TYPE: str('sma-cross'),
  MA_SHORT: int(2, 1, 10_000),
  MA_LONG: int(5, 2, 10_000),
  USE_RSI_CONFIRMATION: bool(false),
  RSI_PERIOD: int(14, 1, 10_000),
  RSI_BUY_THRESHOLD: num(30, (s) => s.gt(0).lt(100)),
  RSI_SELL_THRESHOLD: num(70, (s) => s.gt(0).lt(100)),
  MACD_FAST: int(12, 1, 10_000),
  MACD_SLOW: int(26, 2, 10_000),
  MACD_SIGNAL: int(9, 1, 10_000),
  BOLLINGER_WINDOW: int(20, 2, 10_000),
  BOLLINGER_STDDEV: num(2, (s) => s.positive().max(10)),
  MOMENTUM_PERIOD: int(10, 1, 10_000),
  MOMENTUM_THRESHOLD: num(0.02, (s) => s.min(0).lt(1)),
  MRM_WINDOW: int(10, 2, 10_000),
  MRM_THRESHOLD: num(0.01, (s) => s.min(0).lt(1)),
  ML_WINDOW: int(50, 10, 100_000),
  ML_RETRAIN_EVERY: int(50, 1, 100_000),
  QUANT_WARMUP: bool(true),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env;
  logLevel: Env['LOG_LEVEL'];
  temporal: { address: string; namespace: string; taskQueue: string; uiPort: number; shutdownGraceMs: number };
  rabbitmq: {
    url: string;
    host: string;
    port: number;
    user: string;
    vhost: string;
    managementPort: number;
    signalPrefetch: number;
    deliveryLimit: number;
    /** Signal intake runs inside the trade worker (eager workflow start); else as its own process. */
    intakeInWorker: boolean;
  };
  databaseUrl: string;
  accountId: string;
  startingCash: number;
  broker: Env['BROKER'];
  /** The broker request budget of this process (requests per minute; 0 = unlimited), for the chosen broker. */
  brokerRateLimitPerMin: number;
  dataflow: DataflowConfig;
  /** Where each process serves /metrics, /healthz and /readyz. */
  ops: {
    host: string;
    ports: Record<OpsRole, number>;
    /** host:port of the trade worker's Temporal SDK metrics exporter, or undefined when off. */
    sdkMetricsAddress: string | undefined;
  };
  strategy: StrategyConfig;
}

/** The `strategy` section: which strategies the quant runs side by side, and every strategy's parameters. */
export interface StrategyConfig {
  types: StrategyName[];
  maCross: { fast: number; slow: number; useRsi: boolean; rsiPeriod: number; rsiBuy: number; rsiSell: number };
  macd: { fast: number; slow: number; signal: number };
  bollinger: { window: number; k: number };
  rsi: { period: number; buy: number; sell: number };
  momentum: { period: number; threshold: number };
  mrm: { window: number; threshold: number };
  ml: { window: number; retrainEvery: number };
}

function strategyConfig(e: Env): StrategyConfig {
  let types: StrategyName[];
  try {
    types = resolveStrategyList(e.STRATEGY_TYPE);
  } catch (err) {
    throw new ConfigError(`Invalid configuration: STRATEGY_TYPE ${(err as Error).message} (got "${e.STRATEGY_TYPE}")`);
  }
  const order = (a: keyof Env, b: keyof Env) => {
    if (!((e[a] as number) < (e[b] as number))) {
      throw new ConfigError(`Invalid configuration: ${a} must be < ${b} (got ${String(e[a])} and ${String(e[b])})`);
    }
  };
  order('MA_SHORT', 'MA_LONG');
  order('MACD_FAST', 'MACD_SLOW');
  order('RSI_BUY_THRESHOLD', 'RSI_SELL_THRESHOLD');
  return {
    types,
    maCross: {
      fast: e.MA_SHORT,
      slow: e.MA_LONG,
      useRsi: e.USE_RSI_CONFIRMATION,
      rsiPeriod: e.RSI_PERIOD,
      rsiBuy: e.RSI_BUY_THRESHOLD,
      rsiSell: e.RSI_SELL_THRESHOLD,
    },
    macd: { fast: e.MACD_FAST, slow: e.MACD_SLOW, signal: e.MACD_SIGNAL },
    bollinger: { window: e.BOLLINGER_WINDOW, k: e.BOLLINGER_STDDEV },
    rsi: { period: e.RSI_PERIOD, buy: e.RSI_BUY_THRESHOLD, sell: e.RSI_SELL_THRESHOLD },
    momentum: { period: e.MOMENTUM_PERIOD, threshold: e.MOMENTUM_THRESHOLD },
    mrm: { window: e.MRM_WINDOW, threshold: e.MRM_THRESHOLD },
    ml: { window: e.ML_WINDOW, retrainEvery: e.ML_RETRAIN_EVERY },
  };
}

/** The Dataflow section: what to publish to `market.bars`, from where, and how fast. */
export interface DataflowConfig {
  watchlist: string[];
  /** Bar interval, e.g. `1d` (the shared CSVs are daily) or `1m`. */
  interval: string;
  source: Env['MARKET_DATA_SOURCE'];
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

/**
 * Environment that moves every process's operations endpoint to a free port and turns the SDK exporter off:
 * for tests and benchmarks that run several copies of a process beside each other (and beside `npm start`).
 */
export const EPHEMERAL_OPS_ENV: Readonly<Record<string, string>> = {
  DATAFLOW_METRICS_PORT: '0',
  QUANT_METRICS_PORT: '0',
  INTAKE_METRICS_PORT: '0',
  WORKER_METRICS_PORT: '0',
  EXCHANGE_SIM_METRICS_PORT: '0',
  BAR_STORE_METRICS_PORT: '0',
  WORKER_SDK_METRICS_PORT: '0',
};

/** The pipeline's processes, each with its own operations port. */
export type OpsRole = 'dataflow' | 'quant' | 'signal-intake' | 'trade-worker' | 'exchange-sim' | 'bar-store';

/** Settings whose defaults are local development credentials: NODE_ENV=production refuses to default them. */
export const PRODUCTION_REQUIRED = ['RABBITMQ_USER', 'RABBITMQ_PASS', 'DATABASE_URL'] as const;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validate an environment object. Throws ConfigError whose message names the first bad variable. */
export function parseEnv(source: NodeJS.ProcessEnv): Config {
  const r = envSchema.safeParse(source);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const name = String(issue.path[0] ?? '(environment)');
    const got = source[name];
    // Never echo a secret's value back.
    const shown = /PASS|SECRET|KEY|TOKEN|DATABASE_URL/.test(name) || got === undefined ? '' : ` (got "${got}")`;
    throw new ConfigError(`Invalid configuration: ${name} must be ${expectation(issue)}${shown}`);
  }
  const e = r.data;
  // The defaults are the local stack's development credentials: a production process must be given its own.
  if (e.NODE_ENV === 'production') {
    for (const name of PRODUCTION_REQUIRED) {
      if (source[name] === undefined || source[name] === '') {
        throw new ConfigError(`Invalid configuration: ${name} must be set when NODE_ENV=production (no local default)`);
      }
    }
  }
  if (e.BROKER === 'alpaca' && (!e.BROKER_API_KEY || !e.BROKER_API_SECRET)) {
    throw new ConfigError(
      'Invalid configuration: BROKER_API_KEY and BROKER_API_SECRET are required when BROKER=alpaca',
    );
  }
  if (e.MARKET_DATA_SOURCE === 'polygon' && !e.POLYGON_API_KEY) {
    throw new ConfigError('Invalid configuration: POLYGON_API_KEY is required when MARKET_DATA_SOURCE=polygon');
  }
  const rabbitUrl = `amqp://${encodeURIComponent(e.RABBITMQ_USER)}:${encodeURIComponent(e.RABBITMQ_PASS)}@${e.RABBITMQ_HOST}:${e.RABBITMQ_PORT}/${encodeURIComponent(e.RABBITMQ_VHOST)}`;
  return {
    env: e,
    logLevel: e.LOG_LEVEL,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      uiPort: e.TEMPORAL_UI_PORT,
      shutdownGraceMs: e.WORKER_SHUTDOWN_GRACE_MS,
    },
    rabbitmq: {
      url: rabbitUrl,
      host: e.RABBITMQ_HOST,
      port: e.RABBITMQ_PORT,
      user: e.RABBITMQ_USER,
      vhost: e.RABBITMQ_VHOST,
      managementPort: e.RABBITMQ_MANAGEMENT_PORT,
      signalPrefetch: e.SIGNAL_PREFETCH,
      deliveryLimit: e.RABBITMQ_DELIVERY_LIMIT,
      intakeInWorker: e.INTAKE_IN_WORKER,
    },
    databaseUrl: e.DATABASE_URL,
    accountId: e.ACCOUNT_ID,
    startingCash: e.STARTING_CASH,
    broker: e.BROKER,
    brokerRateLimitPerMin: e.BROKER === 'alpaca' ? e.BROKER_RATE_LIMIT_PER_MIN : e.SIM_RATE_LIMIT_PER_MIN,
    strategy: strategyConfig(e),
    dataflow: {
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
    },
    ops: {
      host: e.METRICS_HOST,
      ports: {
        dataflow: e.DATAFLOW_METRICS_PORT,
        quant: e.QUANT_METRICS_PORT,
        'signal-intake': e.INTAKE_METRICS_PORT,
        'trade-worker': e.WORKER_METRICS_PORT,
        'exchange-sim': e.EXCHANGE_SIM_METRICS_PORT,
        'bar-store': e.BAR_STORE_METRICS_PORT,
      },
      sdkMetricsAddress:
        e.WORKER_SDK_METRICS_PORT === 0
          ? undefined
          : `${e.METRICS_HOST.includes(':') ? `[${e.METRICS_HOST}]` : e.METRICS_HOST}:${e.WORKER_SDK_METRICS_PORT}`,
    },
  };
}

/** What a failed check expected, in words an operator can act on. */
function expectation(issue: z.ZodIssue): string {
  switch (issue.code) {
    case z.ZodIssueCode.too_small:
      return `${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case z.ZodIssueCode.too_big:
      return `${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    case z.ZodIssueCode.invalid_enum_value:
      return `one of ${issue.options.join(', ')}`;
    case z.ZodIssueCode.invalid_type:
      return issue.message.startsWith('Expected') ? `a ${issue.expected}` : issue.message;
    case z.ZodIssueCode.not_finite:
      return 'a finite number';
    default:
      return issue.message;
  }
}

let cached: Config | undefined;

/** Load .env (if present; real environment wins) and validate. On error: one line on stderr, exit 1. */
export function loadConfig(): Config {
  if (cached) return cached;
  loadDotenv({ quiet: true } as never);
  try {
    cached = parseEnv(process.env);
    return cached;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
