import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bar } from '../../src/contracts/bar';
import { STRATEGY_NAMES } from '../../src/contracts/strategies';
import { TradeSignalSchema, type TradeSignal } from '../../src/contracts/signal';
import { createLogger } from '../../src/logging';
import {
  ConfirmPublisher,
  RabbitConnection,
  RabbitManagement,
  assertConsumerQueue,
  dlqName,
  withChannel,
  type ChannelModel,
} from '../../src/adapters/rabbitmq';
import { mergeByTime, toBarMessage } from '../../src/adapters/marketdata/replay';
import { gbmBars } from '../../src/domain/marketdata/synthetic';
import { SignalEngineSet, strategyFactory, strategySet } from '../../src/domain/strategies';
import { sleep } from '../../src/lib/sleep';
import { replayBars } from '../../src/services/bar-publishing';
import { startQuant, type QuantHandle } from '../../src/workers/quant';
import { createPrivateVhost, type PrivateVhost } from '../support/vhost';

/**
 * The quant's confirm window on the real broker, made hostile: hundreds of bars in flight, each acked only once
 * every signal it produced is confirmed, while
 *  - the broker REFUSES signals: the signals queue is full (x-max-length with reject-publish, 8 messages: the
 *    quant sends a turn's signals in one signal_batch), so publishes come back as basic.nack in the middle of
 *    the window, on some of the bars' signal messages and not others;
 *  - then the quant's connection is closed by the broker mid-window (management API), with signals written and
 *    not yet confirmed and bars delivered and not yet acked.
 * Every signal of an uninterrupted run must still arrive (a bar acked before its signals were confirmed would
 * lose the refused ones: it is never redelivered), each id with one body (re-publications identical), nothing
 * dead-lettered, every bar acked. Bars come one per message and batched (issue 9's form), two symbols
 * interleaved, every strategy on. Private vhost: nothing else sees these queues.
 */
