import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmPublisher, RabbitConnection, topologySetup, withChannel } from '../../src/adapters/rabbitmq';
import { assertConsumerQueue, MARKET_BARS_EXCHANGE } from '../../src/adapters/rabbitmq/topology';
import { parseEnv } from '../../src/config';
import { createLogger } from '../../src/logging';
import { replayBars } from '../../src/services/bar-publishing';
import { startPrivateRabbit, type PrivateRabbit } from '../support/private-rabbit';
import { collectBars, liveFeed } from '../support/bar-feed';
import { FakePolygon } from '../fakes/fake-polygon';

/**
 * Fake Polygon → Dataflow live feed → a PRIVATE RabbitMQ node (started here on its own ports, restarted in the
 * middle, stopped at the end; the shared broker on 5672 is never touched) → a consumer. Across a RabbitMQ
 * restart and a WebSocket drop that fails over to REST polling and comes back, the consumer gets every bar
 * exactly once (after de-duplication by message id) and in order. Also: the broker's flow control (a memory
 * alarm blocks the connection) holds publishing back instead of failing it.
 */
const ROOT = path.resolve(__dirname, '../..');
const MINUTES = path.resolve(ROOT, '../shared/data/index-futures-2006-1min.csv');
const KEY = `pk_rs_${randomBytes(6).toString('hex')}`;
const quiet = createLogger('restart-it', { level: 'silent' });

