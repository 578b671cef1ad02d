import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { isTerminal, type BrokerOrder, type OrderUpdate } from '../../contracts/order';
import { createLogger, type Logger } from '../../logging';
import {
  BrokerRateLimitedError,
  BrokerRejectedError,
  BrokerUnavailableError,
  hasExecutionLog,
  type Broker,
  type BrokerExecution,
} from '../../adapters/brokers/broker';
import {
  ALPACA_CODES,
  AlpacaWireError,
  DUPLICATE_CLIENT_ORDER_ID_MESSAGE,
  accountToAlpaca,
  eventToAlpaca,
  fillActivityToAlpaca,
  orderRequestFromAlpaca,
  orderToAlpaca,
  positionToAlpaca,
  toWireNumber,
  type AlpacaTradeUpdateMessage,
} from '../../adapters/brokers/alpaca/wire';

/**
 * An Alpaca Trading API v2 compatible server in front of any `Broker`: the REST endpoints the
 * AlpacaBroker adapter uses and the trade_updates WebSocket, in Alpaca's wire format (numbers as
 * strings, `{"code","message"}` error bodies, X-Ratelimit-* headers, binary stream frames).
 *
 * Production use: the simulated venue process hosts a SimulatedBroker behind it, so BROKER=simulated
 * runs the very adapter that talks to Alpaca (and the venue's order book survives worker crashes).
 * Test use: the fake Alpaca wraps an in-memory engine and injects faults through `hooks`.
 *
 * Alpaca semantics reproduced on purpose:
 *  - a reused client_order_id gets 422 "client_order_id must be unique" (Alpaca keeps ids unique
 *    forever, even after cancel) — the client adapter must treat that as "already placed";
 *  - DELETE of a finished order gets 422 42210000; DELETE of a live order gets 204;
 *  - fills on the stream carry execution_id, qty and price of that fill, position_qty, and the order
 *    with cumulative filled_qty. Non-Alpaca extension: `fee` (the venue's fee for the fill), which
 *    Alpaca clients ignore and AlpacaBroker reads (Alpaca itself charges no commission);
 *  - FILL account activities (`GET /v2/account/activities/FILL`, or `/v2/account/activities?activity_types=FILL`)
 *    with `after`/`until`/`date`, `direction` (default desc), `page_size` (≤ 100 unless `date`) and
 *    `page_token` paging, from the broker's execution log (ExecutionLog) when it has one. Same extension:
 *    `fee` on an activity whose venue charged one. Other activity types: none on a simulated account ([]).
 */

export interface CompatRequestContext {
  method: string;
  /** Path without query, e.g. `/v2/orders`. */
  path: string;
  query: URLSearchParams;
  /** Parsed JSON body (undefined when none). */
  body: unknown;
  req: IncomingMessage;
  res: ServerResponse;
}

export interface CompatResponseContext extends CompatRequestContext {
  status: number;
  responseBody: unknown;
}

/** Fault-injection and observation points (used by the fake Alpaca). All optional. */
export interface AlpacaCompatHooks {
  /** Before routing. Return true when the hook answered (or destroyed) the request itself. */
  onRequest?(ctx: CompatRequestContext): boolean | Promise<boolean>;
  /** After the broker acted, before the response is written. Return true when the hook wrote or destroyed the response. */
  onResponse?(ctx: CompatResponseContext): boolean | Promise<boolean>;
  /** Every outgoing trade_updates message; returns what to actually send (drop = [], duplicate = [m, m]). */
  onTradeUpdate?(msg: AlpacaTradeUpdateMessage): AlpacaTradeUpdateMessage[];
  /** A WebSocket upgrade on /stream. Return false to refuse it (HTTP 503). */
  onStreamConnect?(): boolean;
  /** A client just started listening; `send` reaches that client only (e.g. to replay events). */
  onStreamListening?(send: (msg: AlpacaTradeUpdateMessage) => void): void;
}

export interface AlpacaCompatServerOptions {
  broker: Broker;
  /** 0 = ephemeral. */
  port: number;
  host?: string;
  /** When set, requests and stream auth must carry this key pair (else 401 / unauthorized). */
  apiKey?: string;
  apiSecret?: string;
  hooks?: AlpacaCompatHooks;
  logger?: Logger;
  /** trade_updates as binary frames, like Alpaca's paper endpoint. Default true. */
  binaryFrames?: boolean;
  /** Advertised in X-Ratelimit-Limit (fixed one-minute window). Default 200. */
  rateLimitPerMinute?: number;
  /** Answer 429 once the window's budget is spent. Default false (headers only). */
  enforceRateLimit?: boolean;
}

