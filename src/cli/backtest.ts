/**
 * `npm run backtest -- --data <csv>[,<csv>…] --strategy <name> [options]`: the live path's strategy, risk engine
 * and simulated exchange run over recorded bars (src/domain/backtest). Writes a JSON result and a self-contained
 * HTML report, and prints a summary.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { readBarsCsvSync } from '../adapters/marketdata/csv';
import { loadConfig, parseEnv } from '../config';
import type { OhlcvBar } from '../contracts/bar';
import { resolveStrategyName, type StrategyName } from '../contracts/strategies';
import {
  mergeSeries,
  runBacktest,
  walkForward,
  type BacktestOptions,
  type BacktestResult,
  type Objective,
  type WalkForwardResult,
} from '../domain/backtest';
import { riskLimits } from '../domain/risk';
import { STRATEGY_NAMES, strategyFactory, type StrategyOptions } from '../domain/strategies';
import { renderReport } from './backtest-report';
import { symbolFromPath } from './indicators';

const USAGE = `Usage: npm run backtest -- --data <csv>[,<csv>…] --strategy <name> [options]

Backtests a strategy with the live path's own parts: the same strategy objects as the quant, the same risk
engine (sizing, limits) and the same simulated exchange (fees, slippage, partial fills, latency in bars).
Writes a JSON result and an HTML report (equity, drawdown, prices with trade markers; opens offline).

Data and strategy:
  --data <csv,…>        bar files (../shared/data layouts); several are merged by time, one symbol each
  --symbols <S,…>       symbols of the files (default: from the file names, e.g. NVDA)
  --from <date>         first bar (prefix match, e.g. 2005 or 2005-06-01); --to <date> last bar
  --strategy <name>     ${STRATEGY_NAMES.join(', ')} (default: the first of STRATEGY_TYPE)
  --param <k=v>         strategy parameter, repeatable; k is a field of the strategy's section
                        (sma-cross: fast, slow, useRsi, rsiPeriod, rsiBuy, rsiSell; macd: fast, slow, signal;
                        bollinger: window, k; rsi: period, buy, sell; momentum: period, threshold;
                        mrm: window, threshold; ml: window, retrainEvery); for ensemble use section.field
                        (e.g. macd.fast=8). Defaults come from the configuration (.env.example).

Execution (defaults from the configuration: STARTING_CASH, SIM_*, RISK_*):
  --cash <usd>          starting cash
  --fee-per-share <usd> commission per share       --fee-bps <bps>       commission in bps of notional
  --slippage-bps <bps>  adverse slippage per fill   --max-volume-pct <f>  share of a bar's volume one order may take
  --latency-bars <n>    bars between an order and its first possible fill (>= 1)

Walk-forward optimisation:
  --walk-forward        optimise on a train window, trade the next test window; roll by the test length
  --train <bars>        train window in bars (default 252)      --test <bars>   test window (default 63)
  --grid <k=v1,v2,…>    a parameter's values, repeatable (default for MA crossovers: fast=2,3,4 slow=5,7,10)
  --objective <o>       sharpe (default) or return

Output:
  --out <file.json>     result (default backtest-results/<strategy>.json)
  --report <file.html>  report (default: next to --out); --no-report to skip it
  --json                print the JSON result on stdout instead of the summary
  --progress / --no-progress   progress bar on stderr (default: on a terminal, for runs longer than a moment)
  -h, --help            this help
`;

class UsageError extends Error {}

const SECTION: Record<StrategyName, keyof StrategyOptions | undefined> = {
  'sma-cross': 'maCross',
  'ema-cross': 'maCross',
  macd: 'macd',
  bollinger: 'bollinger',
  rsi: 'rsi',
  momentum: 'momentum',
  mrm: 'mrm',
  ml: 'ml',
  ensemble: undefined,
};

function parseValue(v: string): number | boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  const n = Number(v);
  if (v === '' || !Number.isFinite(n)) throw new UsageError(`parameter value "${v}" is not a number`);
  return n;
}

/** Apply k=v parameters onto configured strategy options. */
export function applyParams(
  name: StrategyName,
  base: StrategyOptions,
  params: Record<string, number | boolean>,
): StrategyOptions {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(base)) out[k] = { ...(v as object) };
  for (const [key, value] of Object.entries(params)) {
    const [a, b] = key.includes('.') ? key.split('.', 2) : [SECTION[name], key];
    if (!a || !b || !(a in out)) throw new UsageError(`unknown parameter "${key}" for ${name} (see --help)`);
    if (!(b in out[a]!))
      throw new UsageError(`unknown parameter "${key}": ${a} has ${Object.keys(out[a]!).join(', ')}`);
    out[a]![b] = value;
  }
  return out as StrategyOptions;
}

