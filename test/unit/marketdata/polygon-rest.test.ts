import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readBarsCsvSync } from '../../../src/adapters/marketdata/csv';
import {
  PolygonError,
  PolygonRestClient,
  RequestWindow,
  rateLimitWaitMs,
} from '../../../src/adapters/marketdata/polygon/rest';
import { sleep } from '../../../src/lib/sleep';
import { aggTimestamp, nyMidnightMs, parseAggRow, polygonRange } from '../../../src/adapters/marketdata/polygon/wire';
import { BarValidator } from '../../../src/domain/marketdata/validation';
import { createLogger } from '../../../src/logging';
import { FakePolygon, sharedDataFile } from '../../fakes/fake-polygon';

const DATA = path.resolve(__dirname, '../../../../shared/data');
const KEY = 'pk_test_Zx9sEcReT_0123456789';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, logger: createLogger('polygon-test', { level: 'debug', destination }) };
}

let fake: FakePolygon | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(opts: Partial<ConstructorParameters<typeof FakePolygon>[0]> = {}) {
  fake = await FakePolygon.start({
    apiKey: KEY,
    files: { NVDA: sharedDataFile(DATA, 'NVDA'), ORCL: sharedDataFile(DATA, 'ORCL') },
    ...opts,
  });
  return fake;
}

const client = (f: FakePolygon, over: Partial<ConstructorParameters<typeof PolygonRestClient>[0]> = {}) =>
  new PolygonRestClient({
    baseUrl: f.url,
    apiKey: KEY,
    requestsPerWindow: 0,
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    timeoutMs: 2000,
    logger: createLogger('polygon-test', { level: 'silent' }),
    ...over,
  });

describe('Polygon wire', () => {
  it('maps intervals to range segments', () => {
    expect(polygonRange('1d')).toEqual({ multiplier: 1, timespan: 'day' });
    expect(polygonRange('5m')).toEqual({ multiplier: 5, timespan: 'minute' });
    expect(() => polygonRange('daily')).toThrow(/interval/);
  });
  it('daily aggregates start at New York midnight and are stamped with their session date', () => {
    expect(new Date(nyMidnightMs('2013-01-02')).toISOString()).toBe('2013-01-02T05:00:00.000Z'); // EST
    expect(new Date(nyMidnightMs('2013-07-01')).toISOString()).toBe('2013-07-01T04:00:00.000Z'); // EDT
    expect(aggTimestamp(nyMidnightMs('2013-07-01'), 'day')).toBe('2013-07-01T00:00:00.000Z');
    expect(aggTimestamp(1_700_000_040_000, 'minute')).toBe('2023-11-14T22:14:00.000Z');
  });
  it('parses a real aggregates row and names what is wrong with a bad one', () => {
    // Shape from the OpenAPI spec's example (GetStocksAggregates).
    const row = { v: 70790813, vw: 131.6292, o: 130.465, c: 130.15, h: 133.41, l: 129.89, t: 1673240400000, n: 645365 };
    const r = parseAggRow(row, 'AAPL', 'day');
    expect(r).toEqual({
      ok: true,
      bar: {
        symbol: 'AAPL',
        timestamp: '2023-01-09T00:00:00.000Z',
        open: 130.465,
        high: 133.41,
        low: 129.89,
        close: 130.15,
        volume: 70790813,
        vwap: 131.6292,
      },
    });
    expect(parseAggRow({ ...row, c: undefined }, 'AAPL', 'day')).toMatchObject({ ok: false, detail: /^c:/ });
    expect(parseAggRow({ ...row, o: 'x' }, 'AAPL', 'day')).toMatchObject({ ok: false, detail: /^o:/ });
  });
  it('reads the reset of a 429 from Retry-After or X-RateLimit-Reset', () => {
    expect(rateLimitWaitMs(new Headers({ 'retry-after': '3' }), 0)).toBe(3000);
    expect(rateLimitWaitMs(new Headers({ 'x-ratelimit-reset': '1700000010' }), 1_700_000_000_000)).toBe(10_000);
    expect(rateLimitWaitMs(new Headers({}), 0)).toBeUndefined();
  });
});

