import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { readBarsCsvSync } from '../../src/adapters/marketdata/csv';
import { nyMidnightMs } from '../../src/adapters/marketdata/polygon/wire';
import type { OhlcvBar } from '../../src/contracts/bar';
import { sleep } from '../../src/lib/sleep';

/**
 * A fake of Polygon.io (Massive) for tests, serving the real recorded bars (../shared/data CSVs) over the real
 * wire contracts (../shared/reference/trading-apis-and-peers.md §3):
 *
 * REST `GET /v2/aggs/ticker/{T}/range/{multiplier}/{timespan}/{from}/{to}?adjusted&sort&limit`
 *   - auth by `Authorization: Bearer <key>` or `?apiKey=`; missing → 401 `{"status":"ERROR","error":"API Key was
 *     not provided"}`, wrong → 401 `Unknown API Key`;
 *   - `results[{o,h,l,c,v,vw,n,t}]` with `t` the window start in ms (daily: midnight New York); `results` absent
 *     for an empty range; `next_url` (absolute, with a `cursor`) when a page is full;
 *   - a rate limit of its own (N requests per window) answering 429 with `Retry-After`.
 * WebSocket `/stocks`: `connected` status, `{"action":"auth","params":key}` → `auth_success`/`auth_failed`,
 *   `{"action":"subscribe","params":"AM.NVDA,A.ORCL"}` → `subscribed to: …`; the test pushes aggregates
 *   (`AM`/`A` with `s`/`e` window start/end) with `pushAggregates`.
 *
 * Faults (each for the next `count` REST requests): 401, 403, 429 (with reset), 500/502/503, slow (the
 * response is held `slowMs`), drop (the TCP connection is destroyed before any response), malformed (some rows
 * broken: a missing field, a string price, high < low). `dropWebSockets()` kills every stream connection.
 */

export type RestFault = '401' | '403' | '429' | '500' | '502' | '503' | 'slow' | 'drop' | 'malformed';

export interface FakePolygonOptions {
  apiKey: string;
  /** ticker → CSV path (daily or minute layout). */
  files: Record<string, string>;
  /** Rows per page at most (the client's `limit` may make it smaller). Default 5000. */
  pageSize?: number;
  /** The fake's own rate limit: requests per window. Default: none. */
  rateLimit?: { requests: number; windowMs: number };
  /** Retry-After sent with an injected 429, seconds. Default 1. */
  retryAfterSec?: number;
  slowMs?: number;
}

interface Request {
  at: number;
  path: string;
  status: number;
  auth: 'bearer' | 'query' | 'none';
}

export class FakePolygon {
  readonly requests: Request[] = [];
  readonly wsMessages: unknown[] = [];
  private readonly data = new Map<string, OhlcvBar[]>();
  /** Window start (ms) of each served bar: daily bars start at midnight New York time, as Polygon's do. */
  private readonly startMs = new Map<OhlcvBar, number>();
  private readonly faults: Array<{ fault: RestFault; left: number }> = [];
  private readonly sockets = new Set<Socket>();
  private readonly clients = new Set<{ ws: WebSocket; authed: boolean; subs: Set<string> }>();
  private server!: http.Server;
  private wss!: WebSocketServer;
  private rateStarts: number[] = [];
  /** After a 429: requests before this instant are answered 429 again and counted as violations. */
  private blockedUntil = 0;
  /** Requests that came in before a 429's announced reset (a client that ignores Retry-After). */
  rateLimitViolations = 0;
  url = '';
  wsUrl = '';
  /** While true, every stream connection is dropped as soon as it opens (the feed is down). */
  streamsDown = false;
  /** Live mode per ticker: only bars before this index have "happened" (REST serves no later ones). */
  private readonly cursor = new Map<string, number>();

  constructor(private readonly opts: FakePolygonOptions) {
    for (const [ticker, file] of Object.entries(opts.files)) {
      const bars = readBarsCsvSync(file, { symbol: ticker });
      const daily = bars.length > 1 && bars.every((b) => b.timestamp.endsWith('T00:00:00.000Z'));
      for (const b of bars)
        this.startMs.set(b, daily ? nyMidnightMs(b.timestamp.slice(0, 10)) : Date.parse(b.timestamp));
      this.data.set(ticker, bars);
    }
  }

  static async start(opts: FakePolygonOptions): Promise<FakePolygon> {
    const f = new FakePolygon(opts);
    await f.listen();
    return f;
  }

  /** The next `count` REST requests get `fault`. */
  inject(fault: RestFault, count = 1): void {
    this.faults.push({ fault, left: count });
  }

  /** Bars of a ticker as served. */
  bars(ticker: string): OhlcvBar[] {
    return this.data.get(ticker) ?? [];
  }

  /** Number of WebSocket clients currently authenticated. */
  get streamClients(): number {
    return [...this.clients].filter((c) => c.authed).length;
  }