const log = createLogger('test-quant-window', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const BARS_EX = 'test.bars';
const SIGNALS_EX = 'test.signals';
const BARS_Q = 'test.quant.bars';
const SIGNALS_Q = 'test.signals.capped';
const SIGNALS_CAP = 8;
const PER_SYMBOL = 700;

function bars(): Bar[] {
  const series = ['SYNA', 'SYNB'].map((symbol, k) =>
    gbmBars({
      symbol,
      seed: 77 + k,
      startPrice: 40 + 20 * k,
      drift: 0.05,
      volatility: 0.4,
      startMs: Date.parse('2021-03-01T14:30:00Z'),
      stepMs: 60_000,
      count: PER_SYMBOL,
    }).map((b) => toBarMessage(b, '1m', 'synthetic')),
  );
  return mergeByTime(series);
}

/** What an uninterrupted quant emits: the pure engine over the same bars. */
function expected(all: readonly Bar[]): Map<string, TradeSignal> {
  const engine = new SignalEngineSet(strategySet(STRATEGY_NAMES.map((n) => strategyFactory(n))));
  const out = new Map<string, TradeSignal>();
  for (const b of all)
    for (const o of engine.process(b)) if (o.kind === 'signal') out.set(o.signal.signal_id, o.signal);
  return out;
}

let vh: PrivateVhost;
let rabbit: RabbitConnection;
let publisher: ConfirmPublisher;
let quantRabbit: RabbitConnection | undefined;
let quantPublisher: ConfirmPublisher | undefined;
let quant: QuantHandle | undefined;

async function declare(conn: ChannelModel): Promise<void> {
  await withChannel(conn, async (ch) => {
    for (const ex of [BARS_EX, SIGNALS_EX]) await ch.assertExchange(ex, 'topic', { durable: true });
    await assertConsumerQueue(ch, { queue: BARS_Q, exchange: BARS_EX, bindingKeys: ['bars.#'] });
    // A full queue refuses what comes next: the publisher gets a basic.nack for it.
    await ch.assertQueue(SIGNALS_Q, {
      durable: true,
      arguments: { 'x-max-length': SIGNALS_CAP, 'x-overflow': 'reject-publish' },
    });
    await ch.bindQueue(SIGNALS_Q, SIGNALS_EX, 'signal.#');
  });
}

const depth = (q: string) => withChannel(rabbit.connection!, async (ch) => (await ch.checkQueue(q)).messageCount);

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

beforeAll(async () => {
  vh = await createPrivateVhost('sat-quant-window');
  rabbit = new RabbitConnection({ url: vh.url, name: 'test-quant-window', logger: log, setup: declare });
  publisher = new ConfirmPublisher(rabbit, { logger: log });
  await rabbit.start();
});

afterAll(async () => {
  await quant?.stop();
  await quantPublisher?.close();
  await quantRabbit?.close();
  await publisher?.close();
  await rabbit?.close();
  await vh?.drop();
});

describe('quant confirm window (real RabbitMQ)', () => {
  it('refused signals and a connection closed mid-window: no signal lost, none doubled, every bar acked once its signals are confirmed', async () => {
    const all = bars();
    const want = expected(all);
    expect(want.size).toBeGreaterThan(500); // every strategy on: plenty of signals, many bars with several

    // The quant on a connection of its own, so the broker can close it without touching the test's.
    const name = `test-quant-window-${vh.vhost}`;
    quantRabbit = new RabbitConnection({ url: vh.url, name, logger: log, setup: declare });
    quantPublisher = new ConfirmPublisher(quantRabbit, { logger: log });
    await quantRabbit.start();
    quant = startQuant({
      rabbit: quantRabbit,
      publisher: quantPublisher,
      strategies: STRATEGY_NAMES.map((n) => strategyFactory(n)),
      logger: log,
      queue: BARS_Q,
      signalsExchange: SIGNALS_EX,
      prefetch: 400,
      maxAttempts: 20,
      retryDelayMs: 10,
    });
    await quant.consumer.ready();

    // The first half one bar per message, the rest in batches of 25 bars of one symbol (issue 9's form).
    const half = all.length / 2;
    await replayBars({ publisher, bars: all.slice(0, half), exchange: BARS_EX, window: 256 });
    await replayBars({ publisher, bars: all.slice(half), exchange: BARS_EX, window: 256, batchSize: 25 });

    // Nobody reads the signals yet: the queue fills up and the broker nacks the rest. Bars with a refused signal
    // are requeued (with backoff) and must not be acked.
    await until('a refused signal to requeue its bar', () => quant!.consumer.stats.requeued > 0, 30_000);
    expect(await depth(SIGNALS_Q)).toBe(SIGNALS_CAP);
    const management = RabbitManagement.fromConfig(vh.config.rabbitmq);
    // Mid-window: bars delivered and not acked, signals written and not confirmed. The broker closes the
    // connection; the quant reconnects, the bars come back and their remembered signals are published again.
    // A refused bar goes back to the queue for its backoff, so bars in flight come and go: close while some are.
    await until('bars delivered and not yet acked', () => quant!.consumer.inFlight > 0, 30_000);
    expect(await management.closeConnectionsNamed(name)).toBeGreaterThanOrEqual(1);

    // Now read the signals as they come (each acked after it is recorded).
    const got = new Map<string, string[]>();
    let lastRead = Date.now();
    const reader = await rabbit.connection!.createChannel();
    await reader.prefetch(100);
    let batches = 0;
    await reader.consume(SIGNALS_Q, (m) => {
      if (!m) return;
      lastRead = Date.now();
      // A lone signal or a signal_batch (the quant's default form): every signal in it, as it was sent.
      const body = JSON.parse(m.content.toString('utf8')) as { kind?: string; signals?: unknown[] };
      const signals = body.kind === 'signal_batch' ? body.signals! : [body];
      if (signals.length > 1) batches++;
      for (const signal of signals) {
        const id = (signal as TradeSignal).signal_id;
        const copies = got.get(id) ?? [];
        copies.push(JSON.stringify(signal));
        got.set(id, copies);
      }
      reader.ack(m);
    });

    // Done when every bar is acked and the signals have stopped coming (a lost one never comes: compared below).
    await until(
      'every bar acked and the signals read',
      async () =>
        quant!.consumer.inFlight === 0 &&
        (await depth(BARS_Q)) === 0 &&
        (got.size >= want.size || Date.now() - lastRead > 3_000),
      120_000,
    );
    await sleep(300); // anything still on its way would show up as an unexpected id or a dead letter
    await reader.close();

    // No loss: every signal of an uninterrupted run arrived; no stray ids; every copy of an id is the same signal.
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [id, copies] of got) {
      const first = TradeSignalSchema.parse(JSON.parse(copies[0]!));
      expect(first).toEqual(want.get(id));
      expect(new Set(copies).size).toBe(1);
    }
    expect(await depth(dlqName(BARS_Q))).toBe(0);
    // Every bar acked: stopping closes the quant's channel, which would put any un-acked bar back in the queue.
    await quant.stop();
    expect(await depth(BARS_Q)).toBe(0);
    // The hostile parts happened: refused signals requeued their bars; the closed connection redelivered bars.
    expect(quant.consumer.stats.requeued).toBeGreaterThan(0);
    expect(quant.stats.duplicates).toBeGreaterThan(0);
    // Each signal counted once as published, however often it was re-published.
    expect(quant.stats.signals).toBe(want.size);
    // The signals of a turn travelled together: batches were among what was refused, re-published and read.
    expect(batches).toBeGreaterThan(0);
  });
});
