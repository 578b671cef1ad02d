import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BarBatchSchema, barsOfMessage } from '../../../src/contracts/bar';
import { loadWatchlistReplay } from '../../../src/adapters/marketdata/replay';
import { toBarUnits } from '../../../src/services/bar-publishing';

const DATA = path.resolve(__dirname, '../../../../shared/data');

describe('bar batches', () => {
  it('groups bars per symbol, keeps each symbol in order, and loses or repeats none', async () => {
    const { bars } = await loadWatchlistReplay(DATA, ['NVDA', 'ORCL'], { from: '2013-01-01', barsPerSymbol: 45 });
    const units = toBarUnits(bars, 10);
    for (const u of units) {
      if (u.bars.length > 1) {
        expect(BarBatchSchema.safeParse(u.body).success).toBe(true);
        expect(new Set(u.bars.map((b) => b.symbol)).size).toBe(1);
      }
      expect(u.routingKey).toBe(`bars.1d.${u.bars[0]!.symbol}`);
    }
    const flat = units.flatMap((u) => u.bars);
    expect(flat).toHaveLength(bars.length);
    expect(new Set(flat.map((b) => b.message_id)).size).toBe(bars.length);
    for (const symbol of ['NVDA', 'ORCL']) {
      expect(flat.filter((b) => b.symbol === symbol)).toEqual(bars.filter((b) => b.symbol === symbol));
    }
    expect(units.length).toBeLessThan(bars.length / 5);
    // Deterministic batch ids: a re-publish is recognisably the same message.
    expect(toBarUnits(bars, 10).map((u) => u.messageId)).toEqual(units.map((u) => u.messageId));
    expect(toBarUnits(bars, 1)).toHaveLength(bars.length);
  });

  it('consumers read both forms; a batch mixing symbols or out of order is refused', async () => {
    const { bars } = await loadWatchlistReplay(DATA, ['NVDA', 'ORCL'], { from: '2013-01-01', barsPerSymbol: 3 });
    const nvda = bars.filter((b) => b.symbol === 'NVDA');
    const batch = toBarUnits(nvda, 3)[0]!.body;
    expect(barsOfMessage(batch)).toMatchObject({ ok: true, batched: true, bars: nvda });
    expect(barsOfMessage(nvda[0])).toMatchObject({ ok: true, batched: false, bars: [nvda[0]] });
    const mixed = { ...batch, bars: [nvda[0], bars.find((b) => b.symbol === 'ORCL')] };
    expect(barsOfMessage(mixed).ok).toBe(false);
    const reversed = { ...batch, bars: [...nvda].reverse() };
    const r = barsOfMessage(reversed);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.issues[0]!.message).toMatch(/strictly in time order/);
    expect(barsOfMessage({ kind: 'bar_batch', bars: [] }).ok).toBe(false);
  });
});
