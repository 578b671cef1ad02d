import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { PolygonRestClient } from '../../../src/adapters/marketdata/polygon/rest';
import type { Bar } from '../../../src/contracts/bar';
import { createLogger } from '../../../src/logging';
import { MarketFeed } from '../../../src/services/market-feed';
import { replaySource, restPollingSource, websocketSource } from '../../../src/services/market-sources';
import { FakePolygon } from '../../fakes/fake-polygon';
import { CircuitBreaker } from '../../../src/domain/marketdata/circuit-breaker';

const MINUTES = path.resolve(__dirname, '../../../../shared/data/index-futures-2006-1min.csv');
const KEY = 'pk_feed_test_key_987654321';
const quiet = createLogger('feed-test', { level: 'silent' });

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let fake: FakePolygon | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

function setup(f: FakePolygon, extra: { replay?: Bar[]; logger?: typeof quiet } = {}) {
  const quiet_ = extra.logger ?? quiet;
  const published: Bar[] = [];
  const rest = new PolygonRestClient({
    baseUrl: f.url,
    apiKey: KEY,
    requestsPerWindow: 0,
    backoffBaseMs: 10,
    backoffMaxMs: 40,
    maxAttempts: 2,
    logger: quiet_,
  });
  const first = Date.parse(f.bars('ES')[0]!.timestamp);
  const feed = new MarketFeed({
    symbols: ['ES'],
    interval: '1m',
    sources: [
      websocketSource({
        url: f.wsUrl,
        apiKey: KEY,
        symbols: ['ES'],
        interval: '1m',
        logger: quiet_,
        connectTimeoutMs: 2000,
      }),
      restPollingSource({ client: rest, pollMs: 50, startFromMs: first }),
      ...(extra.replay ? [replaySource({ bars: extra.replay, intervalMs: 0 })] : []),
    ],
    publish: async (bars) => {
      published.push(...bars);
    },
    backfill: (symbol, since, signal) =>
      rest.aggregates({ ticker: symbol, interval: '1m', from: since + 1, to: Date.now(), signal }),
    startFromMs: first,
    failureThreshold: 2,
    probeAfterMs: 200,
    probeEveryMs: 50,
    backoffBaseMs: 10,
    backoffMaxMs: 40,
    logger: quiet_,
  });
  return { feed, published };
}

describe('circuit breaker', () => {
  it('opens after the threshold, allows a probe after the delay, closes on success', () => {
    let now = 0;
    const b = new CircuitBreaker({ failureThreshold: 3, probeAfterMs: 1000, now: () => now });
    expect([b.recordFailure(), b.recordFailure()]).toEqual([false, false]);
    b.recordSuccess();
    expect([b.recordFailure(), b.recordFailure(), b.recordFailure()]).toEqual([false, false, true]);
    expect(b.state).toBe('open');
    now = 999;
    expect(b.tryProbe()).toBe(false);
    now = 1000;
    expect(b.tryProbe()).toBe(true);
    expect(b.state).toBe('half_open');
    expect(b.recordFailure()).toBe(true); // a failed probe re-opens at once
    now = 1500;
    expect(b.tryProbe()).toBe(false);
    now = 2000;
    expect(b.tryProbe()).toBe(true);
    b.recordSuccess();
    expect(b.state).toBe('closed');
    expect(b.opened).toBe(2);
  });
});