async function until(cond: () => boolean, what: string, timeoutMs = 90_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Dataflow across a RabbitMQ restart (private node) and a WebSocket drop', () => {
  let node: PrivateRabbit;
  let fake: FakePolygon;
  let rabbit: RabbitConnection;
  let publisher: ConfirmPublisher;
  let cfg: ReturnType<typeof parseEnv>;

  beforeAll(async () => {
    node = await startPrivateRabbit('sat-df-rmq');
    cfg = parseEnv(node.env);
    rabbit = new RabbitConnection({
      url: cfg.rabbitmq.url,
      name: 'restart-it',
      logger: quiet,
      setup: topologySetup(cfg.rabbitmq),
    });
    publisher = new ConfirmPublisher(rabbit, { logger: quiet, channelWaitMs: 120_000 });
    await rabbit.start();
    fake = await FakePolygon.start({ apiKey: KEY, files: { ES: MINUTES } });
  }, 300_000);

  afterAll(async () => {
    await publisher?.close();
    await rabbit?.close();
    await fake?.close();
    await node?.destroy();
  }, 180_000);

  it('every bar reaches the consumer exactly once and in order through a broker restart and a stream failover', async () => {
    const queue = 'it.restart.bars';
    await withChannel(rabbit.connection!, (ch) =>
      assertConsumerQueue(ch, { queue, exchange: MARKET_BARS_EXCHANGE, bindingKeys: ['bars.1m.#'] }),
    );
    const { got, duplicates, consumer } = collectBars(rabbit, queue, { prefetch: 50, publisher, logger: quiet });
    await consumer.ready();

    fake.startLive('ES', 10);
    const feed = liveFeed({ fake, apiKey: KEY, publisher, logger: quiet, pollMs: 100, publishAttempts: 1_000_000 });
    const stop = new AbortController();
    const running = feed.run(stop.signal);
    await until(() => feed.stats.readies === 1, 'stream live');
    fake.advance('ES', 15);
    await until(() => got.length === 25, '25 bars before the restart');

    // RabbitMQ goes down (every connection closed) and comes back; bars keep happening meanwhile.
    const restart = node.restart(3);
    await until(() => !publisher.ready, 'broker down');
    fake.advance('ES', 10);
    await restart;
    fake.advance('ES', 5);
    await until(() => got.length === 40, '40 bars after the restart');

    // The stream drops and stays down: REST polling takes over; then it comes back.
    fake.streamsDown = true;
    fake.dropWebSockets();
    await until(() => feed.stats.active === 'polygon-rest', 'REST fallback');
    fake.advance('ES', 10);
    await until(() => got.length === 50, '50 bars');
    fake.streamsDown = false;
    await until(() => feed.stats.readies === 2, 'back on the stream');
    fake.advance('ES', 10);
    await until(() => got.length === 60, '60 bars');
    stop.abort();
    await running;
    await consumer.cancel();

    const want = fake.bars('ES').slice(0, 60);
    expect(got.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume])).toEqual(
      want.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume]),
    );
    expect(feed.stats.switches.map((s) => `${s.from}→${s.to}`)).toEqual([
      'polygon-ws→polygon-rest',
      'polygon-rest→polygon-ws',
    ]);
    // Duplicates at the wire are allowed (a confirm lost with the connection means a re-publish); the consumer's
    // de-duplication by message id makes them harmless. Nothing may be missing or out of order (checked above).
    expect(duplicates()).toBeGreaterThanOrEqual(0);
  }, 300_000);

  it("the broker's flow control holds publishing back until it unblocks; nothing fails or is lost", async () => {
    const queue = 'it.blocked.bars';
    await withChannel(rabbit.connection!, (ch) =>
      assertConsumerQueue(ch, { queue, exchange: MARKET_BARS_EXCHANGE, bindingKeys: ['bars.1m.#'] }),
    );
    // A memory alarm: the broker blocks a connection as soon as it publishes (connection.blocked). The
    // publisher must take that as backpressure: publishes wait, none fails, nothing is lost.
    await node.ctl('set_vm_memory_high_watermark', '0.000001');
    const bars = fake
      .bars('ES')
      .slice(100, 130)
      .map((b) => ({
        ...b,
        interval: '1m',
        message_id: `blk-${b.timestamp}`,
        correlation_id: `corr-blk-${b.timestamp}`,
        source: 'test',
        is_partial: false,
        schema_version: 1 as const,
      }));
    let done = false;
    const pub = replayBars({ publisher, bars, logger: quiet }).finally(() => (done = true));
    await until(() => publisher.blocked, 'connection blocked', 60_000);
    expect(done).toBe(false);
    await node.ctl('set_vm_memory_high_watermark', '0.4');
    const summary = await pub;
    expect(summary.published).toBe(30);
    expect(summary.retries).toBe(0);
    expect(publisher.blocked).toBe(false);
    const n = await withChannel(rabbit.connection!, async (ch) => (await ch.checkQueue(queue)).messageCount);
    expect(n).toBe(30);
  }, 180_000);

  it('a batch with unconfirmed messages at a broker restart resumes from its confirmed prefix; nothing is lost', async () => {
    const queue = 'it.batch-restart.bars';
    await withChannel(rabbit.connection!, (ch) =>
      assertConsumerQueue(ch, { queue, exchange: MARKET_BARS_EXCHANGE, bindingKeys: ['bars.1m.#'] }),
    );
    const { got, consumer } = collectBars(rabbit, queue, { prefetch: 100, publisher, logger: quiet });
    await consumer.ready();
    const bars = fake
      .bars('ES')
      .slice(200, 1200)
      .map((b) => ({
        ...b,
        interval: '1m',
        message_id: `brs-${b.timestamp}`,
        correlation_id: `corr-brs-${b.timestamp}`,
        source: 'test',
        is_partial: false,
        schema_version: 1 as const,
      }));
    // Deterministically mid-batch: a memory alarm blocks the connection at its first publish, so the window's
    // messages sit unconfirmed; then the broker restarts under them. publishBatch reports the channel's death
    // with its confirmed prefix, and replayBars resumes from there on the new connection.
    await node.ctl('set_vm_memory_high_watermark', '0.000001');
    let progress = 0;
    const pub = replayBars({ publisher, bars, window: 128, logger: quiet, onProgress: (n) => (progress = n) });
    await until(() => publisher.blocked, 'connection blocked', 60_000);
    const atBlock = progress;
    const restart = node.restart(2);
    await until(() => !publisher.ready, 'broker down');
    await restart;
    await node.ctl('set_vm_memory_high_watermark', '0.4');
    const summary = await pub;
    expect(atBlock).toBeLessThan(bars.length); // the restart did catch the batch with messages outstanding
    expect(summary.published).toBe(bars.length);
    expect(summary.retries).toBeGreaterThanOrEqual(1);
    await until(() => got.length === bars.length, 'every bar consumed', 120_000);
    await consumer.cancel();
    // Every bar exactly once after de-duplication, in order: the re-published ones carried the same ids.
    expect(got.map((b) => b.message_id)).toEqual(bars.map((b) => b.message_id));
  }, 300_000);
});
