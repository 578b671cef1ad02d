/**
 * A fingerprint of everything the quant decides, for checking that a speed change leaves every output bit for bit
 * the same: run it before and after the change and compare the lines (`npx tsx scripts/quant-fingerprint.ts`).
 *
 * - engine: every outcome (kind, signal with its id, confidence and created_at, reason, indicator record) of the
 *   nine strategies side by side (SignalEngineSet over strategySet) and each strategy in its own SignalEngine, on
 *   the three series of ../shared/data, unscoped and scoped, with every 7th bar redelivered and a stale one;
 *   the bars built the way the benchmark builds them (CSV reader, toBarMessage: the replay source) and decoded from JSON as the worker
 *   gets them;
 * - backtest: the whole result (equity, cash, exposure, trades, signals, metrics, final) of every strategy over
 *   both daily series, and of the MA crossover over the minute series.
 * Each line is a SHA-256 of the JSON of its outputs; numbers are printed exactly (JSON keeps every double).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readBarsCsvSync } from '../src/adapters/marketdata/csv';
import { barsOfMessage, type Bar, type OhlcvBar } from '../src/contracts/bar';
import { toBarMessage } from '../src/adapters/marketdata/replay';
import { STRATEGY_NAMES } from '../src/contracts/strategies';
import { mergeSeries, runBacktest } from '../src/domain/backtest';
import {
  SignalEngine,
  SignalEngineSet,
  strategyFactory,
  strategySet,
  type EngineOutcome,
} from '../src/domain/strategies';

const DATA = path.resolve(__dirname, '../../shared/data');

/** A recorded bar as the replay source publishes it (source `bench`). */
const toBar = (b: OhlcvBar, interval: string): Bar => toBarMessage(b, interval, 'bench');

function outcomeJson(o: EngineOutcome): string {
  switch (o.kind) {
    case 'signal':
      return JSON.stringify([o.kind, o.signal, o.reason, o.indicators]);
    case 'duplicate':
      return JSON.stringify([o.kind, o.signal]);
    case 'invalid':
      return JSON.stringify([o.kind, o.reason]);
    default:
      return o.kind;
  }
}

/** The bars in delivery order with every 7th redelivered right after it and, every 500, one from 100 bars back. */
function withRedeliveries(bars: readonly Bar[]): Bar[] {
  const out: Bar[] = [];
  for (let i = 0; i < bars.length; i++) {
    out.push(bars[i]!);
    if (i % 7 === 3) out.push(bars[i]!);
    if (i % 500 === 499) out.push(bars[i - 100]!);
  }
  return out;
}

function main(): void {
  const nvda = readBarsCsvSync(path.join(DATA, 'nvda-1999-2014.csv'), { symbol: 'NVDA' });
  const orcl = readBarsCsvSync(path.join(DATA, 'orcl-1995-2014.csv'), { symbol: 'ORCL' });
  const fut = readBarsCsvSync(path.join(DATA, 'index-futures-2006-1min.csv'), { symbol: 'ES' });
  const daily = mergeSeries([nvda, orcl]);
  const csvBars = [...daily.map((b) => toBar(b, '1d')), ...fut.map((b) => toBar(b, '1m'))];
  const decoded = csvBars.map((b) => {
    const m = barsOfMessage(JSON.parse(JSON.stringify(b)));
    if (!m.ok) throw new Error('a bench bar does not decode');
    return m.bars[0]!;
  });
  const factories = STRATEGY_NAMES.map((n) => strategyFactory(n));
  const lines: string[] = [];
  for (const [label, bars] of [
    ['replay', csvBars],
    ['decoded', decoded],
  ] as const) {
    const feed = withRedeliveries(bars);
    for (const scope of [undefined, 'acct-7']) {
      const h = createHash('sha256');
      const set = new SignalEngineSet(strategySet(factories), { signalScope: scope, outcomeCacheSize: 300 });
      let n = 0;
      for (const bar of feed) {
        for (const o of set.process(bar)) {
          h.update(outcomeJson(o) + '\n');
          n++;
        }
      }
      lines.push(`engine-set ${label} scope=${scope ?? '-'} outcomes=${n} ${h.digest('hex')}`);
    }
    if (label === 'replay') {
      for (const f of factories) {
        const h = createHash('sha256');
        const e = new SignalEngine(f, { outcomeCacheSize: 300 });
        for (const bar of feed) h.update(outcomeJson(e.process(bar)) + '\n');
        lines.push(`engine ${e.strategyName} ${h.digest('hex')}`);
      }
    }
  }
  for (const name of STRATEGY_NAMES) {
    const r = runBacktest(daily, { strategy: strategyFactory(name) });
    lines.push(
      `backtest daily ${name} signals=${r.signals.length} trades=${r.trades.length} ` +
        createHash('sha256').update(JSON.stringify(r)).digest('hex'),
    );
  }
  const r = runBacktest(fut, { strategy: strategyFactory('sma-cross'), barPeriod: 'intraday' });
  lines.push(
    `backtest minute sma-cross signals=${r.signals.length} trades=${r.trades.length} ` +
      createHash('sha256').update(JSON.stringify(r)).digest('hex'),
  );
  process.stdout.write(lines.join('\n') + '\n');
}

main();
