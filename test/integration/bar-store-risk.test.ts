import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBars } from '../../src/adapters/postgres/bars';
import { loadWatchlistReplay } from '../../src/adapters/marketdata/replay';
import { parseEnv } from '../../src/config';
import { atr } from '../../src/domain/indicators/atr';
import { realizedVolatility } from '../../src/domain/indicators/realized-volatility';
import { barsNeeded, limitsFromEnv } from '../../src/domain/risk';
import { replayBars } from '../../src/workers/dataflow';
import { PipelineHarness } from '../support/pipeline';

/**
 * The bar store feeds RiskOps in the running pipeline: the watchlist replay (NVDA and ORCL from
 * ../shared/data) → market.bars → bar-store process → market_bars, and quant process → signals → intake →
 * trade workflow → RiskOps, which reads the stored bars. A trade is sized by the ATR stop, and its recorded
 * risk decision shows the ATR and realised volatility it used — equal to the values computed from the file.
 */
const DATA = path.resolve(__dirname, '../../../shared/data');
const BARS_PER_SYMBOL = 60;

describe('bar store → RiskOps (real RabbitMQ, PostgreSQL, Temporal; quant and bar-store processes)', () => {
  let h: PipelineHarness;

  beforeAll(async () => {
    h = await PipelineHarness.create();
    await h.start('exchange-sim');
    await h.start('trade-worker');
    await h.start('signal-intake');
    await h.start('bar-store');
    await h.start('quant');
  }, 180_000);
  afterAll(async () => {
    await h?.close();
  });

  it('stores every replayed bar once, and a trade is sized by ATR from the store with its ATR and volatility recorded', async () => {
    const replay = await loadWatchlistReplay(DATA, ['NVDA', 'ORCL'], {
      from: '2012-12-19',
      barsPerSymbol: BARS_PER_SYMBOL,
    });
    // Paced like npm start, so the venue sees later bars to fill against; the first half twice (a replay
    // that starts over: the store must still hold each bar once).
    await replayBars({ publisher: h.publisher, bars: replay.bars.slice(0, 40), intervalMs: 0 });
    await replayBars({ publisher: h.publisher, bars: replay.bars, intervalMs: 20 });

    // Every bar lands exactly once, with the file's values.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { rows } = await h.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM market_bars`);
      if (Number(rows[0]!.n) >= replay.bars.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const symbol of ['NVDA', 'ORCL']) {
      const stored = await loadBars(h.db.pool, symbol, '1d');
      const want = replay.bars.filter((b) => b.symbol === symbol);
      expect(stored.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume, b.source])).toEqual(
        want.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume, 'replay']),
      );
    }

    // A risk decision sized by the ATR stop from stored bars (the quant's first signals come before 15 bars
    // exist; those fall back to the 5 % stop, later ones must not).
    type Row = {
      workflow_id: string;
      symbol: string;
      signal_at: Date;
      result: { sizing: { atr: number; stopDistance: number } };
      checks: Array<{ name: string; value: number | null; detail?: string }>;
    };
    let decision: Row | undefined;
    const until = Date.now() + 120_000;
    while (!decision && Date.now() < until) {
      const { rows } = await h.db.pool.query<Row>(
        `SELECT workflow_id, symbol, signal_at, result, checks FROM risk_decisions
          WHERE result->'sizing'->>'method' = 'atr' ORDER BY signal_at LIMIT 1`,
      );
      decision = rows[0];
      if (!decision) await new Promise((r) => setTimeout(r, 500));
    }
    expect(decision, 'a risk decision sized by ATR').toBeDefined();
    const d = decision!;

    // Recompute from the file what RiskOps should have seen: the last barsNeeded bars up to the signal.
    const limits = limitsFromEnv(parseEnv(h.env).env);
    const upTo = replay.bars
      .filter((b) => b.symbol === d.symbol && Date.parse(b.timestamp) <= d.signal_at.getTime())
      .slice(-barsNeeded(limits));
    const wantAtr = atr(upTo, limits.atrPeriod);
    expect(wantAtr).not.toBeNull();
    expect(d.result.sizing.atr).toBeCloseTo(wantAtr!, 9);
    expect(d.result.sizing.stopDistance).toBeCloseTo(wantAtr! * limits.atrStopMultiple, 9);
    const vol = realizedVolatility(upTo, limits.realizedVolWindow, {
      session: 'equity',
      minReturns: limits.realizedVolMinReturns,
    });
    expect(vol).not.toBeNull();
    const volCheck = d.checks.find((c) => c.name === 'extreme_volatility.realized');
    expect(volCheck?.value).toBeCloseTo(vol!, 6);
    expect(volCheck?.detail ?? '').not.toMatch(/not applied/);
  }, 240_000);
});