  /** Push aggregates to every subscribed client: one frame (JSON array) per call. */
  pushAggregates(ev: 'AM' | 'A', ticker: string, bars: readonly OhlcvBar[], windowMs = 60_000): number {
    const frame = bars.map((b) => {
      const s = Date.parse(b.timestamp);
      return {
        ev,
        sym: ticker,
        v: b.volume,
        av: b.volume,
        op: b.open,
        vw: (b.high + b.low + b.close) / 3,
        o: b.open,
        c: b.close,
        h: b.high,
        l: b.low,
        a: b.close,
        z: 100,
        s,
        e: s + windowMs,
      };
    });
    let sent = 0;
    for (const c of this.clients) {
      if (c.authed && (c.subs.has(`${ev}.${ticker}`) || c.subs.has(`${ev}.*`))) {
        c.ws.send(JSON.stringify(frame));
        sent++;
      }
    }
    return sent;
  }

  /** Live mode: the first `index` bars of `ticker` have happened; REST serves no later ones. */
  startLive(ticker: string, index: number): void {
    this.cursor.set(ticker, index);
  }

  /**
   * The next `n` bars of a live ticker happen: REST serves them from now on, and subscribed stream clients get
   * them as aggregates (`AM` for minute data). Returns them.
   */
  advance(ticker: string, n: number, ev: 'AM' | 'A' = 'AM'): OhlcvBar[] {
    const from = this.cursor.get(ticker) ?? 0;
    const bars = this.bars(ticker).slice(from, from + n);
    this.cursor.set(ticker, from + bars.length);
    for (const b of bars) this.pushAggregates(ev, ticker, [b], ev === 'AM' ? 60_000 : 1000);
    return bars;
  }

  /** Kill every stream connection abruptly (no close frame). */
  dropWebSockets(): void {
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
  }

