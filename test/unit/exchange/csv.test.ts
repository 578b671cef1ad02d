import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CsvBarError,
  detectLayout,
  parseBarsCsv,
  readBarsCsv,
  readBarsCsvSync,
} from '../../../src/adapters/marketdata/csv';

const dir = resolve(__dirname, '../../fixtures/bars');
const DAILY = 'Date,Open,High,Low,Close,Adj Close,Volume';

describe('CSV bar readers', () => {
  it('reads the daily Yahoo layout (split-adjusted OHLC, Adj Close ignored)', () => {
    const bars = readBarsCsvSync(resolve(dir, 'nvda-2008-06-20_2008-07-15.csv'), { symbol: 'NVDA' });
    expect(bars).toHaveLength(17);
    expect(bars[9]).toEqual({
      symbol: 'NVDA',
      timestamp: '2008-07-03T00:00:00.000Z',
      open: 12.98,
      high: 13.13,
      low: 12.4,
      close: 12.49,
      volume: 74_688_000,
    });
  });

  it('reads the minute layout, keeping the exchange-local wall clock as the label', async () => {
    const bars = await readBarsCsv(resolve(dir, 'index-futures-2006-01-02_03-1min.csv'), { symbol: 'ES' });
    expect(bars).toHaveLength(31);
    expect(bars[0]).toEqual({
      symbol: 'ES',
      timestamp: '2006-01-02T19:46:00.000Z',
      open: 3618,
      high: 3618,
      low: 3618,
      close: 3618,
      volume: 6,
    });
    expect(bars[16]!.timestamp).toBe('2006-01-03T09:01:00.000Z');
  });

  it('from/to compare on the timestamp prefix; limit caps the count', () => {
    const path = resolve(dir, 'nvda-2013-04-15_2013-06-10.csv');
    const may = readBarsCsvSync(path, { symbol: 'NVDA', from: '2013-05', to: '2013-05' });
    expect(may.map((b) => b.timestamp.slice(0, 10))[0]).toBe('2013-05-01');
    expect(may.at(-1)!.timestamp).toBe('2013-05-31T00:00:00.000Z');
    expect(may).toHaveLength(22);
    expect(readBarsCsvSync(path, { symbol: 'NVDA', from: '2013-05-22', limit: 2 }).map((b) => b.close)).toEqual([
      14.4, 14.63,
    ]);
    const min = readBarsCsvSync(resolve(dir, 'index-futures-2006-01-02_03-1min.csv'), {
      symbol: 'ES',
      from: '2006-01-03T09:05',
      to: '2006-01-03T09:07',
    });
    expect(min.map((b) => b.timestamp.slice(11, 16))).toEqual(['09:05', '09:06', '09:07']);
  });

  it('detects layouts and refuses unknown headers', () => {
    expect(detectLayout(DAILY)).toBe('daily');
    expect(detectLayout('Date,Time,Open,High,Low,Close,Volume,OpenInterest')).toBe('minute');
    expect(() => detectLayout('a,b,c')).toThrow(CsvBarError);
  });

  it('validates rows with their line number, or skips them on request', () => {
    const text = [
      DAILY,
      '2008-07-01,18.5,18.77,18.16,18.75,17.35,22036600',
      '2008-07-02,null,null,null,null,null,null',
      '2008-07-03,12.98,13.13,12.4,12.49,11.56,74688000',
    ].join('\n');
    expect(() => parseBarsCsv(text, { symbol: 'NVDA' })).toThrow('line 3: not a number: "null"');
    expect(parseBarsCsv(text, { symbol: 'NVDA', onInvalidRow: 'skip' }).map((b) => b.close)).toEqual([18.75, 12.49]);
    expect(() => parseBarsCsv(`${DAILY}\n2008-07-01,18.5,18.0,18.16,18.75,1,1`, { symbol: 'X' })).toThrow(
      /line 2: high\/low do not bound/,
    );
    expect(() => parseBarsCsv(`${DAILY}\n2008-07-02,1,1,1,1,1,1\n2008-07-01,1,1,1,1,1,1`, { symbol: 'X' })).toThrow(
      /line 3: timestamp .* is not after/,
    );
    expect(parseBarsCsv(`${DAILY}\r\n2008-07-01,1,2,1,1.5,1,10\r\n\r\n`, { symbol: 'X' })).toHaveLength(1);
  });
});
