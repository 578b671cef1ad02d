import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startAlpacaCompatServer, type AlpacaCompatServer } from '../../src/venue/alpaca-compat';
import { createLogger } from '../../src/logging';
import { FakeAlpacaEngine } from '../fakes/fake-alpaca';

/**
 * The Alpaca-compatible server's wire behaviour seen by a raw HTTP/WebSocket client (no AlpacaBroker),
 * so a regression in the server cannot hide behind a matching regression in the adapter.
 */

let engine: FakeAlpacaEngine;
let server: AlpacaCompatServer;
const H = { 'APCA-API-KEY-ID': 'key', 'APCA-API-SECRET-KEY': 'secret', 'content-type': 'application/json' };

beforeAll(async () => {
  engine = new FakeAlpacaEngine();
  server = await startAlpacaCompatServer({
    broker: engine,
    port: 0,
    apiKey: 'key',
    apiSecret: 'secret',
    logger: createLogger('test', { level: 'silent' }),
  });
});
afterAll(async () => {
  await server.close();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = H) {
  const res = await fetch(server.url + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
  };
}

const post = (cid: string, extra: Record<string, unknown> = {}) =>
  call('POST', '/v2/orders', {
    symbol: 'AAPL',
    qty: '2',
    side: 'buy',
    type: 'limit',
    time_in_force: 'day',
    limit_price: '50',
    client_order_id: cid,
    ...extra,
  });

describe('Alpaca-compatible server: REST', () => {
  it('creates an order in Alpaca shape with rate-limit headers', async () => {
    const r = await post('srv-1');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      client_order_id: 'srv-1',
      qty: '2',
      filled_qty: '0',
      limit_price: '50',
      status: 'new',
      asset_class: 'us_equity',
    });
    expect(r.headers.get('x-ratelimit-limit')).toBe('200');
    expect(Number(r.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 - 1);
  });

  it('a reused client_order_id → 422 "client_order_id must be unique", no second order', async () => {
    const before = engine.ordersCreated;
    const r = await post('srv-1');
    expect(r.status).toBe(422);
    expect(r.body).toEqual({ code: 40010001, message: 'client_order_id must be unique' });
    expect(engine.ordersCreated).toBe(before);
  });

  it('concurrent POSTs with one id create one order', async () => {
    const before = engine.ordersCreated;
    const rs = await Promise.all([post('srv-race'), post('srv-race'), post('srv-race')]);
    expect(rs.filter((r) => r.status === 200)).toHaveLength(1);
    expect(rs.filter((r) => r.status === 422)).toHaveLength(2);
    expect(engine.ordersCreated).toBe(before + 1);
  });

  it('lookup by client id / by id; 404 in Alpaca shape', async () => {
    const byCid = await call('GET', '/v2/orders:by_client_order_id?client_order_id=srv-1');
    expect(byCid.status).toBe(200);
    const byId = await call('GET', `/v2/orders/${String(byCid.body!.id)}`);
    expect(byId.body!.client_order_id).toBe('srv-1');
    const missing = await call('GET', '/v2/orders:by_client_order_id?client_order_id=nope');
    expect(missing.status).toBe(404);
    expect(missing.body!.code).toBe(40410000);
  });

  it('DELETE: 204 for a live order, 422 42210000 once it is finished', async () => {
    const { body } = await post('srv-del');
    const first = await call('DELETE', `/v2/orders/${String(body!.id)}`);
    expect(first.status).toBe(204);
    const second = await call('DELETE', `/v2/orders/${String(body!.id)}`);
    expect(second.status).toBe(422);
    expect(second.body).toMatchObject({ code: 42210000, message: 'order is already in "canceled" state' });
  });

  it('lists open / closed / all orders', async () => {
    const open = await call('GET', '/v2/orders?status=open&limit=500');
    const closed = await call('GET', '/v2/orders?status=closed&limit=500');
    const all = await call('GET', '/v2/orders?status=all&limit=500');
    const ids = (r: { body?: unknown }) => (r.body as Array<{ client_order_id: string }>).map((o) => o.client_order_id);
    expect(ids(open)).toContain('srv-1');
    expect(ids(open)).not.toContain('srv-del');
    expect(ids(closed)).toContain('srv-del');
    expect(ids(all)).toEqual(expect.arrayContaining(['srv-1', 'srv-del']));
  });

  it('translates broker rejections, validation, auth and unknown routes', async () => {
    const bp = await post('srv-bp', { qty: '100000' });
    expect(bp.status).toBe(403);
    expect(bp.body).toEqual({ code: 40310000, message: 'insufficient buying power' });
    const bad = await post('srv-bad', { qty: '-1' });
    expect(bad.status).toBe(422);
    expect(bad.body).toEqual({ code: 40010001, message: 'qty must be > 0' });
    const malformed = await fetch(server.url + '/v2/orders', { method: 'POST', headers: H, body: '{not json' });
    expect(malformed.status).toBe(400);
    const unauth = await call('GET', '/v2/account', undefined, {
      'APCA-API-KEY-ID': 'key',
      'APCA-API-SECRET-KEY': 'wrong',
    });
    expect(unauth.status).toBe(401);
    expect((await call('GET', '/v2/nothing')).status).toBe(404);
  });

  it('account and positions as strings', async () => {
    const acct = await call('GET', '/v2/account');
    expect(acct.body).toMatchObject({ cash: '100000', status: 'ACTIVE', trading_blocked: false });
    expect(typeof acct.body!.buying_power).toBe('string');
    await engine.fill('srv-1', 2, 50);
    const pos = await call('GET', '/v2/positions');
    expect(pos.body).toEqual([
      expect.objectContaining({ symbol: 'AAPL', qty: '2', avg_entry_price: '50', side: 'long' }),
    ]);
    expect((await call('GET', '/v2/positions/AAPL')).status).toBe(200);
    expect((await call('GET', '/v2/positions/MSFT')).status).toBe(404);
  });
});

