import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBarsCsvSync } from '../../../src/adapters/marketdata/csv';
import type { OhlcvBar } from '../../../src/contracts/bar';
import {
  DEFAULT_SMA_CROSS,
  SMA_CROSS,
  SmaCrossStrategy,
  smaCrossConfidence,
  strategyFactory,
} from '../../../src/domain/strategies';

/**
 * Fixtures are verbatim slices of /work/shared/data/nvda-1999-2014.csv:
 *  - quant-nvda-2013-09-03_2013-10-31.csv: a choppy, low-volatility autumn (small separations, confidences ~0.76-0.82);
 *  - quant-nvda-2008-09-02_2008-10-31.csv: the 2008 crash (wide separations, confidence capped at 1).
 * Expected crossings were computed independently (a separate Python script over the same rows) from the rule:
 * emit when sign(SMA2 − SMA5) flips between bars where both exist.
 */
const fixture = (name: string, symbol = 'NVDA') =>
  readBarsCsvSync(resolve(__dirname, '../../fixtures/bars', name), { symbol });

function run(bars: OhlcvBar[], s = new SmaCrossStrategy()) {
  return bars.flatMap((b) => {
    const i = s.onBar(b);
    // Field by field: an intent's reason and indicators may be getters (built when read), not own properties.
    return i
      ? [
          {
            date: b.timestamp.slice(0, 10),
            side: i.side,
            confidence: i.confidence,
            reason: i.reason,
            indicators: i.indicators,
          },
        ]
      : [];
  });
}

describe('sma-cross on real NVDA bars', () => {
  it('2013-09/10: exact crossing dates, sides and confidences', () => {
    const out = run(fixture('quant-nvda-2013-09-03_2013-10-31.csv'));
    expect(out.map((o) => [o.date, o.side])).toEqual([
      ['2013-09-20', 'sell'],
      ['2013-10-07', 'buy'],
      ['2013-10-09', 'sell'],
      ['2013-10-14', 'buy'],
      ['2013-10-23', 'sell'],
    ]);
    expect(out[0]!.indicators.sma_fast).toBeCloseTo(15.86, 9);
    expect(out[0]!.indicators.sma_slow).toBeCloseTo(15.878, 9);
    expect(out.map((o) => o.confidence)).toEqual([
      expect.closeTo(0.7613364, 6),
      expect.closeTo(0.7886349, 6),
      expect.closeTo(0.819912, 6),
      expect.closeTo(0.7571596, 6),
      expect.closeTo(0.7990071, 6),
    ]);
  });

  it('2008-09/10 crash: exact crossings; confidence bounded to [0.75, 1] and capped at 1 on wide spreads', () => {
    const out = run(fixture('quant-nvda-2008-09-02_2008-10-31.csv'));
    expect(out.map((o) => [o.date, o.side])).toEqual([
      ['2008-09-18', 'buy'],
      ['2008-09-24', 'sell'],
      ['2008-09-25', 'buy'],
      ['2008-09-29', 'sell'],
      ['2008-10-13', 'buy'],
      ['2008-10-16', 'sell'],
      ['2008-10-17', 'buy'],
      ['2008-10-22', 'sell'],
      ['2008-10-28', 'buy'],
    ]);
    for (const o of out) {
      expect(o.confidence).toBeGreaterThanOrEqual(0.75);
      expect(o.confidence).toBeLessThanOrEqual(1);
    }
    expect(out.filter((o) => o.confidence === 1).map((o) => o.date)).toEqual([
      '2008-09-18',
      '2008-10-22',
      '2008-10-28',
    ]);
  });

  it('never repeats a side: signals alternate buy/sell', () => {
    const out = run(fixture('quant-nvda-2008-09-02_2008-10-31.csv'));
    for (let i = 1; i < out.length; i++) expect(out[i]!.side).not.toBe(out[i - 1]!.side);
  });

  it('is deterministic: two instances over the same bars agree exactly', () => {
    const bars = fixture('quant-nvda-2013-09-03_2013-10-31.csv');
    expect(run(bars)).toEqual(run(bars));
  });

  it('keeps no state across instances (a factory gives fresh strategies per symbol)', () => {
    const make = strategyFactory(SMA_CROSS);
    const a = make();
    const bars = fixture('quant-nvda-2013-09-03_2013-10-31.csv');
    run(bars, a as SmaCrossStrategy);
    expect(run(bars, make() as SmaCrossStrategy)).toEqual(run(bars));
  });
});

