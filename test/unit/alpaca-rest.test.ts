import { afterEach, describe, expect, it, vi } from 'vitest';
import { AlpacaBroker } from '../../src/adapters/brokers/alpaca';
import { streamUrlFor } from '../../src/adapters/brokers/alpaca/stream';
import { backoffDelay } from '../../src/lib/backoff';
import { BrokerRateLimitedError, BrokerRejectedError, BrokerUnavailableError } from '../../src/adapters/brokers/broker';
import { createBroker, SIM_PLACEHOLDER_KEY } from '../../src/adapters/brokers';
import { parseEnv } from '../../src/config';
import { createLogger } from '../../src/logging';

/** REST error mapping and request shape, against an injected fetch (no sockets). */

const silent = createLogger('test', { level: 'silent' });
interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: unknown;
}

function fakeFetch(responder: (c: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fn = (async (input: URL | string, init?: RequestInit) => {
    const c: Call = {
      url: String(input),
      method: init?.method ?? 'GET',
      headers: init?.headers as Record<string, string>,
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
    };
    calls.push(c);
    return responder(c);
  }) as typeof fetch;
  return { fn, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });

const NOW = 1_714_573_800_000; // fixed clock

function broker(responder: (c: Call) => Response | Promise<Response>, timeoutMs = 1_000) {
  const f = fakeFetch(responder);
  const b = new AlpacaBroker({
    baseUrl: 'https://paper-api.alpaca.markets/',
    keyId: 'PKTEST0001',
    secretKey: 'sk-live-secret-0001',
    logger: silent,
    httpTimeoutMs: timeoutMs,
    fetch: f.fn,
    now: () => NOW,
  });
  return { b, calls: f.calls };
}

const req = {
  clientOrderId: 'cid-1',
  symbol: 'NVDA',
  side: 'buy' as const,
  qty: 3,
  type: 'market' as const,
  timeInForce: 'day' as const,
};

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected failure');
    },
    (e: unknown) => e,
  );
}

