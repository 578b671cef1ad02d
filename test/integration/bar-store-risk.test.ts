import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBars, upsertBars } from '../../src/adapters/postgres/bars';
import { findReplayFile, loadReplay, mergeByTime } from '../../src/adapters/marketdata/replay';
import { parseEnv } from '../../src/config';
import { riskLimits } from '../../src/domain/risk';
import { replayBars } from '../../src/services/bar-publishing';
import { PipelineHarness, testSignal } from '../support/pipeline';
import { logEvents } from '../support/faults';
import { expectSizedFromBars, type AtrSizedDecision } from '../support/risk-decisions';

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
    await h.start('bar-store');
    await h.start('quant');
  }, 180_000);
  afterAll(async () => {
    await h?.close();
  });

  it('stores every replayed bar once, and a trade is sized by ATR from the store with its ATR and volatility recorded', async () => {
    // The recorded NVDA and ORCL series under tickers of this run: trade workflow ids derive from symbol and bar
    // time, and the shared Temporal server remembers earlier runs' (a repeated id is a duplicate, not a trade).
    const run = randomBytes(3)
      .toString('hex')
      .toUpperCase()
      .replace(/[0-9]/g, (d) => 'GHIJKLMNOP'[Number(d)]!);
    const alias: Record<string, string> = { NVDA: `N${run}`, ORCL: `O${run}` };
    const series = await Promise.all(
      Object.entries(alias).map(async ([real, symbol]) => {
        const r = await loadReplay(await findReplayFile(DATA, real), symbol, {
          from: '2012-12-19',
          count: BARS_PER_SYMBOL,
        });
        return r.bars;
      }),
    );
    const replay = { bars: mergeByTime(series) };
    // Paced like npm start, so the venue sees later bars to fill against; the first 40 bars twice (a replay
    // that starts over: the store must still hold each bar once).
    // The first pass batched (8 bars of one symbol per message), the second one bar per message: every
    // consumer (bar store, quant, venue) takes both forms and de-duplicates bar by bar.
    await replayBars({ publisher: h.publisher, bars: replay.bars.slice(0, 40), intervalMs: 0, batchSize: 8 });
    await replayBars({ publisher: h.publisher, bars: replay.bars, intervalMs: 20 });

    // Every bar lands exactly once, with the file's values.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { rows } = await h.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM market_bars`);
      if (Number(rows[0]!.n) >= replay.bars.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const symbol of Object.values(alias)) {
      const stored = await loadBars(h.db.pool, symbol, '1d');
      const want = replay.bars.filter((b) => b.symbol === symbol);
      expect(stored.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume, b.source])).toEqual(
        want.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume, 'replay']),
      );
    }

    // A risk decision sized by the ATR stop from stored bars (the quant's first signals come before 15 bars
    // exist; those fall back to the 5 % stop, later ones must not).
    let decision: AtrSizedDecision | undefined;
    const until = Date.now() + 120_000;
    while (!decision && Date.now() < until) {
      const { rows } = await h.db.pool.query<AtrSizedDecision>(
        `SELECT workflow_id, symbol, signal_at, result, checks FROM risk_decisions
          WHERE result->'sizing'->>'method' = 'atr' AND symbol = ANY($1) ORDER BY signal_at LIMIT 1`,
        [Object.values(alias)],
      );
      decision = rows[0];
      if (!decision) await new Promise((r) => setTimeout(r, 500));
    }
    expect(decision, 'a risk decision sized by ATR').toBeDefined();
    const d = decision!;

    // Recompute from the file what RiskOps saw: the last barsNeeded bars up to the last stored one it read (the
    // decision records it; the store may be a bar behind the quant), never after the signal's bar.
    const limits = riskLimits(parseEnv(h.env).risk);
    const ofSymbol = replay.bars.filter((b) => b.symbol === d.symbol);
    expect(expectSizedFromBars(d, ofSymbol, limits), 'the realised-volatility check applied').toBe(true);
  }, 240_000);

  it("waits for the signal's own bar when the store is a bar behind, and sizes on it once stored", async () => {
    // A symbol of this test's own with 40 real NVDA bars stored, and a signal on the 41st before the store has it:
    // the bar-store process lagging the quant. RiskOps must wait (its retry policy, on the real worker and
    // Temporal) and size on the 41st bar, stored a second later, not on the 40th.
    const symbol = `W${randomBytes(3)
      .toString('hex')
      .toUpperCase()
      .replace(/[0-9]/g, (c) => 'GHIJKLMNOP'[Number(c)]!)}`;
    const { bars } = await loadReplay(await findReplayFile(DATA, 'NVDA'), symbol, { from: '2013-03-01', count: 41 });
    const signalBar = bars.at(-1)!;
    await upsertBars(h.db.pool, bars.slice(0, -1));

    const signal = testSignal({ symbol, price: signalBar.close, created_at: signalBar.timestamp });
    await h.publishSignal(signal);
    const decided = async () =>
      (
        await h.db.pool.query<AtrSizedDecision>(
          `SELECT symbol, signal_at, result, checks FROM risk_decisions WHERE signal_id = $1`,
          [signal.signal_id],
        )
      ).rows[0];
    // Store the bar once RiskOps has looked for it and said it waits (its first attempt); the waits then leave
    // 3.15 s before it would decide without the bar (waitDelayMs).
    const workflowId = `trade-${signal.signal_id}`;
    const waited = () =>
      logEvents(h, 'trade-worker', "risk waits for the signal's bar: the bar store is behind").filter(
        (e) => e.workflow_id === workflowId,
      );
    const until0 = Date.now() + 60_000;
    while (waited().length === 0 && Date.now() < until0) await new Promise((r) => setTimeout(r, 50));
    expect(waited()[0], 'RiskOps waited for the missing bar').toMatchObject({
      stored_through: bars.at(-2)!.timestamp,
      signal_bar: signalBar.timestamp,
      attempt: 1,
    });
    expect(await decided(), "no decision while the signal's bar is missing").toBeUndefined();
    await upsertBars(h.db.pool, [signalBar]);

    let d: AtrSizedDecision | undefined;
    const until = Date.now() + 60_000;
    while (!(d = await decided()) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    expect(d, 'a risk decision for the signal').toBeDefined();
    expect(d!.result.sizing.barsThrough).toBe(signalBar.timestamp);
    const limits = riskLimits(parseEnv(h.env).risk);
    expectSizedFromBars(d!, bars, limits);
  }, 120_000);
});