describe('Alpaca-compatible server: trade_updates', () => {
  function connect(): Promise<{
    ws: WebSocket;
    msgs: Array<{ stream: string; data: Record<string, unknown> }>;
    binary: boolean[];
  }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(server.streamUrl);
      const msgs: Array<{ stream: string; data: Record<string, unknown> }> = [];
      const binary: boolean[] = [];
      ws.on('message', (raw, isBinary) => {
        binary.push(isBinary);
        msgs.push(JSON.parse(String(raw)) as { stream: string; data: Record<string, unknown> });
      });
      ws.on('open', () => resolve({ ws, msgs, binary }));
      ws.on('error', reject);
    });
  }
  const until = async (fn: () => boolean) => {
    const end = Date.now() + 3_000;
    while (!fn()) {
      if (Date.now() > end) throw new Error('timeout');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('auth → listen → fill events in binary frames with execution details', async () => {
    const { ws, msgs, binary } = await connect();
    ws.send(JSON.stringify({ action: 'auth', key: 'key', secret: 'secret' }));
    await until(() => msgs.length >= 1);
    expect(msgs[0]).toEqual({ stream: 'authorization', data: { action: 'authenticate', status: 'authorized' } });
    ws.send(JSON.stringify({ action: 'listen', data: { streams: ['trade_updates'] } }));
    await until(() => msgs.length >= 2);
    expect(msgs[1]).toEqual({ stream: 'listening', data: { streams: ['trade_updates'] } });
    await post('srv-ws');
    await engine.fill('srv-ws', 1, 49.5);
    await until(() => msgs.some((m) => m.data.event === 'partial_fill'));
    const fill = msgs.find((m) => m.data.event === 'partial_fill')!;
    expect(fill.stream).toBe('trade_updates');
    expect(fill.data).toMatchObject({ qty: '1', price: '49.5', position_qty: '3', fee: '0' });
    expect(fill.data.execution_id).toMatch(/^exec-/);
    expect((fill.data.order as Record<string, unknown>).filled_qty).toBe('1');
    expect(msgs.findIndex((m) => m.data.event === 'new')).toBeLessThan(msgs.indexOf(fill));
    expect(binary.every(Boolean)).toBe(true);
    ws.close();
  });

  it('wrong credentials → unauthorized and the socket is closed', async () => {
    const { ws, msgs } = await connect();
    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    ws.send(JSON.stringify({ action: 'auth', key: 'key', secret: 'nope' }));
    await closed;
    expect(msgs[0]?.data.status).toBe('unauthorized');
  });
});