describe('AlpacaBroker REST mapping', () => {
  it('sends the key headers, the string body and the by-client-id lookup path', async () => {
    const { b, calls } = broker((c) =>
      c.method === 'POST'
        ? json(200, {
            id: 'o1',
            client_order_id: 'cid-1',
            symbol: 'NVDA',
            side: 'buy',
            qty: '3',
            filled_qty: '0',
            type: 'market',
            time_in_force: 'day',
            status: 'accepted',
            created_at: 'x',
            updated_at: 'x',
          })
        : json(404, { code: 40410000, message: 'order not found' }),
    );
    expect(await b.getOrderByClientOrderId('cid-1')).toBeNull();
    const o = await b.submitOrder(req);
    expect(o.status).toBe('accepted');
    expect(calls[0]!.url).toBe(
      'https://paper-api.alpaca.markets/v2/orders:by_client_order_id?client_order_id=cid-1&nested=true',
    );
    expect(calls[1]!.headers['APCA-API-KEY-ID']).toBe('PKTEST0001');
    expect(calls[1]!.headers['APCA-API-SECRET-KEY']).toBe('sk-live-secret-0001');
    expect(calls[1]!.body).toEqual({
      symbol: 'NVDA',
      qty: '3',
      side: 'buy',
      type: 'market',
      time_in_force: 'day',
      client_order_id: 'cid-1',
    });
    await b.close();
  });

  it('429 past the caller deadline → BrokerRateLimitedError, retryAfterMs from X-Ratelimit-Reset, bounded to [1 s, 60 s]', async () => {
    const reset = (s: number) =>
      broker(() => json(429, { message: 'too many requests' }, { 'X-Ratelimit-Reset': String(s) })).b;
    // deadlineMs = now: no wait is acceptable, so the 429 surfaces with the wait it asks for.
    const now = { deadlineMs: NOW };
    const e1 = await failure(reset(NOW / 1000 + 5).getAccount(now));
    expect(e1).toBeInstanceOf(BrokerRateLimitedError);
    expect((e1 as BrokerRateLimitedError).retryAfterMs).toBe(5_000);
    expect(((await failure(reset(NOW / 1000 - 3).getAccount(now))) as BrokerRateLimitedError).retryAfterMs).toBe(1_000);
    expect(((await failure(reset(NOW / 1000 + 3_600).getAccount(now))) as BrokerRateLimitedError).retryAfterMs).toBe(
      60_000,
    );
    const none = broker(() => json(429, {})).b;
    expect(((await failure(none.getAccount(now))) as BrokerRateLimitedError).retryAfterMs).toBe(1_000);
    const ra = broker(() => json(429, {}, { 'Retry-After': '7' })).b;
    expect(((await failure(ra.getAccount(now))) as BrokerRateLimitedError).retryAfterMs).toBe(7_000);
  });

  it('401 → BrokerRejectedError("unauthorized") without echoing keys', async () => {
    const { b } = broker(() => json(401, { message: 'unauthorized.' }));
    const e = (await failure(b.getAccount())) as BrokerRejectedError;
    expect(e).toBeInstanceOf(BrokerRejectedError);
    expect(e.code).toBe('unauthorized');
    expect(e.message).not.toMatch(/PKTEST0001|sk-live-secret-0001/);
  });

  it('5xx on POST is ambiguous, on GET it is not', async () => {
    const { b } = broker(() => json(502, { message: 'bad gateway' }));
    const post = (await failure(b.submitOrder(req))) as BrokerUnavailableError;
    expect(post).toBeInstanceOf(BrokerUnavailableError);
    expect(post.ambiguous).toBe(true);
    const get = (await failure(b.getAccount())) as BrokerUnavailableError;
    expect(get.ambiguous).toBe(false);
  });

  it('a timeout aborts the request and is ambiguous for POST', async () => {
    const hang = (c: Call) =>
      new Promise<Response>((_r, reject) => {
        void c;
        setTimeout(() => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), 150);
      });
    const f = fakeFetch(hang);
    let aborted = false;
    const b = new AlpacaBroker({
      baseUrl: 'https://x.test',
      keyId: 'k',
      secretKey: 's',
      logger: silent,
      httpTimeoutMs: 100,
      fetch: (async (u: URL | string, init?: RequestInit) => {
        init?.signal?.addEventListener('abort', () => (aborted = true));
        return f.fn(u, init);
      }) as typeof fetch,
    });
    const e = (await failure(b.submitOrder(req))) as BrokerUnavailableError;
    expect(e).toBeInstanceOf(BrokerUnavailableError);
    expect(e.ambiguous).toBe(true);
    expect(e.message).toContain('timed out after 100 ms');
    expect(aborted).toBe(true);
    expect(f.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
  });

  it('a "must be unique" with no order behind it stays unresolved (never a rejection)', async () => {
    const { b } = broker((c) =>
      c.method === 'POST'
        ? json(422, { code: 40010001, message: 'client_order_id must be unique' })
        : json(404, { message: 'not found' }),
    );
    const e = (await failure(b.submitOrder(req))) as BrokerUnavailableError;
    expect(e).toBeInstanceOf(BrokerUnavailableError);
    expect(e.ambiguous).toBe(true);
  });

  it('cancel: 422 "already filled" is not an error, the current order is returned', async () => {
    let n = 0;
    const { b, calls } = broker((c) => {
      if (c.method === 'DELETE') return json(422, { code: 42210000, message: 'order is already in "filled" state' });
      n++;
      const status = n === 1 ? 'new' : 'filled';
      return json(200, {
        id: 'o1',
        client_order_id: 'cid-1',
        symbol: 'NVDA',
        side: 'buy',
        qty: '3',
        filled_qty: status === 'filled' ? '3' : '0',
        type: 'market',
        time_in_force: 'day',
        status,
        created_at: 'x',
      });
    });
    const o = await b.cancelOrder('cid-1');
    expect(o?.status).toBe('filled');
    expect(calls.find((c) => c.method === 'DELETE')?.url).toBe('https://paper-api.alpaca.markets/v2/orders/o1');
  });
});