export interface AlpacaCompatServer {
  readonly host: string;
  readonly port: number;
  /** REST base URL (ALPACA_BASE_URL for a client). */
  readonly url: string;
  /** trade_updates URL. */
  readonly streamUrl: string;
  /** Terminate every stream connection (clients see an abnormal close). */
  disconnectStreams(): void;
  /** Clients currently authorised and listening to trade_updates. */
  listeningClients(): number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message ?? status));
  }
}

const MAX_BODY_BYTES = 1 << 20;

function alpacaCode(code: string): number | string {
  return /^\d+$/.test(code) ? Number(code) : code;
}

/** A Broker error → Alpaca status + body. */
function toHttpError(err: unknown, nowMs: number): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof BrokerRejectedError) {
    const status =
      err.httpStatus ??
      (err.code === 'unauthorized' ? 401 : err.code.startsWith('403') ? 403 : err.code.startsWith('404') ? 404 : 422);
    return new HttpError(status, { code: alpacaCode(err.code), message: err.message });
  }
  if (err instanceof BrokerRateLimitedError) {
    return new HttpError(
      429,
      { code: ALPACA_CODES.RATE_LIMITED, message: 'rate limit exceeded' },
      { 'X-Ratelimit-Remaining': '0', 'X-Ratelimit-Reset': String(Math.ceil((nowMs + err.retryAfterMs) / 1000)) },
    );
  }
  if (err instanceof BrokerUnavailableError) {
    return new HttpError(503, { code: ALPACA_CODES.INTERNAL, message: err.message });
  }
  if (err instanceof AlpacaWireError)
    return new HttpError(422, { code: ALPACA_CODES.VALIDATION, message: err.message });
  return undefined;
}

/** Alpaca's activity query semantics over an execution log (ids sort in time order: `<timestamp digits>::uuid`). */
function pageOfActivities(all: BrokerExecution[], query: URLSearchParams): BrokerExecution[] {
  const bad = (message: string) => new HttpError(422, { code: ALPACA_CODES.VALIDATION, message });
  const bound = (name: string): number | undefined => {
    const v = query.get(name);
    if (v === null || v === '') return undefined;
    const t = Date.parse(v);
    if (!Number.isFinite(t)) throw bad(`invalid ${name}: ${v}`);
    return t;
  };
  const date = query.get('date');
  const after = bound('after');
  const until = bound('until');
  if (date && (after !== undefined || until !== undefined)) throw bad('date cannot be used with after/until');
  const direction = query.get('direction') ?? 'desc';
  if (direction !== 'asc' && direction !== 'desc') throw bad(`invalid direction: ${direction}`);
  const sizeRaw = query.get('page_size');
  const size = sizeRaw === null ? (date ? Number.POSITIVE_INFINITY : 100) : Number(sizeRaw);
  if (!(size >= 1) || (!date && size > 100)) throw bad(`invalid page_size: ${sizeRaw}`);
  let rows = all.filter((e) => {
    const t = Date.parse(e.timestamp);
    if (date && e.timestamp.slice(0, 10) !== date) return false;
    if (after !== undefined && !(t > after)) return false;
    if (until !== undefined && !(t < until)) return false;
    return true;
  });
  rows = [...rows].sort((a, b) => (a.executionId < b.executionId ? -1 : a.executionId > b.executionId ? 1 : 0));
  if (direction === 'desc') rows.reverse();
  const token = query.get('page_token');
  if (token) {
    const i = rows.findIndex((e) => e.executionId === token);
    rows = i >= 0 ? rows.slice(i + 1) : [];
  }
  return rows.slice(0, size);
}

interface StreamClient {
  ws: WebSocket;
  authorized: boolean;
  listening: boolean;
}

