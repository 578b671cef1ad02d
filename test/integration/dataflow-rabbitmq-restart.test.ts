import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmPublisher, RabbitConnection, topologySetup, withChannel } from '../../src/adapters/rabbitmq';
import { assertConsumerQueue, MARKET_BARS_EXCHANGE } from '../../src/adapters/rabbitmq/topology';
import { parseEnv } from '../../src/config';
import { createLogger } from '../../src/logging';
import { replayBars } from '../../src/services/bar-publishing';
import { freePort } from '../support/pipeline';
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
const exec = promisify(execFile);

async function until(cond: () => boolean, what: string, timeoutMs = 90_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Dataflow across a RabbitMQ restart (private node) and a WebSocket drop', () => {
  const dataDir = `/tmp/sat-df-rmq-${randomBytes(3).toString('hex')}`;
  let nodeEnv: NodeJS.ProcessEnv;
  let fake: FakePolygon;
  let rabbit: RabbitConnection;
  let publisher: ConfirmPublisher;
  let cfg: ReturnType<typeof parseEnv>;
  const ctl = (...args: string[]) =>
    exec(path.join(ROOT, 'scripts/rabbitmq-restart.sh'), args, { env: nodeEnv, timeout: 180_000 });
  const rabbitmqctl = (...args: string[]) =>
    exec('/usr/lib/rabbitmq/bin/rabbitmqctl', ['-q', ...args], {
      env: {
        ...nodeEnv,
        HOME: `${dataDir}/rabbitmq/home`,
        ERL_EPMD_ADDRESS: '127.0.0.1',
        RABBITMQ_CTL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      },
      timeout: 120_000,
    });

  beforeAll(async () => {
    const [port, mgmt, dist] = [await freePort(), await freePort(), await freePort()];
    nodeEnv = {
      ...process.env,
      DATA: dataDir,
      RABBITMQ_HOST: '127.0.0.1',
      RABBITMQ_PORT: String(port),
      RABBITMQ_MANAGEMENT_PORT: String(mgmt),
      RABBITMQ_DIST_PORT: String(dist),
      RABBITMQ_NODENAME: `satdf${port}@localhost`,
    };
    await exec('bash', [path.join(ROOT, 'scripts/provision/rabbitmq.sh'), 'up'], { env: nodeEnv, timeout: 240_000 });
    cfg = parseEnv(nodeEnv);
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
    if (nodeEnv) {
      await exec('bash', [path.join(ROOT, 'scripts/provision/rabbitmq.sh'), 'down'], {
        env: nodeEnv,
        timeout: 120_000,
      }).catch(() => undefined);
    }
    rmSync(dataDir, { recursive: true, force: true });
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
    const restart = ctl('restart', '3');
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
    await rabbitmqctl('set_vm_memory_high_watermark', '0.000001');
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
    await rabbitmqctl('set_vm_memory_high_watermark', '0.4');
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
    await rabbitmqctl('set_vm_memory_high_watermark', '0.000001');
    let progress = 0;
    const pub = replayBars({ publisher, bars, window: 128, logger: quiet, onProgress: (n) => (progress = n) });
    await until(() => publisher.blocked, 'connection blocked', 60_000);
    const atBlock = progress;
    const restart = ctl('restart', '2');
    await until(() => !publisher.ready, 'broker down');
    await restart;
    await rabbitmqctl('set_vm_memory_high_watermark', '0.4');
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
