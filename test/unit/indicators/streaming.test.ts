import { describe, expect, it } from 'vitest';
import { Atr, Bollinger, Ema, Macd, Roc, Rsi, Sma, ZScore } from '../../../src/domain/indicators/streaming';
import { run } from '../../../src/cli/indicators';
import { readBarsCsvSync } from '../../../src/adapters/marketdata/csv';
import path from 'node:path';

describe('streaming indicators: warm-up and edge cases', () => {
  it('are undefined exactly until their documented warm-up', () => {
    const xs = Array.from({ length: 40 }, (_, i) => 10 + Math.sin(i));
    const first = (f: (x: number) => number | undefined) => xs.findIndex((x) => f(x) !== undefined);
    const sma = new Sma(5);
    const ema = new Ema(5);
    const rsi = new Rsi(14);
    const macd = new Macd(12, 26, 9);
    const bb = new Bollinger(20, 2);
    const z = new ZScore(20);
    const roc = new Roc(10);
    expect(first((x) => sma.update(x))).toBe(4);
    expect(first((x) => ema.update(x))).toBe(4);
    expect(first((x) => rsi.update(x))).toBe(14); // needs 15 closes
    expect(first((x) => (macd.update(x), macd.histogram))).toBe(33); // the 34th close, as in the original
    expect(first((x) => bb.update(x))).toBe(19);
    expect(first((x) => z.update(x))).toBe(19);
    expect(first((x) => roc.update(x))).toBe(10);
    const atr = new Atr(14);
    expect(xs.findIndex((x) => atr.update({ high: x + 1, low: x - 1, close: x }) !== undefined)).toBe(14);
  });

  it('RSI is 50 on a flat series, 100 when only rising, 0 when only falling (Wilder)', () => {
    const flat = new Rsi(3);
    const up = new Rsi(3);
    const down = new Rsi(3);
    for (let i = 0; i < 10; i++) {
      flat.update(5);
      up.update(5 + i);
      down.update(50 - i);
    }
    expect([flat.value, up.value, down.value]).toEqual([50, 100, 0]);
    // Wilder smoothing, by hand: changes +1,+1,-1 → avgGain 2/3, avgLoss 1/3; then +2 → (2/3·2+2)/3, (1/3·2)/3.
    const r = new Rsi(3);
    for (const c of [10, 11, 12, 11]) r.update(c);
    expect(r.value).toBeCloseTo((100 * (2 / 3)) / 1, 12);
    r.update(13);
    const g = ((2 / 3) * 2 + 2) / 3;
    const l = ((1 / 3) * 2) / 3;
    expect(r.value).toBeCloseTo(100 - 100 / (1 + g / l), 12);
  });

  it('EMA is a true exponential average, not an SMA (the original defect)', () => {
    const e = new Ema(3);
    const s = new Sma(3);
    for (const x of [1, 2, 3, 10]) {
      e.update(x);
      s.update(x);
    }
    expect(e.value).toBe(2 + 0.5 * (10 - 2)); // seed SMA(1,2,3)=2, α=0.5
    expect(s.value).toBe(5);
  });

  it('Bollinger uses the population σ; a flat window has zero width and z-score 0', () => {
    const bb = new Bollinger(4, 2);
    for (const x of [1, 2, 3, 4]) bb.update(x);
    const sd = Math.sqrt(1.25);
    expect(bb.middle).toBe(2.5);
    expect(bb.upper).toBeCloseTo(2.5 + 2 * sd, 14);
    const z = new ZScore(5);
    for (let i = 0; i < 30; i++) z.update(3599);
    expect(z.value).toBe(0);
  });

  it('reject bad periods and non-finite inputs', () => {
    expect(() => new Sma(0)).toThrow(/period/);
    expect(() => new Ema(2.5)).toThrow(/period/);
    expect(() => new Macd(26, 12, 9)).toThrow(/fast < slow/);
    expect(() => new Bollinger(20, 0)).toThrow(/multiplier/);
    expect(() => new Rsi(14).update(Number.NaN)).toThrow(/finite/);
  });
});

