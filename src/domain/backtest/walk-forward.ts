import type { OhlcvBar } from '../../contracts/bar';
import type { StrategyFactory } from '../strategies/types';
import { runBacktest, type BacktestOptions } from './engine';
import { computeMetrics, type BacktestMetrics } from './metrics';

/**
 * Walk-forward optimisation: slide a train window and the test window after it over the data, in BARS of the
 * time axis (distinct timestamps: with several symbols a bar is one timestamp, not one row as in the original).
 * For each window every parameter set of the grid is backtested on the train bars; the best by the objective is
 * then traded on the test bars only (it warms up on the train bars, trading nothing there), so every test result
 * is out of sample. Windows roll forward by the test length.
 */

export type Objective = 'sharpe' | 'totalReturn';
export type ParamSet = Record<string, number>;

export interface WalkForwardOptions {
  train: number;
  test: number;
  grid: Record<string, readonly number[]>;
  /** Builds the strategy for a parameter set; throws for an invalid combination (skipped). */
  build: (params: ParamSet) => StrategyFactory;
  objective?: Objective;
  backtest?: Omit<BacktestOptions, 'strategy' | 'tradeFrom'>;
  onProgress?: (done: number, total: number) => void;
}

export interface WalkForwardWindow {
  trainStart: string;
  trainEnd: string;
  testStart: string;
  testEnd: string;
  params: ParamSet;
  trainScore: number;
  test: BacktestMetrics;
}

export interface WalkForwardResult {
  objective: Objective;
  train: number;
  test: number;
  combinations: number;
  windows: WalkForwardWindow[];
  /** Test windows compounded: the out-of-sample return of the whole walk. */
  outOfSampleReturn: number;
}

export function gridCombinations(grid: Record<string, readonly number[]>): ParamSet[] {
  let out: ParamSet[] = [{}];
  for (const [key, values] of Object.entries(grid)) {
    out = out.flatMap((p) => values.map((v) => ({ ...p, [key]: v })));
  }
  return out;
}

const score = (m: BacktestMetrics, o: Objective) => (o === 'sharpe' ? (m.sharpe ?? -Infinity) : m.totalReturn);

export function walkForward(bars: readonly OhlcvBar[], opts: WalkForwardOptions): WalkForwardResult {
  const objective = opts.objective ?? 'sharpe';
  if (!(Number.isInteger(opts.train) && opts.train > 1 && Number.isInteger(opts.test) && opts.test > 0)) {
    throw new RangeError(`walk-forward needs integer train > 1 and test > 0 bars, got ${opts.train}/${opts.test}`);
  }
  // Index of the first row of each distinct timestamp.
  const starts: number[] = [];
  bars.forEach((b, i) => {
    if (i === 0 || b.timestamp !== bars[i - 1]!.timestamp) starts.push(i);
  });
  const rowsUntil = (ts: number) => (ts >= starts.length ? bars.length : starts[ts]!);
  const combos = gridCombinations(opts.grid).flatMap((p) => {
    try {
      return [{ params: p, factory: opts.build(p) }];
    } catch {
      return []; // e.g. fast >= slow
    }
  });
  if (combos.length === 0) throw new RangeError('walk-forward: no valid parameter combination in the grid');
  const nWindows = Math.max(0, Math.ceil((starts.length - opts.train) / opts.test));
  const total = nWindows * (combos.length + 1);
  let done = 0;
  const windows: WalkForwardWindow[] = [];
  let oos = 1;
  for (let w = 0; w < nWindows; w++) {
    const t0 = w * opts.test;
    const t1 = t0 + opts.train;
    const t2 = Math.min(t1 + opts.test, starts.length);
    const trainBars = bars.slice(rowsUntil(t0), rowsUntil(t1));
    let best: { params: ParamSet; factory: StrategyFactory; s: number } | undefined;
    for (const c of combos) {
      const r = runBacktest(trainBars, { ...opts.backtest, strategy: c.factory });
      const s = score(r.metrics, objective);
      if (!best || s > best.s) best = { ...c, s };
      opts.onProgress?.(++done, total);
    }
    const r = runBacktest(bars.slice(rowsUntil(t0), rowsUntil(t2)), {
      ...opts.backtest,
      strategy: best!.factory,
      tradeFrom: opts.train,
    });
    opts.onProgress?.(++done, total);
    const k = opts.train; // first test point in r.timestamps
    const testStartTs = r.timestamps[k]!;
    const test = computeMetrics({
      timestamps: r.timestamps.slice(k),
      equity: r.equity.slice(k),
      exposure: r.exposure.slice(k),
      trades: r.trades.filter((t) => t.timestamp >= testStartTs),
      startingCash: r.equity[k - 1] ?? r.startingCash,
    });
    oos *= 1 + test.totalReturn;
    windows.push({
      trainStart: r.timestamps[0]!,
      trainEnd: r.timestamps[k - 1]!,
      testStart: testStartTs,
      testEnd: r.timestamps[r.timestamps.length - 1]!,
      params: best!.params,
      trainScore: best!.s,
      test,
    });
  }
  return {
    objective,
    train: opts.train,
    test: opts.test,
    combinations: combos.length,
    windows,
    outOfSampleReturn: oos - 1,
  };
}
