import { describe, expect, it } from 'vitest';
import { atr, atrSeries, trueRange, trueRanges } from '../../../src/domain/indicators/atr';
import {
  barsPerYear,
  logReturns,
  realizedVolatility,
  sampleStdDev,
} from '../../../src/domain/indicators/realized-volatility';
import { flatBars } from './helpers';

describe('ATR (Wilder)', () => {
  it('true range counts gaps against the previous close', () => {
    expect(trueRange({ high: 11, low: 10, close: 10.5 }, 10.5)).toBe(1);
    expect(trueRange({ high: 15, low: 14, close: 14.5 }, 10)).toBe(5); // gap up
    expect(trueRange({ high: 9, low: 8, close: 8.5 }, 12)).toBe(4); // gap down
  });

  it('needs period + 1 bars', () => {
    expect(atr(flatBars(14), 14)).toBeNull();
    expect(atr(flatBars(15), 14)).toBe(2);
    expect(atrSeries(flatBars(20), 14)).toHaveLength(6);
  });

  it('seeds with the mean, then smooths: ATR_t = (ATR_{t−1}·(n−1) + TR_t) / n', () => {
    const bars = [
      { high: 10, low: 9, close: 10 },
      { high: 11, low: 10, close: 11 }, // TR 1
      { high: 14, low: 11, close: 12 }, // TR 3
      { high: 12, low: 10, close: 11 }, // TR 2
      { high: 17, low: 15, close: 16 }, // TR 6 (gap from 11)
    ];
    expect(trueRanges(bars)).toEqual([1, 3, 2, 6]);
    const s = atrSeries(bars, 2);
    expect(s[0]).toBe(2); // (1 + 3) / 2
    expect(s[1]).toBe(2); // (2·1 + 2) / 2
    expect(s[2]).toBe(4); // (2·1 + 6) / 2
    expect(atr(bars, 2)).toBe(4);
  });

  it('rejects a non-positive period', () => expect(() => atr(flatBars(5), 0)).toThrow(RangeError));
});

describe('realised volatility', () => {
  it('log returns and sample standard deviation', () => {
    expect(logReturns([100, 110, 0, 121])).toEqual([Math.log(1.1)]);
    expect(sampleStdDev([1])).toBeNull();
    expect(sampleStdDev([1, 3])).toBeCloseTo(Math.SQRT2);
  });

  it('infers bars per year from the spacing', () => {
    const daily = ['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z', '2024-01-03T00:00:00Z', '2024-01-06T00:00:00Z'];
    expect(barsPerYear(daily)).toBe(252);
    const weekly = ['2024-01-01T00:00:00Z', '2024-01-08T00:00:00Z', '2024-01-15T00:00:00Z'];
    expect(barsPerYear(weekly)).toBeCloseTo(252 / 5);
    const minutes = ['2024-01-02T14:30:00Z', '2024-01-02T14:31:00Z', '2024-01-02T14:32:00Z'];
    expect(barsPerYear(minutes)).toBe(252 * 390);
    expect(barsPerYear(minutes, 'futures')).toBe(252 * 23 * 60);
    expect(barsPerYear(minutes, 'crypto')).toBe(365 * 24 * 60);
    expect(barsPerYear(['garbage'])).toBe(252);
  });

  it('annualises the standard deviation of the last `window` returns', () => {
    const bars = Array.from({ length: 30 }, (_, i) => ({
      timestamp: new Date(Date.UTC(2024, 0, 1 + i)).toISOString(),
      close: i % 2 ? 110 : 100,
    }));
    const r = Math.log(1.1);
    // 20 alternating returns ±r: mean 0, sample variance 20r²/19.
    expect(realizedVolatility(bars, 20)).toBeCloseTo(Math.sqrt((20 * r * r) / 19) * Math.sqrt(252), 10);
    expect(realizedVolatility(bars.slice(0, 5), 20, { minReturns: 10 })).toBeNull();
    expect(realizedVolatility(flatBars(30), 20)).toBe(0);
  });
});

describe("the risk engine's in-place forms give the composed definitions bit for bit", () => {
  // A seeded LCG: the same sample on every run.
  let seed = 4242;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const sample = (n: number, minutes: boolean) => {
    let close = 50;
    let t = Date.UTC(2010, 0, 4);
    return Array.from({ length: n }, () => {
      const prev = close;
      close = next() < 0.03 ? 0 : Math.max(0.5, close * (1 + (next() - 0.5) * 0.08)); // now and then a bad close
      t += minutes ? 60_000 * (1 + Math.floor(next() * 3)) : 86_400_000 * (next() < 0.2 ? 3 : 1);
      const high = Math.max(prev, close) * (1 + next() * 0.02);
      const low = Math.min(prev, close) * (1 - next() * 0.02);
      return { timestamp: new Date(t).toISOString(), close, high, low };
    });
  };

  it('realizedVolatility = sampleStdDev(logReturns(closes)) × √barsPerYear(timestamps) of the last window + 1 bars', () => {
    let compared = 0;
    for (let k = 0; k < 400; k++) {
      const bars = sample(1 + Math.floor(next() * 40), k % 2 === 0);
      const window = 1 + Math.floor(next() * 30);
      const session = (['equity', 'futures', 'crypto'] as const)[k % 3]!;
      const recent = bars.slice(-(window + 1));
      const returns = logReturns(recent.map((b) => b.close));
      const sd = returns.length >= 2 ? sampleStdDev(returns) : null;
      const want =
        sd === null
          ? null
          : sd *
            Math.sqrt(
              barsPerYear(
                recent.map((b) => b.timestamp),
                session,
              ),
            );
      const got = realizedVolatility(bars, window, { session });
      expect(got).toBe(want !== null && Number.isFinite(want) ? want : null);
      if (got !== null) compared++;
    }
    expect(compared).toBeGreaterThan(200);
  });

  it('atr is the last value of atrSeries', () => {
    for (let k = 0; k < 300; k++) {
      const bars = sample(1 + Math.floor(next() * 40), false);
      const period = 1 + Math.floor(next() * 20);
      const series = atrSeries(bars, period);
      const last = series[series.length - 1];
      expect(atr(bars, period)).toBe(last !== undefined && Number.isFinite(last) ? last : null);
    }
  });
});
