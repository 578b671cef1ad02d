import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { Message } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config';
import { signalIdFor } from '../../src/contracts/ids';
import { TradeSignalSchema } from '../../src/contracts/signal';
import { createLogger } from '../../src/logging';
import {
  ConfirmPublisher,
  DEAD_LETTER_EXCHANGE,
  RabbitConnection,
  REJECTION_REASON_HEADER,
  assertConsumerQueue,
  dlqName,
  withChannel,
  type ChannelModel,
} from '../../src/adapters/rabbitmq';
import { sleep } from '../../src/lib/sleep';
import { SMA_CROSS, strategyFactory } from '../../src/domain/strategies';
import { loadReplay } from '../../src/workers/dataflow';
import { replayBars } from '../../src/services/bar-publishing';
import { startQuant, type QuantHandle } from '../../src/workers/quant';

/**
 * Dataflow → RabbitMQ → Quant → RabbitMQ on the real broker, on private exchanges/queues of the same shape as
 * market.bars/quant.bars/trade.signals (so a concurrently running intake never sees these test signals):
 *  - the quant emits exactly the crossings the unit tests expect, with deterministic ids and carried correlation;
 *  - malformed bars land in the bars queue's DLQ with the reason; the quant keeps going;
 *  - replaying the same bars yields the same signal ids (no second signal), and the bar queue drains fully;
 *  - a bar whose signal cannot be confirmed is never acked: it is retried, then dead-lettered with the reason.
 */
const cfg = parseEnv(process.env);
const log = createLogger('test-quant', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const id = randomBytes(4).toString('hex');
const BARS_EX = `test.bars.${id}`;
const SIGNALS_EX = `test.signals.${id}`;
const NOWHERE_EX = `test.nowhere.${id}`;
const BARS_Q = `test.quant.bars.${id}`;
const BARS_Q2 = `test.quant.bars2.${id}`;
const BARS_Q3 = `test.quant.bars3.${id}`;
const SIGNALS_Q3 = `test.quant.signals3.${id}`;
const SIGNALS3_EX = `test.signals3.${id}`;
const SIGNALS_Q = `test.quant.signals.${id}`;
const FIXTURE = resolve(__dirname, '../fixtures/bars/quant-nvda-2013-09-03_2013-10-31.csv');
const EXPECTED = [
  ['2013-09-20', 'sell'],
  ['2013-10-07', 'buy'],
  ['2013-10-09', 'sell'],
  ['2013-10-14', 'buy'],
  ['2013-10-23', 'sell'],
] as const;

let rabbit: RabbitConnection;
let publisher: ConfirmPublisher;
const quants: QuantHandle[] = [];

async function declare(conn: ChannelModel): Promise<void> {
  await withChannel(conn, async (ch) => {
    for (const ex of [BARS_EX, SIGNALS_EX, NOWHERE_EX, SIGNALS3_EX]) {
      await ch.assertExchange(ex, 'topic', { durable: true });
    }
    await assertConsumerQueue(ch, { queue: BARS_Q, exchange: BARS_EX, bindingKeys: ['bars.*.NVDA'] });
    await assertConsumerQueue(ch, { queue: BARS_Q2, exchange: BARS_EX, bindingKeys: ['bars.1d.ORCL'] });
    await assertConsumerQueue(ch, { queue: SIGNALS_Q, exchange: SIGNALS_EX, bindingKeys: ['signal.#'] });
    await assertConsumerQueue(ch, { queue: BARS_Q3, exchange: BARS_EX, bindingKeys: ['bars.1d.AMD'] });
    await assertConsumerQueue(ch, { queue: SIGNALS_Q3, exchange: SIGNALS3_EX, bindingKeys: ['signal.#'] });
  });
}

const depth = (q: string) => withChannel(rabbit.connection!, async (ch) => (await ch.checkQueue(q)).messageCount);

async function waitForDepth(q: string, n: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await depth(q)) < n) {
    if (Date.now() > deadline) throw new Error(`${q}: expected ${n} messages, have ${await depth(q)}`);
    await sleep(100);
  }
}

async function take(q: string, n: number): Promise<Message[]> {
  await waitForDepth(q, n);
  return withChannel(rabbit.connection!, async (ch) => {
    const out: Message[] = [];
    for (let i = 0; i < n; i++) {
      const m = await ch.get(q, { noAck: true });
      if (m) out.push(m);
    }
    return out;
  });
}

beforeAll(async () => {
  rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    name: `test-quant-${id}`,
    logger: log,
    setup: declare,
    maxInitialAttempts: 20,
  });
  publisher = new ConfirmPublisher(rabbit, { logger: log });
  await rabbit.start();
});

