import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBars, upsertBars } from '../../src/adapters/postgres/bars';
import { toBarMessage } from '../../src/adapters/marketdata/replay';
import { ConfirmPublisher, RabbitConnection, topologySetup, withChannel } from '../../src/adapters/rabbitmq';
import { assertConsumerQueue, MARKET_BARS_EXCHANGE } from '../../src/adapters/rabbitmq/topology';
import { parseEnv } from '../../src/config';
import { createLogger } from '../../src/logging';
import { startBarStore } from '../../src/workers/bar-store';
import { collectBars, liveFeed } from '../support/bar-feed';
import { FakePolygon, sharedDataFile } from '../fakes/fake-polygon';
import { createTestDatabase, type TestDatabase } from '../support/pg';

/**
 * Fake Polygon → Dataflow → real RabbitMQ → consumers, on a private vhost and a fresh database:
 * - the live feed (WebSocket → REST polling fallback → back) into a consumer that must see every bar exactly
 *   once (after de-duplication by message id) and in order per symbol;
 * - `npm run backfill` (the real CLI process) filling only the gaps of the bar store from REST.
 */
const ROOT = path.resolve(__dirname, '../..');
const DATA = path.resolve(ROOT, '../shared/data');
const KEY = `pk_it_${randomBytes(6).toString('hex')}`;
const quiet = createLogger('dataflow-it', { level: 'silent' });
const exec = promisify(execFile);