function kv(list: string[] | undefined, what: string): Array<[string, string]> {
  return (list ?? []).map((s) => {
    const i = s.indexOf('=');
    if (i <= 0) throw new UsageError(`--${what} must look like key=value, got "${s}"`);
    return [s.slice(0, i), s.slice(i + 1)];
  });
}

function num(name: string, v: string | undefined, def: number, check: (n: number) => boolean): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${name}: invalid value "${v}"`);
  return n;
}

export interface BacktestCliResult {
  json: Record<string, unknown>;
  result?: BacktestResult;
  walkForward?: WalkForwardResult;
  bars: OhlcvBar[];
  outPath: string;
  reportPath?: string;
}

/** `env`: the settings to use instead of this process's configuration (environment and .env), for tests. */
export function runCli(argv: string[], env?: NodeJS.ProcessEnv): BacktestCliResult | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      symbols: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      strategy: { type: 'string' },
      param: { type: 'string', multiple: true },
      cash: { type: 'string' },
      'fee-per-share': { type: 'string' },
      'fee-bps': { type: 'string' },
      'slippage-bps': { type: 'string' },
      'max-volume-pct': { type: 'string' },
      'latency-bars': { type: 'string' },
      'walk-forward': { type: 'boolean', default: false },
      train: { type: 'string' },
      test: { type: 'string' },
      grid: { type: 'string', multiple: true },
      objective: { type: 'string', default: 'sharpe' },
      out: { type: 'string' },
      report: { type: 'string' },
      'no-report': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return null;
  }
  if (!values.data) throw new UsageError('--data <csv>[,<csv>…] is required (see --help)');
  const cfg = env === undefined ? loadConfig() : parseEnv(env);
  const files = values.data
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  const symbols = values.symbols ? values.symbols.split(',').map((s) => s.trim()) : files.map(symbolFromPath);
  if (symbols.length !== files.length)
    throw new UsageError(`--symbols names ${symbols.length} symbols for ${files.length} files`);
  if (new Set(symbols).size !== symbols.length)
    throw new UsageError(`two files have the same symbol (${symbols.join(', ')}); use --symbols`);
  const series = files.map((f, i) => readBarsCsvSync(f, { symbol: symbols[i]!, from: values.from, to: values.to }));
  const bars = mergeSeries(series);
  if (bars.length === 0) throw new UsageError('no bars in the selected range');

  let name: StrategyName;
  try {
    name = resolveStrategyName(values.strategy ?? cfg.strategy.types[0]!);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const params: Record<string, number | boolean> = {};
  for (const [k, v] of kv(values.param, 'param')) params[k] = parseValue(v);
  const baseOpts = applyParams(name, cfg.strategy as unknown as StrategyOptions, params);
  // The backtest's venue defaults to the paper venue's fill model (the sim section), flags override.
  const venue = cfg.sim.venue;
  const exchange = {
    feePerShare: num('fee-per-share', values['fee-per-share'], venue.feePerShare, (n) => n >= 0),
    feeBps: num('fee-bps', values['fee-bps'], venue.feeBps, (n) => n >= 0),
    slippageBps: num('slippage-bps', values['slippage-bps'], venue.slippageBps, (n) => n >= 0),
    maxVolumePct: num('max-volume-pct', values['max-volume-pct'], venue.maxVolumePct, (n) => n > 0 && n <= 1),
    latencyBars: num('latency-bars', values['latency-bars'], 1, (n) => Number.isInteger(n) && n >= 1),
    seed: venue.seed,
    allowShort: cfg.risk.allowShort,
  };
  const startingCash = num('cash', values.cash, cfg.startingCash, (n) => n > 0);
  const intraday = bars.length > 1 && bars[0]!.timestamp.slice(0, 10) === bars[1]!.timestamp.slice(0, 10);
  const common: Omit<BacktestOptions, 'strategy'> = {
    startingCash,
    exchange,
    barPeriod: intraday ? 'intraday' : 'daily',
    limits: riskLimits(cfg.risk),
  };

  const wantProgress = values['no-progress'] ? false : (values.progress ?? Boolean(process.stderr.isTTY));
  const bar = new SingleBar(
    { format: 'backtest [{bar}] {percentage}% | {value}/{total} | ETA {eta}s', stream: process.stderr },
    Presets.shades_classic,
  );
  let started = false;
  const progress = (done: number, total: number) => {
    if (!wantProgress || (total < 20_000 && !values['walk-forward'])) return;
    if (!started) {
      bar.start(total, 0);
      started = true;
    }
    bar.update(done);
    if (done >= total) bar.stop();
  };

  const outPath = values.out ?? path.join('backtest-results', `${name}.json`);
  const reportPath = values['no-report'] ? undefined : (values.report ?? outPath.replace(/\.json$/, '') + '.html');
  const header = {
    strategy: name,
    symbols,
    files: files.map((f) => path.basename(f)),
    from: bars[0]!.timestamp,
    to: bars.at(-1)!.timestamp,
    bars: bars.length,
    startingCash,
    exchange,
  };

  if (values['walk-forward']) {
    const objective: Objective =
      values.objective === 'return'
        ? 'totalReturn'
        : values.objective === 'sharpe'
          ? 'sharpe'
          : (() => {
              throw new UsageError(`--objective must be sharpe or return, got "${values.objective}"`);
            })();
    const grid: Record<string, number[]> = {};
    for (const [k, v] of kv(values.grid, 'grid')) grid[k] = v.split(',').map((x) => Number(parseValue(x)));
    if (Object.keys(grid).length === 0) {
      if (SECTION[name] !== 'maCross') throw new UsageError(`--grid is required for ${name}`);
      grid.fast = [2, 3, 4];
      grid.slow = [5, 7, 10];
    }
    applyParams(name, baseOpts, Object.fromEntries(Object.entries(grid).map(([k, v]) => [k, v[0]!]))); // keys valid?
    const wf = walkForward(bars, {
      train: num('train', values.train, 252, (n) => Number.isInteger(n) && n > 1),
      test: num('test', values.test, 63, (n) => Number.isInteger(n) && n > 0),
      grid,
      objective,
      build: (p) => strategyFactory(name, applyParams(name, baseOpts, p)),
      backtest: { ...common, audit: true },
      onProgress: progress,
    });
    const json = { ...header, params: baseOpts, walkForward: wf };
    write(outPath, JSON.stringify(json, null, 2));
    return { json, walkForward: wf, bars, outPath };
  }

  const result = runBacktest(bars, { ...common, strategy: strategyFactory(name, baseOpts), onProgress: progress });
  const json = {
    ...header,
    params: baseOpts,
    metrics: result.metrics,
    final: result.final,
    trades: result.trades,
    signals: result.signals,
    equity: result.timestamps.map((t, i) => [t, result.equity[i]]),
  };
  write(outPath, JSON.stringify(json, null, 2));
  if (reportPath) write(reportPath, renderReport(result, bars, `Backtest: ${name} on ${symbols.join(', ')}`));
  return { json, result, bars, outPath, reportPath };
}

function write(file: string, text: string): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, text);
}

function summary(r: BacktestCliResult): string {
  const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(2)}%`);
  const f = (v: number | null | undefined, d = 2) => (v === null || v === undefined ? '—' : v.toFixed(d));
  const lines: string[] = [];
  if (r.walkForward) {
    const wf = r.walkForward;
    lines.push(
      `walk-forward: ${wf.windows.length} windows (train ${wf.train} / test ${wf.test} bars), ${wf.combinations} parameter sets, objective ${wf.objective}`,
    );
    for (const w of wf.windows) {
      lines.push(
        `  ${w.testStart.slice(0, 10)} → ${w.testEnd.slice(0, 10)}  ${JSON.stringify(w.params)}  train ${f(w.trainScore)}  test return ${pct(w.test.totalReturn)} sharpe ${f(w.test.sharpe)} trades ${w.test.trades}`,
      );
    }
    lines.push(`out-of-sample return: ${pct(wf.outOfSampleReturn)}`);
  } else if (r.result) {
    const m = r.result.metrics;
    lines.push(
      `total return ${pct(m.totalReturn)}  CAGR ${pct(m.cagr)}  Sharpe ${f(m.sharpe)}  Sortino ${f(m.sortino)}`,
      `max drawdown ${pct(m.maxDrawdown)} (${m.maxDrawdownDurationBars} bars, ${m.maxDrawdownDurationDays} days)`,
      `trades ${m.trades} (fills ${m.fills})  win rate ${pct(m.winRate)}  profit factor ${f(m.profitFactor)}`,
      `exposure ${pct(m.exposure)} of bars  turnover ${f(m.turnover)}x  fees ${f(r.result.final.feesPaid)}  slippage ${f(r.result.final.slippage)}`,
      `equity ${f(m.startEquity)} -> ${f(m.endEquity)}`,
    );
  }
  lines.push(`result: ${r.outPath}${r.reportPath ? `\nreport: ${r.reportPath}` : ''}`);
  return lines.join('\n') + '\n';
}

if (require.main === module) {
  try {
    const r = runCli(process.argv.slice(2));
    if (r) process.stdout.write(process.argv.includes('--json') ? JSON.stringify(r.json, null, 2) + '\n' : summary(r));
  } catch (err) {
    process.stderr.write(`backtest: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}