afterAll(async () => {
  for (const q of quants) await q.stop();
  if (rabbit?.connection) {
    await withChannel(rabbit.connection, async (ch) => {
      for (const q of [BARS_Q, BARS_Q2, BARS_Q3, SIGNALS_Q, SIGNALS_Q3]) {
        await ch.deleteQueue(q);
        await ch.deleteQueue(dlqName(q));
      }
      for (const ex of [BARS_EX, SIGNALS_EX, NOWHERE_EX, SIGNALS3_EX]) await ch.deleteExchange(ex);
    });
  }
  await publisher?.close();
  await rabbit?.close();
});

describe('quant over RabbitMQ', () => {
  it('emits the expected signals from replayed bars; malformed bars go to the DLQ with a reason; replays add no new signal', async () => {
    const quant = startQuant({
      rabbit,
      publisher,
      strategy: strategyFactory(SMA_CROSS),
      logger: log,
      queue: BARS_Q,
      signalsExchange: SIGNALS_EX,
      // The single form, one message per signal (QUANT_SIGNALS_PER_MESSAGE=1): its properties are checked below.
      // The batched form is covered by quant-confirm-window.test.ts and quant-restart.test.ts.
      signalsPerMessage: 1,
    });
    quants.push(quant);
    await quant.consumer.ready();

    const { bars } = await loadReplay(FIXTURE, 'NVDA');
    expect(bars).toHaveLength(43);
    await replayBars({ publisher, bars: bars.slice(0, 20), exchange: BARS_EX });
    // Two malformed bars in the middle of the stream: not JSON, and a bar whose high is below its low.
    await publisher.publish(BARS_EX, 'bars.1d.NVDA', Buffer.from('not json at all'), {
      messageId: 'junk-1',
      correlationId: 'corr-junk-1',
    });
    const bad = { ...bars[20]!, high: 1, low: 2, message_id: 'bad-bar', correlation_id: 'corr-bad-bar' };
    await publisher.publishJson(BARS_EX, 'bars.1d.NVDA', bad, { messageId: 'bad-bar', correlationId: 'corr-bad-bar' });
    await replayBars({ publisher, bars: bars.slice(20), exchange: BARS_EX, intervalMs: 1 });

    const signals = await take(SIGNALS_Q, EXPECTED.length);
    const parsed = signals.map((m) => TradeSignalSchema.parse(JSON.parse(m.content.toString())));
    expect(parsed.map((s) => [s.created_at.slice(0, 10), s.side])).toEqual(EXPECTED);
    for (const [i, s] of parsed.entries()) {
      const bar = bars.find((b) => b.timestamp === s.created_at)!;
      expect(s.signal_id).toBe(signalIdFor(SMA_CROSS, 'NVDA', bar.timestamp));
      expect(s).toMatchObject({
        correlation_id: bar.correlation_id,
        price: bar.close,
        strategy: SMA_CROSS,
        symbol: 'NVDA',
      });
      expect(s.confidence).toBeGreaterThanOrEqual(0.75);
      expect(s.confidence).toBeLessThanOrEqual(1);
      expect(signals[i]!.properties).toMatchObject({
        messageId: s.signal_id,
        correlationId: bar.correlation_id,
        deliveryMode: 2,
      });
      expect(signals[i]!.fields.routingKey).toBe('signal.sma-cross.NVDA');
    }

    const dead = await take(dlqName(BARS_Q), 2);
    const reasons = new Map(
      dead.map((m) => [m.properties.messageId as string, String(m.properties.headers![REJECTION_REASON_HEADER])]),
    );
    expect(reasons.get('junk-1')).toMatch(/^invalid JSON/);
    expect(reasons.get('bad-bar')).toMatch(/^invalid bar: .*high\/low must bound open and close/);

    // Replay the same file: every bar is recognised; the 5 signals are re-published with the SAME ids.
    await replayBars({ publisher, bars, exchange: BARS_EX });
    const again = await take(SIGNALS_Q, EXPECTED.length);
    expect(again.map((m) => m.properties.messageId)).toEqual(parsed.map((s) => s.signal_id));
    const deadline = Date.now() + 10_000;
    while ((quant.consumer.stats.acked < 88 || quant.consumer.inFlight > 0) && Date.now() < deadline) await sleep(50);
    expect(await depth(SIGNALS_Q)).toBe(0);
    expect(quant.stats).toMatchObject({ bars: 87, signals: 5, duplicates: 43, republished: 5, invalid: 1 });
    expect(quant.consumer.stats).toMatchObject({ delivered: 88, acked: 88, deadLettered: 2, requeued: 0 });
    expect(await depth(BARS_Q)).toBe(0); // every bar acked
  });

  it('never acks a bar whose signal is not confirmed: it is retried, then dead-lettered with the publish error', async () => {
    // Signals go to an exchange with no queue: every signal publish is returned unroutable (mandatory) → rejected.
    const quant = startQuant({
      rabbit,
      publisher,
      strategy: strategyFactory(SMA_CROSS),
      logger: log,
      queue: BARS_Q2,
      signalsExchange: NOWHERE_EX,
      maxAttempts: 2,
      retryDelayMs: 20,
    });
    quants.push(quant);
    await quant.consumer.ready();
    const { bars } = await loadReplay(
      resolve(__dirname, '../fixtures/bars/quant-nvda-2013-09-03_2013-10-31.csv'),
      'ORCL',
    );
    await replayBars({ publisher, bars: bars.slice(0, 14), exchange: BARS_EX }); // up to the first crossing (2013-09-20)
    const [dead] = await take(dlqName(BARS_Q2), 1);
    const bar = JSON.parse(dead!.content.toString()) as { timestamp: string };
    expect(bar.timestamp.slice(0, 10)).toBe('2013-09-20');
    expect(dead!.properties.headers![REJECTION_REASON_HEADER]).toMatch(/^failed after 2 attempts: no queue bound/);
    await sleep(200);
    expect(await depth(BARS_Q2)).toBe(0);
    expect(quant.stats.signals).toBe(0);
  });

  it('dead-letters a valid bar whose signal would break the signal contract, with the reason, and keeps going', async () => {
    // The bar contract takes any non-empty correlation id; a signal's is at most 128 characters (it travels into
    // workflow memos and logs). A bar with a longer one is valid market data whose crossing cannot become a valid
    // signal: the engine reports 'invalid', and that bar must reach the DLQ, not be acked and forgotten.
    const quant = startQuant({
      rabbit,
      publisher,
      strategy: strategyFactory(SMA_CROSS),
      logger: log,
      queue: BARS_Q3,
      signalsExchange: SIGNALS3_EX,
      retryDelayMs: 20,
      signalsPerMessage: 1, // one message per signal: counted below
    });
    quants.push(quant);
    await quant.consumer.ready();
    const { bars } = await loadReplay(FIXTURE, 'AMD');
    const longCorrelation = `corr-${'x'.repeat(200)}`;
    const crossing = bars.findIndex((b) => b.timestamp.startsWith(EXPECTED[0][0]));
    expect(crossing).toBeGreaterThan(0);
    const poisoned = bars.map((b, i) => (i === crossing ? { ...b, correlation_id: longCorrelation } : b));
    // First the DLQ is unreachable (its binding removed): the copy cannot be confirmed, so the bar must not be acked.
    const dlq = dlqName(BARS_Q3);
    await withChannel(rabbit.connection!, (ch) => ch.unbindQueue(dlq, DEAD_LETTER_EXCHANGE, BARS_Q3));
    await replayBars({ publisher, bars: poisoned, exchange: BARS_EX, intervalMs: 1 });
    const until = Date.now() + 10_000;
    while (quant.consumer.stats.requeued < 2 && Date.now() < until) await sleep(20);
    expect(quant.consumer.stats.requeued).toBeGreaterThanOrEqual(2); // retried, not acked and forgotten
    expect(quant.consumer.stats.deadLettered).toBe(0);
    await withChannel(rabbit.connection!, (ch) => ch.bindQueue(dlq, DEAD_LETTER_EXCHANGE, BARS_Q3));

    const [dead] = await take(dlqName(BARS_Q3), 1);
    const body = JSON.parse(dead!.content.toString()) as { timestamp: string; correlation_id: string };
    expect(body.timestamp).toBe(bars[crossing]!.timestamp);
    expect(body.correlation_id).toBe(longCorrelation); // the bar itself, unchanged, for a replay after a fix
    expect(String(dead!.properties.headers![REJECTION_REASON_HEADER])).toMatch(
      /^signal would be invalid: .*correlation_id/,
    );
    // The other four crossings still become signals: one bad bar does not stop the series.
    const signals = await take(SIGNALS_Q3, EXPECTED.length - 1);
    const parsed = signals.map((m) => TradeSignalSchema.parse(JSON.parse(m.content.toString())));
    expect(parsed.map((s) => [s.created_at.slice(0, 10), s.side])).toEqual(EXPECTED.slice(1));
    const deadline = Date.now() + 10_000;
    while ((quant.consumer.stats.acked < bars.length || quant.consumer.inFlight > 0) && Date.now() < deadline) {
      await sleep(50);
    }
    // Every delivery of the bad bar was refused again, with the same reason (none was acked as "seen before").
    const attempts = quant.consumer.stats.requeued + 1;
    expect(quant.stats).toMatchObject({ bars: bars.length - 1 + attempts, signals: EXPECTED.length - 1 });
    expect(quant.stats.invalid).toBe(attempts);
    expect(quant.consumer.stats).toMatchObject({ acked: bars.length, deadLettered: 1 });
    expect(await depth(BARS_Q3)).toBe(0);
    expect(await depth(SIGNALS_Q3)).toBe(0);
  });
});