  async close(): Promise<void> {
    this.dropWebSockets();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.wss.close(() => r()));
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async listen(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.wss = new WebSocketServer({ server: this.server, path: '/stocks' });
    this.wss.on('connection', (ws) => this.onStream(ws));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/stocks`;
  }

  private takeFault(): RestFault | undefined {
    const f = this.faults[0];
    if (!f) return undefined;
    f.left--;
    if (f.left <= 0) this.faults.shift();
    return f.fault;
  }

  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const requestId = randomBytes(8).toString('hex');
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const key = bearer ?? url.searchParams.get('apiKey') ?? undefined;
    const rec: Request = {
      at: Date.now(),
      path: url.pathname,
      status: 0,
      auth: bearer ? 'bearer' : key ? 'query' : 'none',
    };
    this.requests.push(rec);
    const reply = (status: number, body: unknown, headers?: Record<string, string>) => {
      rec.status = status;
      this.send(res, status, body, headers);
    };
    if (!key) return reply(401, { status: 'ERROR', request_id: requestId, error: 'API Key was not provided' });
    if (key !== this.opts.apiKey)
      return reply(401, { status: 'ERROR', request_id: requestId, error: 'Unknown API Key' });

    if (Date.now() < this.blockedUntil) {
      this.rateLimitViolations++;
      const retry = Math.ceil((this.blockedUntil - Date.now()) / 1000);
      return reply(
        429,
        { status: 'ERROR', request_id: requestId, error: 'exceeded the maximum requests per minute' },
        { 'retry-after': String(Math.max(1, retry)) },
      );
    }
    if (this.opts.rateLimit) {
      const now = Date.now();
      this.rateStarts = this.rateStarts.filter((t) => t > now - this.opts.rateLimit!.windowMs);
      if (this.rateStarts.length >= this.opts.rateLimit.requests) {
        this.rateLimitViolations++;
        const retry = Math.ceil((this.rateStarts[0]! + this.opts.rateLimit.windowMs - now) / 1000);
        return reply(
          429,
          { status: 'ERROR', request_id: requestId, error: 'exceeded the maximum requests per minute' },
          {
            'retry-after': String(Math.max(1, retry)),
          },
        );
      }
      this.rateStarts.push(now);
    }

    const fault = this.takeFault();
    switch (fault) {
      case 'drop':
        rec.status = -1;
        req.socket.destroy();
        return;
      case '401':
        return reply(401, { status: 'ERROR', request_id: requestId, error: 'Unknown API Key' });
      case '403':
        return reply(403, {
          status: 'NOT_AUTHORIZED',
          request_id: requestId,
          message: 'You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing',
        });
      case '429':
        this.blockedUntil = Date.now() + (this.opts.retryAfterSec ?? 1) * 1000;
        return reply(
          429,
          { status: 'ERROR', request_id: requestId, error: 'exceeded the maximum requests per minute' },
          {
            'retry-after': String(this.opts.retryAfterSec ?? 1),
          },
        );
      case '500':
      case '502':
      case '503':
        return reply(Number(fault), { status: 'ERROR', request_id: requestId, error: 'Unexpected error' });
      case 'slow':
        await sleep(this.opts.slowMs ?? 2000);
        break;
      default:
        break;
    }

    const m = /^\/v2\/aggs\/ticker\/([^/]+)\/range\/(\d+)\/([a-z]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (!m)
      return reply(404, {
        status: 'NOT_FOUND',
        request_id: requestId,
        message: 'The specified resource was not found',
      });
    const [, tickerEnc, mult, span, fromRaw, toRaw] = m as unknown as [string, string, string, string, string, string];
    const ticker = decodeURIComponent(tickerEnc);
    if (mult !== '1' || !['day', 'minute'].includes(span)) {
      return reply(400, {
        status: 'ERROR',
        request_id: requestId,
        error: `fake serves 1/day and 1/minute, not ${mult}/${span}`,
      });
    }
    const adjusted = url.searchParams.get('adjusted') !== 'false';
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 5000) || 5000, 50_000, this.opts.pageSize ?? 5000);
    const toMs = (v: string, end: boolean) =>
      /^\d+$/.test(v)
        ? Number(v)
        : span === 'day'
          ? nyMidnightMs(v)
          : Date.parse(`${v}T00:00:00Z`) + (end ? 86_399_999 : 0);
    const from = toMs(fromRaw, false);
    const to = toMs(toRaw, true);
    const tOf = (b: OhlcvBar) => this.startMs.get(b)!;
    const live = this.cursor.get(ticker);
    const happened = live === undefined ? this.bars(ticker) : this.bars(ticker).slice(0, live);
    const all = happened.filter((b) => {
      const t = tOf(b);
      return t >= from && t <= to;
    });
    const page = all.slice(0, limit);
    const results: unknown[] = page.map((b) => ({
      v: b.volume,
      vw: Number(((b.high + b.low + b.close) / 3).toFixed(4)),
      o: b.open,
      c: b.close,
      h: b.high,
      l: b.low,
      t: tOf(b),
      n: 1000,
    }));
    if (fault === 'malformed' && results.length >= 3) {
      delete (results[0] as Record<string, unknown>).c; // missing field
      (results[1] as Record<string, unknown>).o = 'n/a'; // wrong type
      const r2 = results[2] as Record<string, number>;
      [r2.h, r2.l] = [r2.l! * 0.9, r2.h! * 1.1]; // high < low: shaped right, impossible
    }
    const body: Record<string, unknown> = {
      ticker,
      queryCount: page.length,
      resultsCount: page.length,
      adjusted,
      status: 'OK',
      request_id: requestId,
    };
    if (results.length) body.results = results;
    if (all.length > page.length) {
      const nextFrom = tOf(all[page.length]!);
      const cursor = Buffer.from(`limit=${limit}&sort=asc`).toString('base64url');
      body.next_url = `${this.url}/v2/aggs/ticker/${tickerEnc}/range/${mult}/${span}/${nextFrom}/${toRaw}?cursor=${cursor}&adjusted=${adjusted}&limit=${limit}`;
    }
    reply(200, body);
  }

  private onStream(ws: WebSocket): void {
    if (this.streamsDown) {
      ws.terminate();
      return;
    }
    const client = { ws, authed: false, subs: new Set<string>() };
    this.clients.add(client);
    ws.on('close', () => this.clients.delete(client));
    ws.send(JSON.stringify([{ ev: 'status', status: 'connected', message: 'Connected Successfully' }]));
    ws.on('message', (raw) => {
      let msg: { action?: string; params?: string };
      try {
        msg = JSON.parse(String(raw)) as { action?: string; params?: string };
      } catch {
        return;
      }
      this.wsMessages.push(msg.action === 'auth' ? { action: 'auth', params: '[key]' } : msg);
      if (msg.action === 'auth') {
        if (msg.params === this.opts.apiKey) {
          client.authed = true;
          ws.send(JSON.stringify([{ ev: 'status', status: 'auth_success', message: 'authenticated' }]));
        } else {
          ws.send(JSON.stringify([{ ev: 'status', status: 'auth_failed', message: 'authentication failed' }]));
          ws.close(1008, 'authentication failed');
        }
        return;
      }
      if (!client.authed) {
        ws.send(JSON.stringify([{ ev: 'status', status: 'error', message: 'not authorized' }]));
        return;
      }
      const params = (msg.params ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (msg.action === 'subscribe') {
        for (const p of params) client.subs.add(p);
        ws.send(
          JSON.stringify(params.map((p) => ({ ev: 'status', status: 'success', message: `subscribed to: ${p}` }))),
        );
      } else if (msg.action === 'unsubscribe') {
        for (const p of params) client.subs.delete(p);
        ws.send(
          JSON.stringify(params.map((p) => ({ ev: 'status', status: 'success', message: `unsubscribed to: ${p}` }))),
        );
      }
    });
  }
}

/** The shared data folder's file of a ticker (nvda-1999-2014.csv …). */
export function sharedDataFile(root: string, ticker: string): string {
  const name = { NVDA: 'nvda-1999-2014.csv', ORCL: 'orcl-1995-2014.csv' }[ticker];
  if (!name) throw new Error(`no shared data for ${ticker}`);
  return `${root}/${name}`;
}