describe("advance and the …OrNaN getters (the strategies' double-only path)", () => {
  it("give exactly update's values and getters, NaN where those are undefined, on a real series", () => {
    const closes = readBarsCsvSync(path.resolve(__dirname, '../../../../shared/data/nvda-1999-2014.csv'), {
      symbol: 'NVDA',
    }).map((b) => b.close);
    const nan = (v: number | undefined) => (v === undefined ? Number.NaN : v);
    const pairs = [
      [new Sma(20), new Sma(20)],
      [new Ema(12), new Ema(12)],
      [new Rsi(14), new Rsi(14)],
      [new Roc(10), new Roc(10)],
    ] as const;
    const macdA = new Macd(12, 26, 9);
    const macdB = new Macd(12, 26, 9);
    const bbA = new Bollinger(20, 2);
    const bbB = new Bollinger(20, 2);
    let defined = 0;
    for (const c of closes) {
      for (const [a, b] of pairs) {
        const u = a.update(c);
        if (u !== undefined) defined++;
        expect(Object.is(b.advance(c), nan(u))).toBe(true);
      }
      expect(Object.is(macdB.advance(c), nan(macdA.update(c)))).toBe(true);
      expect([macdB.macdOrNaN, macdB.signalOrNaN, macdB.histogramOrNaN]).toEqual(
        [macdA.macd, macdA.signal, macdA.histogram].map(nan),
      );
      expect(Object.is(bbB.advance(c), nan(bbA.update(c)))).toBe(true);
      expect([bbB.upperOrNaN, bbB.middleOrNaN, bbB.lowerOrNaN, bbB.sigmaOrNaN]).toEqual(
        [bbA.upper, bbA.middle, bbA.lower, bbA.sigma].map(nan),
      );
    }
    expect(defined).toBeGreaterThan(4 * (closes.length - 30)); // the series went past every warm-up
  });
});

describe('npm run indicators', () => {
  const data = path.resolve(__dirname, '../../fixtures/bars/nvda-2013-04-15_2013-06-10.csv');
  const csv = (args: string[]) => {
    let s = '';
    run(['--data', data, ...args], (x) => (s += x));
    return s.trim().split('\n');
  };

  it('prints the documented header and empty fields during warm-up', () => {
    const lines = csv([]);
    expect(lines[0]).toBe(
      'date,close,sma_20,ema_20,rsi_14,macd,macd_signal,macd_hist,bb_upper,bb_middle,bb_lower,atr_14',
    );
    expect(lines[1]).toMatch(/^2013-04-15,[\d.]+,{10}$/);
    const row20 = lines[20]!.split(',');
    expect(row20[2]).not.toBe(''); // sma_20 defined on the 20th bar
    expect(row20[4]).not.toBe(''); // rsi_14 from the 15th
    expect(row20[6]).toBe(''); // the MACD signal needs 34 bars
  });

  it('flags change the periods and the column names; json has nulls; bad flags fail clearly', () => {
    expect(csv(['--sma', '5', '--ema', '8', '--rsi', '7', '--atr', '3', '--roc', '2'])[0]).toBe(
      'date,close,sma_5,ema_8,rsi_7,macd,macd_signal,macd_hist,bb_upper,bb_middle,bb_lower,atr_3,roc_2',
    );
    let s = '';
    run(['--data', data, '--format', 'json'], (x) => (s += x));
    const rows = JSON.parse(s) as Array<Record<string, unknown>>;
    expect(rows[0]!.sma_20).toBeNull();
    expect(typeof rows[30]!.sma_20).toBe('number');
    expect(() => csv(['--macd', '26,12,9'])).toThrow(/fast must be < slow/);
    expect(() => csv(['--format', 'xml'])).toThrow(/csv or json/);
    expect(() => run([], () => undefined)).toThrow(/--data/);
  });
});
