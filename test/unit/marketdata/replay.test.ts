import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BarSchema } from '../../../src/contracts/bar';
import { loadWatchlistReplay, mergeByTime, speedDelayMs, toBarMessage } from '../../../src/adapters/marketdata/replay';

const DATA = path.resolve(__dirname, '../../../../shared/data');

/** The file's rows read independently of the CSV adapter: date → [open, high, low, close, volume]. */
function rawRows(file: string): Array<[string, number[]]> {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => {
      const c = l.split(',');
      return [c[0]!, [c[1], c[2], c[3], c[4], c[6]].map(Number)];
    });
}

describe('watchlist replay of ../shared/data', () => {
  it('reproduces every bar of both files exactly, interleaved by time, each series in order', async () => {
    const r = await loadWatchlistReplay(DATA, ['NVDA', 'ORCL'], { barsPerSymbol: 0 });
    expect(r.interval).toBe('1d');
    for (const [symbol, file] of Object.entries(r.files)) {
      const want = rawRows(file);
      const got = r.bars.filter((b) => b.symbol === symbol);
      expect(got.length, symbol).toBe(want.length);
      got.forEach((b, i) => {
        const [date, [o, h, l, c, v]] = want[i]!;
        expect([b.timestamp, b.open, b.high, b.low, b.close, b.volume]).toEqual([
          `${date}T00:00:00.000Z`,
          o,
          h,
          l,
          c,
          v,
        ]);
      });
    }
    expect(r.perSymbol).toEqual({ NVDA: 4012, ORCL: 5036 });
    for (let i = 1; i < r.bars.length; i++) expect(r.bars[i]!.timestamp >= r.bars[i - 1]!.timestamp).toBe(true);
    for (const b of r.bars) expect(BarSchema.safeParse(b).success).toBe(true);
    expect(new Set(r.bars.map((b) => b.message_id)).size).toBe(r.bars.length);
  });

  it('starts both symbols at --from and takes n bars of each', async () => {
    const r = await loadWatchlistReplay(DATA, ['NVDA', 'ORCL'], { from: '2012-12-19', barsPerSymbol: 3 });
    expect(r.bars.map((b) => `${b.symbol} ${b.timestamp.slice(0, 10)}`)).toEqual([
      'NVDA 2012-12-19',
      'ORCL 2012-12-19',
      'NVDA 2012-12-20',
      'ORCL 2012-12-20',
      'NVDA 2012-12-21',
      'ORCL 2012-12-21',
    ]);
  });

  it('names the missing file of an unknown ticker', async () => {
    await expect(loadWatchlistReplay(DATA, ['NVDA', 'ZZZZ'])).rejects.toThrow(
      /no recorded bars for ZZZZ: no zzzz-\*\.csv/,
    );
  });
});

describe('merge and pacing', () => {
  const b = (symbol: string, ts: string) =>
    toBarMessage({ symbol, timestamp: ts, open: 1, high: 1, low: 1, close: 1, volume: 1 }, '1m');
  it('merges by time, equal timestamps in series order', () => {
    const a = [b('A', '2024-01-01T00:01:00Z'), b('A', '2024-01-01T00:03:00Z')];
    const c = [b('C', '2024-01-01T00:01:00Z'), b('C', '2024-01-01T00:02:00Z')];
    expect(mergeByTime([a, c]).map((x) => `${x.symbol}${x.timestamp.slice(14, 16)}`)).toEqual([
      'A01',
      'C01',
      'C02',
      'A03',
    ]);
  });
  it('a speed factor divides the market-time gap; 0 means no pause', () => {
    const x = b('A', '2024-01-01T00:01:00Z');
    const y = b('A', '2024-01-01T00:02:00Z');
    expect(speedDelayMs(x, y, 1)).toBe(60_000);
    expect(speedDelayMs(x, y, 60)).toBe(1000);
    expect(speedDelayMs(x, y, 0)).toBe(0);
    expect(speedDelayMs(undefined, y, 1)).toBe(0);
  });
});