const bar = (close: number, i: number): OhlcvBar => ({
  symbol: 'TEST',
  timestamp: new Date(Date.UTC(2020, 0, 1 + i)).toISOString(),
  open: close,
  high: close,
  low: close,
  close,
  volume: 1000,
});
const series = (closes: number[]) => closes.map(bar);

describe('sma-cross rules', () => {
  it('emits nothing on a steadily rising series (the legacy state rule fired BUY on bar 5)', () => {
    expect(run(series([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))).toEqual([]);
  });

  it('needs `slow` bars before the first reading and one more bar on the other side to emit', () => {
    // bars 1-5 falling: first reading on bar 5 (fast below slow), no signal; bar 6 jumps: fast crosses above.
    const out = run(series([10, 9, 8, 7, 6, 12]));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ date: '2020-01-06', side: 'buy' });
  });

  it('a touch (fast == slow) is not a cross and does not reset the side', () => {
    // falling, then a bar where SMA2 == SMA5, then falling again → no signal at all.
    // closes 10,9,8,7,6 → SMA2=6.5 < SMA5=8. Next close x with (6+x)/2 == (9+8+7+6+x)/5 → x = 10.
    const s = new SmaCrossStrategy();
    const closes = [10, 9, 8, 7, 6, 10];
    const outs = series(closes).map((b) => s.onBar(b));
    expect(outs.every((o) => o === null)).toBe(true);
    // below → equal → above: exactly one BUY, on the bar that is above.
    const out2 = run(series([10, 9, 8, 7, 6, 10, 14]));
    expect(out2).toHaveLength(1);
    expect(out2[0]).toMatchObject({ date: '2020-01-07', side: 'buy' });
  });

  it('flat prices never signal', () => {
    expect(run(series(Array.from({ length: 30 }, () => 42.1)))).toEqual([]);
  });

  it('confidence formula: base + k·|fast−slow|/slow, clamped to [0, 1]', () => {
    const p = DEFAULT_SMA_CROSS;
    expect(smaCrossConfidence(100, 100, p)).toBe(0.75);
    expect(smaCrossConfidence(101, 100, p)).toBeCloseTo(0.85, 12);
    expect(smaCrossConfidence(99, 100, p)).toBeCloseTo(0.85, 12);
    expect(smaCrossConfidence(103, 100, p)).toBe(1);
    expect(smaCrossConfidence(200, 100, { baseConfidence: 0.5, separationWeight: 0 })).toBe(0.5);
  });

  it('custom periods work and bad parameters are refused up front', () => {
    const s = new SmaCrossStrategy({ fast: 3, slow: 7 });
    expect(s.params).toMatchObject({ fast: 3, slow: 7 });
    expect(() => new SmaCrossStrategy({ fast: 5, slow: 5 })).toThrow(/fast < slow/);
    expect(() => new SmaCrossStrategy({ fast: 0, slow: 5 })).toThrow();
    expect(() => new SmaCrossStrategy({ fast: 2.5, slow: 5 })).toThrow();
    expect(() => new SmaCrossStrategy({ baseConfidence: 1.5 })).toThrow();
    expect(() => strategyFactory('nope')).toThrow(/unknown strategy/);
    expect(() => strategyFactory(SMA_CROSS, { smaCross: { fast: 9, slow: 3 } })).toThrow();
  });
});
