import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readBarsCsvSync } from '../../src/adapters/marketdata/csv';
import { mergeByTime, toBarMessage } from '../../src/adapters/marketdata/replay';
import { loadBars } from '../../src/adapters/postgres/bars';
import { createPool } from '../../src/adapters/postgres/pool';
import { INTAKE_SIGNALS_QUEUE, MARKET_BARS_EXCHANGE, barRoutingKey, withChannel } from '../../src/adapters/rabbitmq';
import { sleep } from '../../src/lib/sleep';
import type { Bar } from '../../src/contracts/bar';
import { parseSignalMessage, type TradeSignal } from '../../src/contracts/signal';
import { SignalEngine, strategyFactories } from '../../src/domain/strategies';
import { PipelineHarness } from '../support/pipeline';

/**
 * The quant process on the real broker and database, in a private vhost with a fresh database (PipelineHarness):
 *  - bars on RabbitMQ become signals on RabbitMQ for every configured strategy, exactly the signals (ids and
 *    bodies) the pure engine computes; the same bars published again give no new signal_id;
 *  - kill -9 of the quant in the middle of the stream, then a restart: it warms every series up from the bar store
 *    (market_bars, written by the bar-store worker) and the signals, de-duplicated by id, are exactly those of an
 *    uninterrupted run.
 */
const DATA = path.resolve(__dirname, '../../../shared/data');
const STRATEGIES = 'sma-cross,ema-cross,macd,bollinger,rsi,ml';
const ACCOUNT = 'acct-quant-restart';

function bars(): Bar[] {
  const load = (file: string, symbol: string) =>
    readBarsCsvSync(path.join(DATA, file), { symbol, from: '2013-01', to: '2013-12' }).map((b) =>
      toBarMessage(b, '1d'),
    );
  return mergeByTime([load('nvda-1999-2014.csv', 'NVDA'), load('orcl-1995-2014.csv', 'ORCL')]);
}

/** What an uninterrupted quant emits: the pure engines over the same bars, with the same id scope. */
function expected(all: readonly Bar[]): Map<string, TradeSignal> {
  const engines = strategyFactories(STRATEGIES).map((f) => new SignalEngine(f, { signalScope: ACCOUNT }));
  const out = new Map<string, TradeSignal>();
  for (const b of all)
    for (const e of engines) {
      const o = e.process(b);
      if (o.kind === 'signal') out.set(o.signal.signal_id, o.signal);
    }
  return out;
}

let h: PipelineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function publish(harness: PipelineHarness, list: readonly Bar[]): Promise<void> {
  for (const b of list) {
    await harness.publisher.publishJson(MARKET_BARS_EXCHANGE, barRoutingKey(b.interval, b.symbol), b, {
      messageId: b.message_id,
      correlationId: b.correlation_id,
    });
  }
}

async function depth(harness: PipelineHarness, queue: string): Promise<number> {
  return withChannel(harness.rabbit.connection!, async (ch) => (await ch.checkQueue(queue)).messageCount);
}

/**
 * Read the signals queue into `got` until it holds at least n signals and nothing more has come for a moment.
 * The quant sends the signals of a turn in one `signal_batch` message (and a lone one as a plain signal): every
 * message is read as its signals, each checked against the contract.
 */
async function settle(harness: PipelineHarness, got: TradeSignal[], n: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let still = 0;
  for (;;) {
    const more = await drain(harness);
    got.push(...more);
    still = more.length === 0 ? still + 1 : 0;
    if (got.length >= n && still >= 10) return;
    if (Date.now() > deadline) throw new Error(`signals: expected at least ${n}, have ${got.length}`);
    await sleep(200);
  }
}

async function drain(harness: PipelineHarness): Promise<TradeSignal[]> {
  return withChannel(harness.rabbit.connection!, async (ch) => {
    const out: TradeSignal[] = [];
    for (;;) {
      const m = await ch.get(INTAKE_SIGNALS_QUEUE, { noAck: true });
      if (!m) return out;
      const r = parseSignalMessage(m.content);
      if (!r.ok) throw new Error(`a message on the signals queue breaks the contract: ${r.reason}`);
      out.push(...r.value);
    }
  });
}

describe('quant process over RabbitMQ', () => {
  it("publishes every configured strategy's signals; the same bars again give no new signal_id", async () => {
    h = await PipelineHarness.create({ STRATEGY_TYPE: STRATEGIES, ACCOUNT_ID: ACCOUNT, REPLAY_FROM: '2013-01-01' });
    const all = bars();
    const want = expected(all);
    expect(new Set([...want.values()].map((s) => s.strategy)).size).toBe(6);
    await h.start('quant');
    await publish(h, all);
    const got: TradeSignal[] = [];
    await settle(h, got, want.size);
    expect(got.length).toBe(want.size);
    expect(new Map(got.map((s) => [s.signal_id, s]))).toEqual(want);

    await publish(h, all); // redelivery of every bar
    await sleep(1000);
    while ((await depth(h, 'quant.bars')) > 0) await sleep(200);
    await sleep(2000);
    const again = await drain(h);
    for (const s of again) expect(want.get(s.signal_id), s.signal_id).toEqual(s);
  });

  it('kill -9 mid-replay, restart: warmed up from the bar store, the same signals as an uninterrupted run', async () => {
    h = await PipelineHarness.create({ STRATEGY_TYPE: STRATEGIES, ACCOUNT_ID: ACCOUNT, REPLAY_FROM: '2013-01-01' });
    const all = bars();
    const want = expected(all);
    const cut = Math.floor(all.length * 0.55);
    await h.start('bar-store');
    await h.start('quant');
    await publish(h, all.slice(0, cut));
    // Let the quant get part-way through, then crash it (un-acked bars go back to the queue).
    const firstHalf = expected(all.slice(0, cut)).size;
    const got: TradeSignal[] = [];
    while (got.length < firstHalf / 2) {
      got.push(...(await drain(h)));
      await sleep(50);
    }
    await h.stop('quant', 'SIGKILL');
    await publish(h, all.slice(cut));
    // The bar store keeps running: wait until it holds every bar published before the crash.
    const pool = createPool(h.db.url, 1);
    try {
      for (;;) {
        const n = (await loadBars(pool, 'NVDA', '1d')).length + (await loadBars(pool, 'ORCL', '1d')).length;
        if (n >= cut) break;
        await sleep(100);
      }
    } finally {
      await pool.end();
    }
    const restarted = await h.start('quant');
    await settle(h, got, want.size);
    const unique = new Map<string, TradeSignal>();
    for (const s of got) {
      const seen = unique.get(s.signal_id);
      if (seen) expect(s, 'a re-published signal is identical').toEqual(seen);
      unique.set(s.signal_id, s);
    }
    expect(unique).toEqual(want);
    expect(restarted.output()).toMatch(/series warmed up from history/);
  });
});
