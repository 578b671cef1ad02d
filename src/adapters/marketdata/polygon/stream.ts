import WebSocket from 'ws';
import type { OhlcvBar } from '../../../contracts/bar';
import { createLogger, type Logger } from '../../../logging';
import { PolygonError } from './rest';
import { aggTimestamp, WsAggSchema, WsStatusSchema } from './wire';

/**
 * Polygon.io (Massive) stocks WebSocket: connect, `{"action":"auth","params":key}`, wait for `auth_success`,
 * subscribe `AM.<T>` (minute aggregates) or `A.<T>` (second aggregates), then hand every aggregate to the
 * caller, in arrival order. `run` resolves only when aborted; a drop, an auth failure or a silent connection
 * rejects with a PolygonError so the feed's breaker can count it. The key is sent only in the auth frame and
 * never logged.
 */

export interface PolygonStreamOptions {
  url: string;
  apiKey: string;
  symbols: readonly string[];
  /** `1m` → AM, `1s` → A. */
  interval: string;
  logger?: Logger;
  /** Connect + auth + subscribe must finish within this. Default 10 000 ms. */
  connectTimeoutMs?: number;
}

export type StreamBar = OhlcvBar & { vwap?: number };

export function streamChannel(interval: string): 'AM' | 'A' {
  if (interval === '1m') return 'AM';
  if (interval === '1s') return 'A';
  throw new PolygonError('bad_response', `the WebSocket feed has 1s (A) and 1m (AM) aggregates, not ${interval}`);
}

export class PolygonStream {
  private readonly log: Logger;
  /** Aggregates received (valid shape). */
  received = 0;
  malformed = 0;

  constructor(private readonly opts: PolygonStreamOptions) {
    this.log = (opts.logger ?? createLogger('polygon')).child({ component: 'polygon-ws' });
  }

  /**
   * Stream until `signal` aborts (resolves) or the connection fails (rejects). `onReady` runs once the
   * subscription is acknowledged: the moment from which no aggregate is missed.
   */
  run(onBar: (bar: StreamBar) => void, signal: AbortSignal, onReady?: () => void): Promise<void> {
    const channel = streamChannel(this.opts.interval);
    const params = this.opts.symbols.map((s) => `${channel}.${s}`).join(',');
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return resolve();
      const ws = new WebSocket(this.opts.url, { handshakeTimeout: this.opts.connectTimeoutMs ?? 10_000 });
      let phase: 'connecting' | 'auth' | 'subscribing' | 'streaming' = 'connecting';
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        ws.removeAllListeners('message');
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => finish();
      signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () =>
          finish(new PolygonError('unavailable', `WebSocket: no subscription within the connect timeout (${phase})`)),
        this.opts.connectTimeoutMs ?? 10_000,
      );
      ws.on('error', (err) =>
        finish(new PolygonError('unavailable', `WebSocket error: ${err.message}`, undefined, { cause: err })),
      );
      ws.on('close', (code) => finish(new PolygonError('unavailable', `WebSocket closed (${code}) while ${phase}`)));
      ws.on('open', () => {
        phase = 'auth';
        ws.send(JSON.stringify({ action: 'auth', params: this.opts.apiKey }));
      });
      ws.on('message', (raw) => {
        let frame: unknown;
        try {
          frame = JSON.parse(String(raw));
        } catch {
          this.malformed++;
          return;
        }
        for (const msg of Array.isArray(frame) ? frame : [frame]) {
          const st = WsStatusSchema.safeParse(msg);
          if (st.success) {
            if (st.data.status === 'auth_success' && phase === 'auth') {
              phase = 'subscribing';
              ws.send(JSON.stringify({ action: 'subscribe', params }));
            } else if (st.data.status === 'auth_failed') {
              finish(new PolygonError('unauthorized', `WebSocket authentication failed: ${st.data.message ?? ''}`));
              return;
            } else if (st.data.status === 'success' && phase === 'subscribing') {
              phase = 'streaming';
              clearTimeout(timer);
              this.log.info({ params }, 'Polygon stream subscribed');
              onReady?.();
            } else if (st.data.status === 'max_connections' || st.data.status === 'error') {
              finish(new PolygonError('unavailable', `WebSocket status ${st.data.status}: ${st.data.message ?? ''}`));
              return;
            }
            continue;
          }
          const agg = WsAggSchema.safeParse(msg);
          if (!agg.success) {
            this.malformed++;
            continue;
          }
          const a = agg.data;
          this.received++;
          onBar({
            symbol: a.sym,
            timestamp: aggTimestamp(a.s, channel === 'AM' ? 'minute' : 'second'),
            open: a.o,
            high: a.h,
            low: a.l,
            close: a.c,
            volume: a.v,
            ...(a.vw !== undefined ? { vwap: a.vw } : {}),
          });
        }
      });
    });
  }
}
