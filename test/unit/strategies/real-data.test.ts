import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBarsCsvSync } from '../../../src/adapters/marketdata/csv';
import type { OhlcvBar } from '../../../src/contracts/bar';
import { STRATEGY_NAMES, strategyFactory, type StrategyName } from '../../../src/domain/strategies';
import { batchBollinger, batchRsi, batchSma } from '../../support/batch-indicators';

/**
 * Every strategy on the real daily series in ../shared/data, with default parameters.
 *  - Pinned results (count, first signals, last signal, Σ confidence) catch any change of behaviour; for the
 *    rule-based strategies the signal dates are also recomputed here from batch textbook indicators, so the pins
 *    are not just our own output played back.
 *  - Properties every strategy must have: confidence in [0, 1], sides alternate (emit on change only), far
 *    fewer signals than bars, prefix-stable (a signal never depends on a later bar), deterministic.
 */
const DATA = path.resolve(__dirname, '../../../../shared/data');
const SERIES = {
  NVDA: readBarsCsvSync(path.join(DATA, 'nvda-1999-2014.csv'), { symbol: 'NVDA' }),
  ORCL: readBarsCsvSync(path.join(DATA, 'orcl-1995-2014.csv'), { symbol: 'ORCL' }),
};

interface Out {
  i: number;
  date: string;
  side: string;
  confidence: number;
}
function run(name: string, bars: OhlcvBar[]): Out[] {
  const s = strategyFactory(name)();
  return bars.flatMap((b, i) => {
    const o = s.onBar(b);
    return o ? [{ i, date: b.timestamp.slice(0, 10), side: o.side, confidence: o.confidence }] : [];
  });
}

type Pin = [count: number, first: string, last: string, sumConfidence: number];
const PINS: Record<'NVDA' | 'ORCL', Record<StrategyName, Pin>> = {
  NVDA: {
    'sma-cross': [888, '1999-02-04 buy,1999-02-09 sell,1999-02-12 buy', '2014-12-26 sell', 755.694186],
    'ema-cross': [720, '1999-02-05 buy,1999-02-09 sell,1999-02-11 buy', '2014-12-30 sell', 593.629914],
    macd: [300, '1999-04-08 buy,1999-04-13 sell,1999-05-11 buy', '2014-12-08 sell', 267.745222],
    bollinger: [72, '1999-02-23 sell,1999-03-23 buy,1999-05-18 sell', '2014-12-16 buy', 59.910522],
    rsi: [33, '1999-07-12 sell,1999-09-24 buy,1999-11-04 sell', '2014-11-04 sell', 25.323496],
    momentum: [342, '1999-02-08 sell,1999-02-12 buy,1999-03-10 sell', '2014-12-29 buy', 296.785726],
    mrm: [278, '1999-02-04 buy,1999-02-17 sell,1999-03-05 buy', '2014-10-22 sell', 250.2],
    ml: [800, '1999-04-13 buy,1999-04-19 sell,1999-04-20 buy', '2014-12-24 sell', 457.99827],
    ensemble: [749, '1999-01-28 sell,1999-02-04 buy,1999-02-09 sell', '2014-12-26 sell', 478.554597],
  },
  ORCL: {
    'sma-cross': [1183, '1995-01-12 sell,1995-01-17 buy,1995-01-23 sell', '2014-12-29 sell', 978.509209],
    'ema-cross': [1043, '1995-01-12 sell,1995-01-17 buy,1995-01-23 sell', '2014-12-30 sell', 838.830879],
    macd: [416, '1995-03-22 sell,1995-05-03 buy,1995-06-06 sell', '2014-12-18 buy', 356.478134],
    bollinger: [119, '1995-02-15 sell,1995-03-30 buy,1995-05-12 sell', '2014-12-18 sell', 100.303952],
    rsi: [29, '1995-03-03 sell,1996-04-09 buy,1996-06-21 sell', '2013-11-13 sell', 22.161348],
    momentum: [401, '1995-01-19 buy,1995-01-23 sell,1995-02-06 buy', '2014-12-18 buy', 340.170047],
    mrm: [297, '1995-01-20 sell,1995-01-31 buy,1995-02-07 sell', '2014-10-29 sell', 267.3],
    ml: [1332, '1995-03-22 sell,1995-03-23 buy,1995-03-28 sell', '2014-12-26 buy', 773.455332],
    ensemble: [974, '1995-01-09 buy,1995-01-12 sell,1995-01-17 buy', '2014-12-18 sell', 631.673891],
  },
};

/** The original rules on batch indicators: (side or null) per bar, latched so a side never repeats. */
function latched(wants: Array<'buy' | 'sell' | null>, dates: string[]): string[] {
  let last: string | null = null;
  const out: string[] = [];
  wants.forEach((w, i) => {
    if (w && w !== last) {
      out.push(`${dates[i]} ${w}`);
      last = w;
    }
  });
  return out;
}

describe.each(Object.keys(SERIES) as Array<'NVDA' | 'ORCL'>)('strategies on %s daily bars', (symbol) => {
  const bars = SERIES[symbol];
  const closes = bars.map((b) => b.close);
  const dates = bars.map((b) => b.timestamp.slice(0, 10));

  it.each([...STRATEGY_NAMES])('%s: pinned results and the properties every strategy has', (name) => {
    const out = run(name, bars);
    const [count, first, last, sum] = PINS[symbol][name];
    expect(out).toHaveLength(count);
    expect(
      out
        .slice(0, 3)
        .map((o) => `${o.date} ${o.side}`)
        .join(','),
    ).toBe(first);
    expect(`${out.at(-1)!.date} ${out.at(-1)!.side}`).toBe(last);
    expect(out.reduce((a, o) => a + o.confidence, 0)).toBeCloseTo(sum, 5);
    for (const o of out) {
      expect(o.confidence).toBeGreaterThanOrEqual(0);
      expect(o.confidence).toBeLessThanOrEqual(1);
    }
    for (let k = 1; k < out.length; k++) expect(out[k]!.side).not.toBe(out[k - 1]!.side);
    expect(out.length).toBeLessThan(bars.length / 3);
    // Prefix-stable: the first 60 % of the bars give exactly the signals of the full run before that point.
    const cut = Math.floor(bars.length * 0.6);
    expect(run(name, bars.slice(0, cut))).toEqual(out.filter((o) => o.i < cut));
  });

  it('bollinger, rsi and mrm signal dates match the original rules on batch indicators', () => {
    const bb = batchBollinger(closes, 20, 2);
    const wantBb = closes.map((c, i) => (!bb[i] ? null : c < bb[i].lower ? 'buy' : c > bb[i].upper ? 'sell' : null));
    expect(run('bollinger', bars).map((o) => `${o.date} ${o.side}`)).toEqual(latched(wantBb, dates));

    const r = batchRsi(closes, 14);
    const wantRsi = r.map((v) => (v === undefined ? null : v < 30 ? 'buy' : v > 70 ? 'sell' : null));
    expect(run('rsi', bars).map((o) => `${o.date} ${o.side}`)).toEqual(latched(wantRsi, dates));

    const ma = batchSma(closes, 10);
    const wantMrm = closes.map((c, i) => {
      const m = ma[i];
      if (m === undefined || i === 0) return null;
      const mom = c - closes[i - 1]!;
      return c < m * 0.99 && mom > 0 ? 'buy' : c > m * 1.01 && mom < 0 ? 'sell' : null;
    });
    expect(run('mrm', bars).map((o) => `${o.date} ${o.side}`)).toEqual(latched(wantMrm, dates));
  });
});