describe('stream helpers', () => {
  it('derives the stream URL from the base URL', () => {
    expect(streamUrlFor('https://paper-api.alpaca.markets')).toBe('wss://paper-api.alpaca.markets/stream');
    expect(streamUrlFor('https://api.alpaca.markets/')).toBe('wss://api.alpaca.markets/stream');
    expect(streamUrlFor('http://127.0.0.1:8787')).toBe('ws://127.0.0.1:8787/stream');
  });

  it('backoff grows exponentially, is jittered, and is capped', () => {
    expect(backoffDelay(0, 500, 30_000, () => 0)).toBe(250);
    expect(backoffDelay(0, 500, 30_000, () => 1)).toBe(500);
    expect(backoffDelay(3, 500, 30_000, () => 1)).toBe(4_000);
    expect(backoffDelay(20, 500, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(20, 500, 30_000, () => 0)).toBe(15_000);
  });
});

describe('createBroker', () => {
  it('BROKER=alpaca → AlpacaBroker at ALPACA_BASE_URL with the configured keys', async () => {
    const cfg = parseEnv({
      BROKER: 'alpaca',
      BROKER_API_KEY: 'AK',
      BROKER_API_SECRET: 'AS',
      ALPACA_BASE_URL: 'https://api.alpaca.markets',
    });
    const f = fakeFetch(() => json(200, { cash: '1', equity: '1', buying_power: '1' }));
    const b = createBroker(cfg.broker, silent, { fetch: f.fn });
    expect(b.name).toBe('alpaca');
    await b.getAccount();
    expect(f.calls[0]!.url).toBe('https://api.alpaca.markets/v2/account');
    expect(f.calls[0]!.headers['APCA-API-KEY-ID']).toBe('AK');
  });

  it('BROKER=simulated → the same adapter pointed at the local venue with placeholder keys', async () => {
    const cfg = parseEnv({ BROKER: 'simulated', SIM_EXCHANGE_PORT: '9911' });
    const f = fakeFetch(() => json(200, []));
    const b = createBroker(cfg.broker, silent, { fetch: f.fn });
    expect(b).toBeInstanceOf(AlpacaBroker);
    expect(b.name).toBe('simulated');
    await b.getPositions();
    expect(f.calls[0]!.url).toBe('http://127.0.0.1:9911/v2/positions');
    expect(f.calls[0]!.headers['APCA-API-KEY-ID']).toBe(SIM_PLACEHOLDER_KEY);
  });

  it("the broker's request budget comes from config: 200/min for Alpaca, unlimited for the local venue", async () => {
    const alpaca = createBroker(
      parseEnv({ BROKER: 'alpaca', BROKER_API_KEY: 'k', BROKER_API_SECRET: 's', BROKER_RATE_LIMIT_PER_MIN: '120' })
        .broker,
      silent,
    );
    expect(alpaca.budget.limitPerMinute).toBe(120);
    expect(alpaca.budget.burst).toBe(12);
    const sim = createBroker(parseEnv({}).broker, silent);
    expect(sim.budget.unlimited).toBe(true);
    await alpaca.close();
    await sim.close();
  });
});

describe('429s are waited out, never counted as failures (fake clock)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** `statuses`: what the first requests of `method` get (default any method); then 200. */
  function timedBroker(statuses: number[], resetInSec: number, rateLimitPerMinute = 0, method?: string) {
    let i = 0;
    const f = fakeFetch((c) => {
      const status = !method || c.method === method ? (statuses[i++] ?? 200) : 200;
      if (status === 429)
        return json(
          429,
          { code: 42910000, message: 'rate limit exceeded' },
          {
            'X-Ratelimit-Limit': '200',
            'X-Ratelimit-Remaining': '0',
            'X-Ratelimit-Reset': String(Math.floor(Date.now() / 1000) + resetInSec),
          },
        );
      if (c.method === 'POST')
        return json(200, {
          id: 'b-1',
          client_order_id: 'cid-1',
          symbol: 'NVDA',
          side: 'buy',
          qty: '3',
          filled_qty: '0',
          type: 'market',
          time_in_force: 'day',
          status: 'accepted',
          created_at: '2024-05-01T14:30:00Z',
        });
      return json(200, { cash: '1000', equity: '1000', buying_power: '1000' });
    });
    const b = new AlpacaBroker({
      baseUrl: 'https://paper-api.alpaca.markets/',
      keyId: 'k',
      secretKey: 's',
      logger: silent,
      fetch: f.fn,
      rateLimitPerMinute,
      reconnectInitialMs: 60_000,
    });
    return { b, calls: f.calls };
  }

  it('a POST answered 429 three times is re-sent after each reset and then placed once; the bucket paused meanwhile', async () => {
    vi.useFakeTimers({ now: NOW });
    const { b, calls } = timedBroker([429, 429, 429], 2, 0, 'POST');
    let placed: unknown;
    const p = b.submitOrder(req).then((o) => (placed = o));
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    // While paused, other callers wait too: a read issued now does not reach the broker.
    const read = b.getAccount();
    await vi.advanceTimersByTimeAsync(1_500);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_000);
    await p;
    await read;
    expect(placed).toMatchObject({ brokerOrderId: 'b-1', clientOrderId: 'cid-1' });
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(4);
    expect(calls.filter((c) => c.method === 'GET')).toHaveLength(1);
    // Every POST carried the same client_order_id: a re-POST can never create a second order.
    expect(
      new Set(
        calls.filter((c) => c.method === 'POST').map((c) => (c.body as { client_order_id: string }).client_order_id),
      ).size,
    ).toBe(1);
    expect(b.rateLimitedResponses).toBe(3);
    expect(b.budget.pauses).toBe(3);
    await b.close();
  });

  it('a cancelled caller stops waiting with BrokerRateLimitedError; nothing more is sent for it', async () => {
    vi.useFakeTimers({ now: NOW });
    const { b, calls } = timedBroker([429, 429, 429, 429], 30);
    const ctl = new AbortController();
    const p = failure(b.getAccount({ signal: ctl.signal }));
    await vi.advanceTimersByTimeAsync(5_000);
    ctl.abort();
    const err = await p;
    expect(err).toBeInstanceOf(BrokerRateLimitedError);
    expect((err as BrokerRateLimitedError).retryAfterMs).toBeGreaterThan(20_000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(1);
    await b.close();
  });

  it('the configured limit covers every call: 50 reads at 60/min reach the broker 6 at once, then ~1/s', async () => {
    vi.useFakeTimers({ now: NOW });
    const { b, calls } = timedBroker([], 1, 60);
    const all = Promise.all(Array.from({ length: 50 }, () => b.getAccount()));
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(6);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls.length).toBeGreaterThanOrEqual(6 + 8);
    expect(calls.length).toBeLessThanOrEqual(6 + 10);
    await vi.advanceTimersByTimeAsync(60_000);
    await all;
    expect(calls).toHaveLength(50);
    await b.close();
  });
});
