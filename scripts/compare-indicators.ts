/**
 * `npm run compare:indicators`: the measurement behind "own streaming indicators, not trading-signals"
 * (docs/quant.md). On both daily series it feeds SMA20, EMA20, RSI14, MACD(12,26,9), Bollinger(20,2) and ATR14
 * of each implementation the same closes, and prints
 *  - agreement: the worst relative difference after a 600-bar warm-up, and how many of the first 600 values differ
 *    by more than 1e-9 (the warm-up convention: trading-signals seeds EMA-type averages with the first value);
 *  - speed: bars/s through the whole set, best of 5 rounds, in this process.
 */
import path from 'node:path';
import { ATR, BollingerBands, EMA, MACD, RSI, SMA } from 'trading-signals';
import { readBarsCsvSync } from '../src/adapters/marketdata/csv';
import type { OhlcvBar } from '../src/contracts/bar';
import { Atr, Bollinger, Ema, Macd, Rsi, Sma } from '../src/domain/indicators/streaming';

const DATA = path.resolve(__dirname, '../../shared/data');
const bars: OhlcvBar[] = [
  ...readBarsCsvSync(path.join(DATA, 'nvda-1999-2014.csv'), { symbol: 'NVDA' }),
  ...readBarsCsvSync(path.join(DATA, 'orcl-1995-2014.csv'), { symbol: 'ORCL' }),
];
const WARM = 600;

type Row = Record<string, number | undefined>;
function ours(): (b: OhlcvBar) => Row {
  const s = new Sma(20),
    e = new Ema(20),
    r = new Rsi(14),
    m = new Macd(),
    bb = new Bollinger(20, 2),
    a = new Atr(14);
  return (b) => {
    m.update(b.close);
    bb.update(b.close);
    return {
      sma: s.update(b.close),
      ema: e.update(b.close),
      rsi: r.update(b.close),
      macd: m.macd,
      hist: m.histogram,
      bb: bb.upper,
      atr: a.update(b),
    };
  };
}
function theirs(): (b: OhlcvBar) => Row {
  const s = new SMA(20),
    e = new EMA(20),
    r = new RSI(14),
    m = new MACD(new EMA(12), new EMA(26), new EMA(9));
  const bb = new BollingerBands(20, 2),
    a = new ATR(14);
  return (b) => {
    const mm = m.update(b.close, false);
    return {
      sma: s.update(b.close, false) ?? undefined,
      ema: e.isStable ? e.update(b.close, false) : (e.update(b.close, false), undefined),
      rsi: r.update(b.close, false) ?? undefined,
      macd: mm?.macd,
      hist: mm?.histogram,
      bb: bb.update(b.close, false)?.upper,
      atr: a.update({ high: b.high, low: b.low, close: b.close }, false) ?? undefined,
    };
  };
}

function agreement(): void {
  for (const symbol of ['NVDA', 'ORCL']) {
    const series = bars.filter((b) => b.symbol === symbol);
    const o = ours();
    const t = theirs();
    const worst: Record<string, number> = {};
    const warmDiffers: Record<string, number> = {};
    series.forEach((b, i) => {
      const x = o(b);
      const y = t(b);
      for (const k of Object.keys(x)) {
        const a = x[k],
          c = y[k];
        if (a === undefined || c === undefined) continue;
        const rel = Math.abs(a - c) / Math.max(Math.abs(c), k === 'macd' || k === 'hist' ? b.close : 0, 1e-12);
        if (i < WARM) warmDiffers[k] = (warmDiffers[k] ?? 0) + (rel > 1e-9 ? 1 : 0);
        else worst[k] = Math.max(worst[k] ?? 0, rel);
      }
    });
    console.log(
      `${symbol}: worst relative difference after ${WARM} bars:`,
      Object.fromEntries(Object.entries(worst).map(([k, v]) => [k, v.toExponential(1)])),
    );
    console.log(`${symbol}: values differing by > 1e-9 during the first ${WARM} bars:`, warmDiffers);
  }
}

function speed(make: () => (b: OhlcvBar) => Row): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (let k = 0; k < 10; k++) {
      const f = make();
      for (const b of bars) f(b);
    }
    best = Math.min(best, performance.now() - t0);
  }
  return Math.round((10 * bars.length) / (best / 1000));
}

agreement();
const a = speed(ours);
const b = speed(theirs);
console.log(`speed, 6 indicators per bar over ${bars.length} bars (best of 5):`);
console.log(`  streaming (ours):  ${a.toLocaleString('en-US')} bars/s`);
console.log(`  trading-signals:   ${b.toLocaleString('en-US')} bars/s`);
console.log(`  ratio: ${(a / b).toFixed(1)}x`);
