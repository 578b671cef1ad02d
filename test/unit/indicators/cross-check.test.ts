import path from 'node:path';
import { ATR, BollingerBands, EMA, MACD, ROC, RSI, SMA } from 'trading-signals';
import { describe, expect, it } from 'vitest';
import { readBarsCsvSync } from '../../../src/adapters/marketdata/csv';
import type { OhlcvBar } from '../../../src/contracts/bar';
import { atrSeries } from '../../../src/domain/indicators/atr';
import { Atr, Bollinger, Ema, Macd, Roc, Rsi, Sma, ZScore } from '../../../src/domain/indicators/streaming';
import {
  batchBollinger,
  batchEma,
  batchMacd,
  batchRoc,
  batchRsi,
  batchSma,
  batchZ,
} from '../../support/batch-indicators';

/**
 * Every streaming indicator against two independent implementations, on the real series in ../shared/data:
 *  - batch textbook formulas written here from the definitions (two-pass means and σ, full-window sums), exact
 *    conventions, from the first defined bar on;
 *  - the `trading-signals` library after a warm-up of 600 bars (it seeds EMA-type averages with the first value
 *    instead of an SMA, a difference that decays below 1e-17 by then).
 * Tolerance: 1e-9 relative. The MACD line, signal and histogram are differences of two averages of the price: near a
 * zero crossing the value itself may be 1e-5 of the price, where any two correct float implementations differ by
 * cancellation, so for those three the error is relative to max(|value|, close) instead; likewise the z-score
 * (x − mean)/σ is 0 when x equals the mean, so its error is relative to max(|z|, 1).
 */
const DATA = path.resolve(__dirname, '../../../../shared/data');
const SERIES: Array<[string, string]> = [
  ['NVDA', 'nvda-1999-2014.csv'],
  ['ORCL', 'orcl-1995-2014.csv'],
  ['FUT', 'index-futures-2006-1min.csv'],
];
const TOL = 1e-9;
const WARM = 600;

type Num = number | undefined | null;
class Worst {
  readonly rel: Record<string, number> = {};
  readonly compared: Record<string, number> = {};
  check(name: string, got: Num, want: Num, i: number, scale = 0): void {
    if (want === undefined || want === null) {
      expect(got ?? undefined, `${name} defined at ${i} where the reference is not`).toBeUndefined();
      return;
    }
    expect(got, `${name} undefined at ${i}`).toBeTypeOf('number');
    const err = Math.abs(got! - want);
    const r = err / Math.max(Math.abs(want), scale, 1e-12);
    this.rel[name] = Math.max(this.rel[name] ?? 0, r);
    this.compared[name] = (this.compared[name] ?? 0) + 1;
  }
}