async function management(method: string, apiPath: string, body?: unknown): Promise<boolean> {
  const cfg = parseEnv(process.env);
  const auth = Buffer.from(`${cfg.rabbitmq.user}:${cfg.env.RABBITMQ_PASS}`).toString('base64');
  const res = await fetch(`http://${cfg.rabbitmq.host}:${cfg.rabbitmq.managementPort}/api${apiPath}`, {
    method,
    headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.ok;
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Dataflow with the fake Polygon and real RabbitMQ / PostgreSQL', () => {
  const vhost = `sat-df-${randomBytes(4).toString('hex')}`;
  let env: NodeJS.ProcessEnv;
  let db: TestDatabase;
  let fake: FakePolygon;
  let rabbit: RabbitConnection;
  let publisher: ConfirmPublisher;

  beforeAll(async () => {
    const cfg0 = parseEnv(process.env);
    expect(await management('PUT', `/vhosts/${vhost}`)).toBe(true);
    expect(
      await management('PUT', `/permissions/${vhost}/${encodeURIComponent(cfg0.rabbitmq.user)}`, {
        configure: '.*',
        write: '.*',
        read: '.*',
      }),
    ).toBe(true);
    db = await createTestDatabase('sat_df');
    fake = await FakePolygon.start({
      apiKey: KEY,
      files: {
        NVDA: sharedDataFile(DATA, 'NVDA'),
        ORCL: sharedDataFile(DATA, 'ORCL'),
        ES: path.join(DATA, 'index-futures-2006-1min.csv'),
      },
      pageSize: 25,
    });
    env = {
      ...process.env,
      RABBITMQ_VHOST: vhost,
      DATABASE_URL: db.url,
      POLYGON_API_KEY: KEY,
      POLYGON_BASE_URL: fake.url,
      LOG_LEVEL: 'info',
    };
    const cfg = parseEnv(env);
    rabbit = new RabbitConnection({
      url: cfg.rabbitmq.url,
      name: 'dataflow-it',
      logger: quiet,
      setup: topologySetup(cfg.rabbitmq),
    });
    publisher = new ConfirmPublisher(rabbit, { logger: quiet });
    await rabbit.start();
  }, 60_000);

  afterAll(async () => {
    await publisher?.close();
    await rabbit?.close();
    await fake?.close();
    await db?.drop().catch(() => undefined);
    await management('DELETE', `/vhosts/${vhost}`).catch(() => undefined);
  });

  it('live: a WebSocket drop fails over to REST and comes back; the consumer gets every bar once, in order', async () => {
    const queue = `it.bars.${randomBytes(3).toString('hex')}`;
    await withChannel(rabbit.connection!, (ch) =>
      assertConsumerQueue(ch, { queue, exchange: MARKET_BARS_EXCHANGE, bindingKeys: ['bars.1m.#'] }),
    );
    const { got, duplicates, consumer } = collectBars(rabbit, queue, { prefetch: 100, publisher, logger: quiet });
    await consumer.ready();

    fake.startLive('ES', 12);
    const feed = liveFeed({ fake, apiKey: KEY, publisher, logger: quiet, pollMs: 50, publishAttempts: 1000 });
    const stop = new AbortController();
    const running = feed.run(stop.signal);
    await until(() => feed.stats.readies === 1, 'stream live');
    fake.advance('ES', 20);
    await until(() => got.length === 32, '32 bars');
    fake.streamsDown = true;
    fake.dropWebSockets();
    await until(() => feed.stats.active === 'polygon-rest', 'REST fallback');
    fake.advance('ES', 15);
    await until(() => got.length === 47, '47 bars');
    fake.streamsDown = false;
    await until(() => feed.stats.readies === 2, 'back on the stream');
    fake.advance('ES', 13);
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
    expect(new Set(got.map((b) => b.source))).toEqual(new Set(['polygon-ws', 'polygon-rest']));
    expect(duplicates()).toBe(0);
  }, 120_000);

  it('npm run backfill publishes only the bars the store lacks; the bar store then holds the whole range once', async () => {
    const cfg = parseEnv(env);
    const store = startBarStore({ rabbit, publisher, pool: db.pool, logger: quiet });
    await store.consumer.ready();
    // The store already holds every other NVDA bar of January 2013.
    const jan = fake.bars('NVDA').filter((b) => b.timestamp.startsWith('2013-01'));
    await upsertBars(
      db.pool,
      jan.filter((_, i) => i % 2 === 0).map((b) => toBarMessage(b, '1d', 'replay')),
    );
    const { stdout, stderr } = await exec(
      path.join(ROOT, 'node_modules/.bin/tsx'),
      [
        path.join(ROOT, 'src/cli/backfill.ts'),
        '--symbols',
        'NVDA,ORCL',
        '--from',
        '2013-01-01',
        '--to',
        '2013-01-31',
        '--batch',
        '5',
      ],
      { cwd: ROOT, env: { ...env, POLYGON_REQUESTS_PER_MINUTE: '0' }, timeout: 120_000 },
    );
    expect(stdout).toMatch(
      /NVDA: 21 bars from Polygon \(2013-01-01 \.\. 2013-01-31\), 11 already stored, 10 to publish/,
    );
    expect(stdout).toMatch(/ORCL: 21 bars from Polygon .*, 0 already stored, 21 to publish/);
    expect(stdout).toMatch(/summary: 31 bars published/);
    expect(stdout + stderr).not.toContain(KEY);
    await until(
      async () =>
        (await loadBars(db.pool, 'ORCL', '1d')).length === 21 && (await loadBars(db.pool, 'NVDA', '1d')).length === 21,
      'bars stored',
    );
    const nvda = await loadBars(db.pool, 'NVDA', '1d');
    expect(nvda.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume])).toEqual(
      jan.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume]),
    );
    expect(nvda.filter((b) => b.source === 'polygon-rest')).toHaveLength(10);
    // A second run finds nothing missing.
    const again = await exec(
      path.join(ROOT, 'node_modules/.bin/tsx'),
      [path.join(ROOT, 'src/cli/backfill.ts'), '--symbols', 'NVDA', '--from', '2013-01-01', '--to', '2013-01-31'],
      { cwd: ROOT, env: { ...env, POLYGON_REQUESTS_PER_MINUTE: '0' }, timeout: 120_000 },
    );
    expect(again.stdout).toMatch(/21 already stored, 0 to publish/);
    await store.stop();
    void cfg;
  }, 180_000);
});