describe('Polygon request window', () => {
  it('counts each request from its answer, so requests that reach the server late never crowd its window', async () => {
    // A loaded machine: some requests reach the server 400 ms after they started (more than the window's margin),
    // the others at once. Counted from their starts, the 4th would start 450 ms after the 1st and arrive 50 ms
    // after the first three did: four inside the server's 200 ms window.
    const n = 3;
    const windowMs = 200;
    const w = new RequestWindow(n, windowMs);
    const arrivals: number[] = [];
    for (const delay of [400, 0, 0, 0, 0, 0, 400, 0, 0, 0]) {
      const slot = await w.take();
      await sleep(delay);
      arrivals.push(Date.now()); // the server counts it now, and answers at once
      slot.answered();
    }
    for (const a of arrivals) {
      expect(arrivals.filter((b) => b > a - windowMs && b <= a).length).toBeLessThanOrEqual(n);
    }
  });
});

describe('Polygon REST client against the fake server', () => {
  it('follows next_url across pages and returns the recorded bars exactly, key only in the Authorization header', async () => {
    const f = await start({ pageSize: 40 });
    const c = client(f);
    const bars = await c.aggregates({ ticker: 'NVDA', interval: '1d', from: '2013-01-01', to: '2013-12-31' });
    const want = readBarsCsvSync(sharedDataFile(DATA, 'NVDA'), {
      symbol: 'NVDA',
      from: '2013-01-01',
      to: '2013-12-31',
    });
    expect(bars.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume])).toEqual(
      want.map((b) => [b.timestamp, b.open, b.high, b.low, b.close, b.volume]),
    );
    expect(want.length).toBe(252);
    expect(c.stats.pages).toBe(Math.ceil(252 / 40));
    expect(f.requests.every((r) => r.auth === 'bearer' && !r.path.includes(KEY))).toBe(true);
  });

  it('an empty range (a holiday) is no bars, not an error', async () => {
    const f = await start();
    const bars = await client(f).aggregates({ ticker: 'NVDA', interval: '1d', from: '2013-12-25', to: '2013-12-25' });
    expect(bars).toEqual([]);
  });

  it('401 and 403 fail at once with the server message (no retry burns the quota)', async () => {
    const f = await start();
    const bad = new PolygonRestClient({ baseUrl: f.url, apiKey: 'wrong', requestsPerWindow: 0 });
    const q = { ticker: 'NVDA', interval: '1d', from: '2013-01-01', to: '2013-01-31' };
    await expect(bad.aggregates(q)).rejects.toMatchObject({ kind: 'unauthorized', status: 401 });
    expect(f.requests).toHaveLength(1);
    f.inject('403');
    const err = await client(f)
      .aggregates(q)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolygonError);
    expect((err as PolygonError).kind).toBe('forbidden');
    expect((err as PolygonError).message).toMatch(/NOT_AUTHORIZED: You are not entitled/);
    expect(f.requests).toHaveLength(2);
  });

  it('a 429 waits for its reset before the next request, then succeeds', async () => {
    const f = await start({ retryAfterSec: 1 });
    f.inject('429', 1);
    const c = client(f);
    const bars = await c.aggregates({ ticker: 'ORCL', interval: '1d', from: '2013-01-01', to: '2013-01-31' });
    expect(bars.length).toBe(21);
    expect(c.stats.rateLimited).toBe(1);
    expect(f.rateLimitViolations).toBe(0); // nothing arrived before the announced reset
  });

  it('keeps under the free tier limit by itself: 5 requests per window, never a 429', async () => {
    const f = await start({ pageSize: 10, rateLimit: { requests: 5, windowMs: 400 } });
    const c = client(f, { requestsPerWindow: 5, windowMs: 400 });
    const bars = await c.aggregates({ ticker: 'NVDA', interval: '1d', from: '2013-01-01', to: '2013-04-30' });
    expect(bars.length).toBe(82);
    expect(c.stats.pages).toBe(9);
    expect(c.stats.rateLimited).toBe(0);
    expect(f.rateLimitViolations).toBe(0);
  });

  it('retries 5xx, dropped connections and slow responses with backoff, then succeeds', async () => {
    const f = await start({ slowMs: 1500 });
    f.inject('503', 2);
    f.inject('drop', 1);
    f.inject('slow', 1);
    f.inject('500', 1);
    const c = client(f, { timeoutMs: 500, maxAttempts: 8 });
    const bars = await c.aggregates({ ticker: 'NVDA', interval: '1d', from: '2013-02-01', to: '2013-02-28' });
    expect(bars.length).toBe(19);
    expect(c.stats.retries).toBe(5);
  });

  it('gives up after maxAttempts of 5xx with a transient error', async () => {
    const f = await start();
    f.inject('502', 10);
    const err = await client(f, { maxAttempts: 3 })
      .aggregates({ ticker: 'NVDA', interval: '1d', from: '2013-02-01', to: '2013-02-28' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'unavailable', transient: true });
    expect(f.requests).toHaveLength(3);
  });

  it('skips and counts malformed rows; an impossible but well-formed row is caught by the validator', async () => {
    const f = await start();
    f.inject('malformed');
    const c = client(f);
    const bars = await c.aggregates({ ticker: 'NVDA', interval: '1d', from: '2013-03-01', to: '2013-03-31' });
    expect(c.stats.malformedRows).toBe(2);
    const march = readBarsCsvSync(sharedDataFile(DATA, 'NVDA'), { symbol: 'NVDA', from: '2013-03', to: '2013-03' });
    expect(march.length).toBe(20); // Good Friday, 29 March 2013, was a holiday
    expect(bars.length).toBe(march.length - 2);
    const v = new BarValidator();
    const ok = bars.filter((b) => v.check(b, '1d').ok);
    expect(ok.length).toBe(bars.length - 1);
    expect(v.counts.high_below_low).toBe(1);
  });

  it('never writes the API key to a log line, whatever fails', async () => {
    const f = await start({ slowMs: 800, retryAfterSec: 1 });
    const { lines, logger } = capture();
    f.inject('503', 1);
    f.inject('429', 1);
    f.inject('drop', 1);
    f.inject('slow', 1);
    f.inject('malformed', 1);
    const c = client(f, { logger, timeoutMs: 300, maxAttempts: 10 });
    await c.aggregates({ ticker: 'NVDA', interval: '1d', from: '2013-03-01', to: '2013-03-31' });
    f.inject('403', 1);
    const err = await c
      .aggregates({ ticker: 'NVDA', interval: '1d', from: '2013-03-01', to: '2013-03-31' })
      .catch((e: unknown) => e);
    logger.error({ err }, 'polygon failed');
    const bad = new PolygonRestClient({ baseUrl: f.url, apiKey: KEY.slice(0, -1), requestsPerWindow: 0, logger });
    const err2 = await bad
      .aggregates({ ticker: 'NVDA', interval: '1d', from: '2013-03-01', to: '2013-03-02' })
      .catch((e: unknown) => e);
    logger.error({ err: err2 }, 'polygon failed');
    expect(lines.length).toBeGreaterThanOrEqual(6);
    const all = lines.join('\n');
    expect(all).toMatch(/retrying/);
    expect(all).toMatch(/rate limit/);
    expect(all).not.toContain(KEY);
    expect(all).not.toContain(KEY.slice(0, -1));
    expect(String(err) + String(err2)).not.toContain(KEY.slice(0, 12));
  });
});