export async function startAlpacaCompatServer(opts: AlpacaCompatServerOptions): Promise<AlpacaCompatServer> {
  const { broker, hooks = {} } = opts;
  const host = opts.host ?? '127.0.0.1';
  const log = (opts.logger ?? createLogger('alpaca-compat')).child({ component: 'alpaca-compat' });
  const binary = opts.binaryFrames ?? true;
  const limit = opts.rateLimitPerMinute ?? 200;
  let windowStart = 0;
  let windowCount = 0;

  /** broker order id → client order id, for the endpoints that address orders by Alpaca id. */
  const idIndex = new Map<string, string>();
  const remember = (o: BrokerOrder) => {
    idIndex.set(o.brokerOrderId, o.clientOrderId);
    for (const leg of o.legs ?? []) remember(leg);
  };
  /** client order ids with a POST in progress: a concurrent duplicate must not reach the broker. */
  const submitting = new Set<string>();

  const checkAuth = (key: unknown, secret: unknown) =>
    opts.apiKey === undefined || (key === opts.apiKey && (opts.apiSecret === undefined || secret === opts.apiSecret));

  const rateHeaders = (): Record<string, string> => {
    const now = Date.now();
    if (now - windowStart >= 60_000) {
      windowStart = now;
      windowCount = 0;
    }
    windowCount++;
    return {
      'X-Ratelimit-Limit': String(limit),
      'X-Ratelimit-Remaining': String(Math.max(0, limit - windowCount)),
      'X-Ratelimit-Reset': String(Math.ceil((windowStart + 60_000) / 1000)),
    };
  };

  const write = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (res.writableEnded || res.destroyed) return;
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      ...headers,
      ...(text
        ? { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) }
        : {}),
    });
    res.end(text);
  };

  const findClientOrderId = async (brokerOrderId: string): Promise<string | undefined> => {
    const known = idIndex.get(brokerOrderId);
    if (known) return known;
    for (const o of await broker.listOpenOrders()) remember(o);
    return idIndex.get(brokerOrderId);
  };

  const notFound = (what = 'order not found') => new HttpError(404, { code: ALPACA_CODES.NOT_FOUND, message: what });

  const flatten = (orders: BrokerOrder[]): BrokerOrder[] =>
    orders.flatMap((o) => [{ ...o, legs: undefined }, ...flatten(o.legs ?? [])]);

  /** Route one request. Returns [status, body]; throws HttpError or a Broker error. */
  async function route(
    method: string,
    path: string,
    query: URLSearchParams,
    body: unknown,
  ): Promise<[number, unknown]> {
    if (path === '/v2/orders' && method === 'POST') {
      const req = orderRequestFromAlpaca(body);
      const cid = req.clientOrderId;
      const duplicate = new HttpError(422, {
        code: ALPACA_CODES.VALIDATION,
        message: DUPLICATE_CLIENT_ORDER_ID_MESSAGE,
      });
      if (submitting.has(cid)) throw duplicate;
      submitting.add(cid);
      try {
        const existing = await broker.getOrderByClientOrderId(cid);
        // Alpaca keeps a POST-time rejection off the books, so the same id may be tried again; a venue that
        // records rejected orders (SimulatedBroker) answers a re-submit with the same rejection.
        if (existing && existing.status !== 'rejected') throw duplicate;
        const order = await broker.submitOrder(req);
        remember(order);
        return [200, orderToAlpaca(order)];
      } finally {
        submitting.delete(cid);
      }
    }
    if (path === '/v2/orders:by_client_order_id' && method === 'GET') {
      const cid = query.get('client_order_id');
      if (!cid) throw new HttpError(422, { code: ALPACA_CODES.VALIDATION, message: 'client_order_id is missing' });
      const order = await broker.getOrderByClientOrderId(cid);
      if (!order) throw notFound();
      remember(order);
      return [200, orderToAlpaca(order)];
    }
    if (path === '/v2/orders' && method === 'GET') {
      const status = query.get('status') ?? 'open';
      let orders: BrokerOrder[];
      if (status === 'open') {
        orders = await broker.listOpenOrders();
      } else if (status === 'closed' || status === 'all') {
        const open = await broker.listOpenOrders();
        const seen = new Set(open.map((o) => o.clientOrderId));
        const others: BrokerOrder[] = [];
        for (const cid of new Set(idIndex.values())) {
          if (seen.has(cid)) continue;
          const o = await broker.getOrderByClientOrderId(cid);
          if (o && isTerminal(o.status)) others.push(o);
        }
        orders = status === 'all' ? [...open, ...others] : others;
        // Only top-level orders: legs are reached through their parent.
        const legIds = new Set(orders.flatMap((o) => (o.legs ?? []).map((l) => l.clientOrderId)));
        orders = orders.filter((o) => !legIds.has(o.clientOrderId));
      } else {
        throw new HttpError(422, { code: ALPACA_CODES.VALIDATION, message: `invalid status "${status}"` });
      }
      orders.forEach(remember);
      // Alpaca: `after` / `until` bound the submission time (exclusive).
      for (const [name, keep] of [
        ['after', (t: number, b: number) => t > b],
        ['until', (t: number, b: number) => t < b],
      ] as const) {
        const v = query.get(name);
        if (!v) continue;
        const bound = Date.parse(v);
        if (!Number.isFinite(bound))
          throw new HttpError(422, { code: ALPACA_CODES.VALIDATION, message: `invalid ${name}: ${v}` });
        orders = orders.filter((o) => keep(Date.parse(o.createdAt), bound));
      }
      orders.sort((a, b) => (query.get('direction') === 'asc' ? 1 : -1) * a.createdAt.localeCompare(b.createdAt));
      const lim = Math.min(500, Math.max(1, Number(query.get('limit') ?? 50) || 50));
      orders = orders.slice(0, lim);
      if (query.get('nested') !== 'true') orders = flatten(orders);
      return [200, orders.map((o) => orderToAlpaca(o))];
    }
    const byId = /^\/v2\/orders\/([^/]+)$/.exec(path);
    if (byId) {
      const id = decodeURIComponent(byId[1]!);
      const cid = await findClientOrderId(id);
      if (!cid) throw notFound();
      const order = await broker.getOrderByClientOrderId(cid);
      if (!order) throw notFound();
      if (method === 'GET') return [200, orderToAlpaca(order)];
      if (method === 'DELETE') {
        if (isTerminal(order.status)) {
          throw new HttpError(422, {
            code: ALPACA_CODES.NOT_CANCELABLE,
            message: `order is already in "${order.status}" state`,
          });
        }
        await broker.cancelOrder(cid);
        return [204, undefined];
      }
    }
    if (method === 'GET' && (path === '/v2/account/activities' || path.startsWith('/v2/account/activities/'))) {
      const typeInPath =
        path.length > '/v2/account/activities/'.length ? path.slice('/v2/account/activities/'.length) : '';
      const types = typeInPath ? [typeInPath] : (query.get('activity_types') ?? 'FILL').split(',');
      if (!types.map((t) => t.trim().toUpperCase()).includes('FILL') || !hasExecutionLog(broker)) return [200, []];
      return [200, pageOfActivities(await broker.listAllExecutions(), query).map(fillActivityToAlpaca)];
    }
    if (path === '/v2/account' && method === 'GET') return [200, accountToAlpaca(await broker.getAccount())];
    if (path === '/v2/positions' && method === 'GET') return [200, (await broker.getPositions()).map(positionToAlpaca)];
    const pos = /^\/v2\/positions\/([^/]+)$/.exec(path);
    if (pos && method === 'GET') {
      const symbol = decodeURIComponent(pos[1]!);
      const p = (await broker.getPositions()).find((x) => x.symbol === symbol);
      if (!p) throw notFound('position does not exist');
      return [200, positionToAlpaca(p)];
    }
    throw notFound(`endpoint not found: ${method} ${path}`);
  }

  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          reject(new HttpError(413, { code: ALPACA_CODES.MALFORMED_BODY, message: 'request body too large' }));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://compat.invalid');
    const path = url.pathname;
    const headers = rateHeaders();
    try {
      const raw = await readBody(req);
      let body: unknown;
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new HttpError(400, { code: ALPACA_CODES.MALFORMED_BODY, message: 'request body format is invalid' });
        }
      }
      const ctx: CompatRequestContext = { method, path, query: url.searchParams, body, req, res };
      if (hooks.onRequest && (await hooks.onRequest(ctx))) return;
      if (!checkAuth(req.headers['apca-api-key-id'], req.headers['apca-api-secret-key'])) {
        throw new HttpError(401, { code: ALPACA_CODES.UNAUTHORIZED, message: 'unauthorized.' });
      }
      if (opts.enforceRateLimit && windowCount > limit) {
        throw new HttpError(429, { code: ALPACA_CODES.RATE_LIMITED, message: 'rate limit exceeded' });
      }
      let status: number;
      let responseBody: unknown;
      try {
        [status, responseBody] = await route(method, path, url.searchParams, body);
      } catch (err) {
        const http = toHttpError(err, Date.now());
        if (!http) throw err;
        status = http.status;
        responseBody = http.body;
        Object.assign(headers, http.headers);
      }
      if (hooks.onResponse && (await hooks.onResponse({ ...ctx, status, responseBody }))) return;
      write(res, status, responseBody, headers);
    } catch (err) {
      const http = toHttpError(err, Date.now());
      if (http) {
        write(res, http.status, http.body, { ...headers, ...http.headers });
        return;
      }
      log.error({ err, method, path }, 'alpaca-compat request failed');
      write(res, 500, { code: ALPACA_CODES.INTERNAL, message: 'internal server error' }, headers);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, 'alpaca-compat handler crashed');
      if (!res.headersSent) res.destroy();
    });
  });

  // ------------------------------------------------------------------------------------------
  // trade_updates stream

  const wss = new WebSocketServer({ noServer: true });
  const clients = new Set<StreamClient>();

  const frame = (msg: unknown): Buffer | string => (binary ? Buffer.from(JSON.stringify(msg)) : JSON.stringify(msg));
  const sendTo = (c: StreamClient, msg: unknown) => {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(frame(msg), { binary });
  };

  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://compat.invalid').pathname;
    if (path !== '/stream' || (hooks.onStreamConnect && !hooks.onStreamConnect())) {
      socket.write(
        `HTTP/1.1 ${path === '/stream' ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const client: StreamClient = { ws, authorized: false, listening: false };
      clients.add(client);
      ws.on('close', () => clients.delete(client));
      ws.on('error', () => clients.delete(client));
      ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[]) => {
        let msg: Record<string, unknown>;
        try {
          const text = Array.isArray(raw)
            ? Buffer.concat(raw).toString('utf8')
            : Buffer.from(raw as ArrayBuffer).toString('utf8');
          msg = JSON.parse(text) as Record<string, unknown>;
        } catch {
          sendTo(client, { stream: 'error', data: { message: 'invalid message' } });
          return;
        }
        const data = (msg.data && typeof msg.data === 'object' ? msg.data : {}) as Record<string, unknown>;
        if (msg.action === 'auth' || msg.action === 'authenticate') {
          const key = msg.action === 'auth' ? msg.key : data.key_id;
          const secret = msg.action === 'auth' ? msg.secret : data.secret_key;
          client.authorized = checkAuth(key, secret);
          sendTo(client, {
            stream: 'authorization',
            data: { action: 'authenticate', status: client.authorized ? 'authorized' : 'unauthorized' },
          });
          if (!client.authorized) ws.close();
          return;
        }
        if (msg.action === 'listen') {
          if (!client.authorized) {
            sendTo(client, { stream: 'authorization', data: { action: 'listen', status: 'unauthorized' } });
            ws.close();
            return;
          }
          const streams = Array.isArray(data.streams) ? data.streams.filter((s) => s === 'trade_updates') : [];
          client.listening = streams.length > 0;
          sendTo(client, { stream: 'listening', data: { streams } });
          if (client.listening) hooks.onStreamListening?.((m) => sendTo(client, m));
          return;
        }
        sendTo(client, { stream: 'error', data: { message: `unknown action "${String(msg.action)}"` } });
      });
    });
  });

  // Relay broker updates in order. Fills need the position after the fill (async), so updates are
  // chained: a later event never overtakes an earlier one.
  let relay: Promise<void> = Promise.resolve();
  const toMessage = async (u: OrderUpdate): Promise<AlpacaTradeUpdateMessage> => {
    const msg: AlpacaTradeUpdateMessage = {
      stream: 'trade_updates',
      data: { event: eventToAlpaca(u.event), timestamp: u.timestamp, order: orderToAlpaca(u.order) },
    };
    if (u.fill) {
      const position = (await broker.getPositions()).find((p) => p.symbol === u.order.symbol);
      msg.data.execution_id = u.fill.executionId;
      msg.data.price = toWireNumber(u.fill.price);
      msg.data.qty = toWireNumber(u.fill.qty);
      msg.data.position_qty = toWireNumber(position?.qty ?? 0);
      msg.data.timestamp = u.fill.timestamp;
      msg.data.fee = toWireNumber(u.fill.fee);
    }
    return msg;
  };
  const unsubscribe = broker.onOrderUpdate((u) => {
    remember(u.order);
    relay = relay
      .then(async () => {
        const msg = await toMessage(u);
        const out = hooks.onTradeUpdate ? hooks.onTradeUpdate(msg) : [msg];
        for (const c of clients) {
          if (!c.listening) continue;
          for (const m of out) sendTo(c, m);
        }
      })
      .catch((err: unknown) => log.error({ err, clientOrderId: u.order.clientOrderId }, 'trade_updates relay failed'));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  log.info({ host, port }, 'alpaca-compat server listening');

  return {
    host,
    port,
    url: `http://${hostForUrl}:${port}`,
    streamUrl: `ws://${hostForUrl}:${port}/stream`,
    disconnectStreams() {
      for (const c of clients) c.ws.terminate();
      clients.clear();
    },
    listeningClients() {
      return [...clients].filter((c) => c.listening).length;
    },
    async close() {
      unsubscribe();
      for (const c of clients) c.ws.terminate();
      clients.clear();
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
