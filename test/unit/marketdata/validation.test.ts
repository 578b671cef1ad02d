import { describe, expect, it } from 'vitest';
import { BarValidator, checkBar } from '../../../src/domain/marketdata/validation';
import type { OhlcvBar } from '../../../src/contracts/bar';

const NOW = Date.parse('2024-06-03T16:00:00Z');
const bar = (over: Partial<OhlcvBar> = {}): OhlcvBar => ({
  symbol: 'NVDA',
  timestamp: '2024-06-03T15:00:00.000Z',
  open: 100,
  high: 101,
  low: 99,
  close: 100.5,
  volume: 1000,
  ...over,
});

describe('bar validation', () => {
  it('accepts a sane bar, zero volume included', () => {
    expect(checkBar(bar(), NOW)).toEqual({ ok: true });
    expect(checkBar(bar({ volume: 0 }), NOW)).toEqual({ ok: true });
  });

  it.each([
    [{ high: 98, low: 99, open: 98.5, close: 98.5 }, 'high_below_low'],
    [{ low: 0 }, 'non_positive_price'],
    [{ close: -1 }, 'non_positive_price'],
    [{ volume: -5 }, 'negative_volume'],
    [{ open: Number.NaN }, 'non_finite'],
    [{ high: 100.2 }, 'high_low_not_bounding'],
    [{ timestamp: '2024-06-04T15:00:00.000Z' }, 'future_timestamp'],
    [{ timestamp: 'garbage' }, 'bad_timestamp'],
  ] as const)('rejects %j as %s', (over, reason) => {
    const r = checkBar(bar(over), NOW);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe(reason);
  });

  it('tolerates a minute of clock skew, not more', () => {
    expect(checkBar(bar({ timestamp: '2024-06-03T16:00:30.000Z' }), NOW).ok).toBe(true);
    expect(checkBar(bar({ timestamp: '2024-06-03T16:02:00.000Z' }), NOW).ok).toBe(false);
  });

  it('rejects bars out of order per symbol and interval, counts every reason, and keeps going', () => {
    const v = new BarValidator({ now: () => NOW });
    const seq: Array<[OhlcvBar, string]> = [
      [bar({ timestamp: '2024-06-03T14:00:00.000Z' }), '1h'],
      [bar({ symbol: 'ORCL', timestamp: '2024-06-03T13:00:00.000Z' }), '1h'], // other symbol: own clock
      [bar({ timestamp: '2024-06-03T13:00:00.000Z' }), '1h'], // older than NVDA's last
      [bar({ timestamp: '2024-06-03T14:00:00.000Z' }), '1h'], // repeat
      [bar({ timestamp: '2024-06-03T13:00:00.000Z' }), '1d'], // other interval: own clock
      [bar({ timestamp: '2024-06-03T15:00:00.000Z', low: -1 }), '1h'],
      [bar({ timestamp: '2024-06-03T15:00:00.000Z' }), '1h'],
    ];
    const ok = seq.map(([b, i]) => v.check(b, i).ok);
    expect(ok).toEqual([true, true, false, false, true, false, true]);
    expect(v.accepted).toBe(4);
    expect(v.rejected).toBe(3);
    expect(v.counts.out_of_order).toBe(2);
    expect(v.counts.non_positive_price).toBe(1);
  });
});
