import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type Logger } from '../../logging';
import type { Broker } from '../../adapters/brokers/broker';
import { ALPACA_CODES } from '../../adapters/brokers/alpaca/wire';
import { credentialCheck, restRequestAuthorized } from './auth';
import type { AlpacaCompatHooks, CompatRequestContext } from './hooks';
import { HttpError, parseJsonBody, readBody, toHttpError, writeJson } from './http';
import { RateLimitWindow } from './rate-limit';
import { OrderIdIndex, compatRoutes } from './routes';
import { attachTradeUpdatesStream } from './stream';

/**
 * An Alpaca Trading API v2 compatible server in front of any `Broker`: the REST endpoints the
 * AlpacaBroker adapter uses and the trade_updates WebSocket, in Alpaca's wire format (numbers as
 * strings, `{"code","message"}` error bodies, X-Ratelimit-* headers, binary stream frames).
 *
 * Production use: the simulated venue process hosts a SimulatedBroker behind it, so BROKER=simulated
 * runs the very adapter that talks to Alpaca (and the venue's order book survives worker crashes).
 * Test use: the fake Alpaca wraps an in-memory engine and injects faults through `hooks`.
 *
 * This file is the request pipeline and the composition; the parts are: auth.ts (who may talk),
 * rate-limit.ts (the X-Ratelimit window), routes.ts (the REST endpoints), stream.ts (trade_updates),
 * http.ts (Alpaca's error bodies and statuses), wire.ts (the server half of the wire mapping).
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

export async function startAlpacaCompatServer(opts: AlpacaCompatServerOptions): Promise<AlpacaCompatServer> {
  const { broker, hooks = {} } = opts;
  const host = opts.host ?? '127.0.0.1';
  const log = (opts.logger ?? createLogger('alpaca-compat')).child({ component: 'alpaca-compat' });
  const checkCredentials = credentialCheck(opts.apiKey, opts.apiSecret);
  const rateLimit = new RateLimitWindow(opts.rateLimitPerMinute ?? 200, opts.enforceRateLimit ?? false);
  const orderIds = new OrderIdIndex();
  const route = compatRoutes(broker, orderIds);

  /** Count → body → hook → auth → budget → route → (Broker error → Alpaca error) → hook → write. */
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://compat.invalid');
    const path = url.pathname;
    const headers = rateLimit.admit(Date.now());
    try {
      const body = parseJsonBody(await readBody(req));
      const ctx: CompatRequestContext = { method, path, query: url.searchParams, body, req, res };
      if (hooks.onRequest && (await hooks.onRequest(ctx))) return;
      if (!restRequestAuthorized(checkCredentials, req)) {
        throw new HttpError(401, { code: ALPACA_CODES.UNAUTHORIZED, message: 'unauthorized.' });
      }
      if (rateLimit.exceeded()) {
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
      writeJson(res, status, responseBody, headers);
    } catch (err) {
      const http = toHttpError(err, Date.now());
      if (http) {
        writeJson(res, http.status, http.body, { ...headers, ...http.headers });
        return;
      }
      log.error({ err, method, path }, 'alpaca-compat request failed');
      writeJson(res, 500, { code: ALPACA_CODES.INTERNAL, message: 'internal server error' }, headers);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, 'alpaca-compat handler crashed');
      if (!res.headersSent) res.destroy();
    });
  });

  const stream = attachTradeUpdatesStream({
    server,
    broker,
    hooks,
    checkCredentials,
    binary: opts.binaryFrames ?? true,
    log,
  });
  const unsubscribe = broker.onOrderUpdate((u) => {
    orderIds.remember(u.order);
    stream.publish(u);
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
    disconnectStreams: () => stream.disconnectAll(),
    listeningClients: () => stream.listeningClients(),
    async close() {
      unsubscribe();
      stream.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