describe.each(SERIES)('indicators on %s (%s)', (symbol, file) => {
  const all: OhlcvBar[] = readBarsCsvSync(path.join(DATA, file), { symbol });
  // The minute series is long; 6,000 bars keep the naive batch formulas quick and still cover days of data.
  const bars = all.slice(0, 6000);
  const closes = bars.map((b) => b.close);

  it('match the batch textbook formulas from the first defined bar, to 1e-9 relative', () => {
    const w = new Worst();
    const ref = {
      sma: batchSma(closes, 20),
      sma50: batchSma(closes, 50),
      ema: batchEma(closes, 20),
      rsi: batchRsi(closes, 14),
      macd: batchMacd(closes, 12, 26, 9),
      bb: batchBollinger(closes, 20, 2),
      atr: atrSeries(bars, 14),
      z: batchZ(closes, 20),
      roc: batchRoc(closes, 10),
    };
    const o = {
      sma: new Sma(20),
      sma50: new Sma(50),
      ema: new Ema(20),
      rsi: new Rsi(14),
      macd: new Macd(12, 26, 9),
      bb: new Bollinger(20, 2),
      atr: new Atr(14),
      z: new ZScore(20),
      roc: new Roc(10),
    };
    bars.forEach((b, i) => {
      const c = b.close;
      w.check('sma_20', o.sma.update(c), ref.sma[i], i);
      w.check('sma_50', o.sma50.update(c), ref.sma50[i], i);
      w.check('ema_20', o.ema.update(c), ref.ema[i], i);
      w.check('rsi_14', o.rsi.update(c), ref.rsi[i], i);
      w.check('macd', o.macd.update(c), ref.macd.line[i], i, c);
      w.check('macd_signal', o.macd.signal, ref.macd.signal[i], i, c);
      w.check('macd_hist', o.macd.histogram, ref.macd.hist[i], i, c);
      o.bb.update(c);
      w.check('bb_upper', o.bb.upper, ref.bb[i]?.upper, i);
      w.check('bb_middle', o.bb.middle, ref.bb[i]?.middle, i);
      w.check('bb_lower', o.bb.lower, ref.bb[i]?.lower, i);
      w.check('atr_14', o.atr.update(b), i >= 14 ? ref.atr[i - 14] : undefined, i);
      w.check('zscore_20', o.z.update(c), ref.z[i], i, 1);
      w.check('roc_10', o.roc.update(c), ref.roc[i], i);
    });
    for (const [name, r] of Object.entries(w.rel)) expect(r, name).toBeLessThan(TOL);
    // Every indicator was compared on (nearly) every bar: nothing passed by being skipped.
    for (const name of Object.keys(w.rel)) expect(w.compared[name], name).toBeGreaterThanOrEqual(bars.length - 49);
    expect(Object.keys(w.rel)).toHaveLength(13);
  });

  it('match the trading-signals library after warm-up, to 1e-9 relative', () => {
    const w = new Worst();
    const t = {
      sma: new SMA(20),
      ema: new EMA(20),
      rsi: new RSI(14),
      macd: new MACD(new EMA(12), new EMA(26), new EMA(9)),
      bb: new BollingerBands(20, 2),
      atr: new ATR(14),
      roc: new ROC(10),
    };
    const o = {
      sma: new Sma(20),
      ema: new Ema(20),
      rsi: new Rsi(14),
      macd: new Macd(12, 26, 9),
      bb: new Bollinger(20, 2),
      atr: new Atr(14),
      roc: new Roc(10),
    };
    bars.forEach((b, i) => {
      const c = b.close;
      const got = {
        sma: o.sma.update(c),
        ema: o.ema.update(c),
        rsi: o.rsi.update(c),
        macd: o.macd.update(c),
        bb: o.bb.update(c),
        atr: o.atr.update(b),
        roc: o.roc.update(c),
      };
      const ref = {
        sma: t.sma.update(c, false),
        ema: t.ema.update(c, false),
        rsi: t.rsi.update(c, false),
        macd: t.macd.update(c, false),
        bb: t.bb.update(c, false),
        atr: t.atr.update({ high: b.high, low: b.low, close: c }, false),
        roc: t.roc.update(c, false),
      };
      if (i < WARM) return;
      // The values just returned are the ones read back below.
      expect(got.sma).toBe(o.sma.value);
      w.check('sma_20', o.sma.value, ref.sma, i);
      w.check('ema_20', o.ema.value, ref.ema, i);
      w.check('rsi_14', o.rsi.value, ref.rsi, i);
      w.check('macd', o.macd.macd, ref.macd?.macd, i, c);
      w.check('macd_signal', o.macd.signal, ref.macd?.signal, i, c);
      w.check('macd_hist', o.macd.histogram, ref.macd?.histogram, i, c);
      w.check('bb_upper', o.bb.upper, ref.bb?.upper, i);
      w.check('bb_middle', o.bb.middle, ref.bb?.middle, i);
      w.check('bb_lower', o.bb.lower, ref.bb?.lower, i);
      w.check('atr_14', o.atr.value, ref.atr, i);
      w.check('roc_10', o.roc.value, ref.roc, i);
    });
    for (const [name, r] of Object.entries(w.rel)) expect(r, name).toBeLessThan(TOL);
    expect(Object.keys(w.rel)).toHaveLength(11);
    for (const name of Object.keys(w.rel)) expect(w.compared[name], name).toBe(bars.length - WARM);
  });
});