describe('live feed: WebSocket → REST polling → replay, against the fake Polygon', () => {
  it('a WebSocket drop fails over to REST, the stream comes back by probe, and every bar is published once, in order', async () => {
    fake = await FakePolygon.start({ apiKey: KEY, files: { ES: MINUTES } });
    fake.startLive('ES', 10); // ten bars happened before the feed started
    const { feed, published } = setup(fake);
    const stop = new AbortController();
    const running = feed.run(stop.signal);

    // Live on the stream; the ten earlier bars came from the first gap fill (REST).
    await until(() => feed.stats.readies === 1 && published.length === 10, 'stream live + history');
    fake.advance('ES', 5);
    await until(() => published.length === 15, '5 stream bars');

    // The stream drops and stays down: two failures open its breaker → REST polling.
    fake.streamsDown = true;
    fake.dropWebSockets();
    await until(() => feed.stats.active === 'polygon-rest', 'switch to REST');
    fake.advance('ES', 7);
    await until(() => published.length === 22, '7 polled bars');

    // The stream is back: a probe succeeds, the feed switches back, the gap is filled, bars flow again.
    fake.advance('ES', 3); // happen while switching: REST poll or the gap fill must deliver them
    fake.streamsDown = false;
    await until(() => feed.stats.readies === 2, 'back on the stream, gap filled');
    expect(feed.stats.active).toBe('polygon-ws');
    expect(published.length).toBe(25);
    fake.advance('ES', 5);
    await until(() => published.length === 30, 'stream bars after the switch back');

    stop.abort();
    await running;
    const want = fake.bars('ES').slice(0, 30);
    expect(published.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume])).toEqual(
      want.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume]),
    );
    expect(new Set(published.map((b) => b.message_id)).size).toBe(30);
    expect(feed.stats.switches.map((s) => `${s.from}→${s.to}`)).toEqual([
      'polygon-ws→polygon-rest',
      'polygon-rest→polygon-ws',
    ]);
    const sources = new Set(published.map((b) => b.source));
    expect(sources).toEqual(new Set(['polygon-rest', 'polygon-ws']));
    expect(published.slice(10, 15).every((b) => b.source === 'polygon-ws')).toBe(true);
    expect(published.slice(15, 22).every((b) => b.source === 'polygon-rest')).toBe(true);
    expect(published.slice(25).every((b) => b.source === 'polygon-ws')).toBe(true);
  });

  it('falls through to replay when both Polygon transports are down, continuing after the last published bar', async () => {
    fake = await FakePolygon.start({ apiKey: KEY, files: { ES: MINUTES } });
    fake.startLive('ES', 8);
    const replay = fake
      .bars('ES')
      .slice(0, 40)
      .map((b) => ({ ...b, interval: '1m' }) as unknown as Bar);
    const { feed, published } = setup(fake, { replay });
    const stop = new AbortController();
    const running = feed.run(stop.signal);
    await until(() => feed.stats.readies === 1 && published.length === 8, 'stream live + history');
    fake.streamsDown = true;
    fake.inject('503', 10_000);
    fake.dropWebSockets();
    await running; // replay is the last source: the feed ends with it
    expect(feed.stats.switches.map((s) => `${s.from}→${s.to}`)).toEqual([
      'polygon-ws→polygon-rest',
      'polygon-rest→replay',
    ]);
    expect(published.map((b) => b.timestamp)).toEqual(
      fake
        .bars('ES')
        .slice(0, 40)
        .map((b) => b.timestamp),
    );
    expect(published.slice(8).every((b) => b.source === 'replay')).toBe(true);
    stop.abort();
  });

  it('a bad key opens the stream breaker at once (no retries burn the quota) and the feed moves on', async () => {
    fake = await FakePolygon.start({ apiKey: 'the-real-key', files: { ES: MINUTES } });
    fake.startLive('ES', 5);
    const replay = fake
      .bars('ES')
      .slice(0, 5)
      .map((b) => ({ ...b, interval: '1m' }) as unknown as Bar);
    const lines: string[] = [];
    const logger = createLogger('feed-test', {
      level: 'debug',
      destination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString());
          cb();
        },
      }),
    });
    const { feed, published } = setup(fake, { replay, logger });
    await feed.run(new AbortController().signal);
    // Auth failures, switches and the REST 401 are all logged; the key (sent in the auth frame and the
    // Authorization header) is in none of them.
    expect(lines.join('\n')).toMatch(/market data source switched/);
    expect(lines.join('\n')).not.toContain(KEY);
    expect(feed.stats.switches.map((s) => s.to)).toEqual(['polygon-rest', 'replay']);
    expect(feed.stats.failures).toEqual({ 'polygon-ws': 1, 'polygon-rest': 1 });
    expect(published).toHaveLength(5);
  });
});
