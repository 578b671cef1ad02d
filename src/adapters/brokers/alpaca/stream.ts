import WebSocket from 'ws';
import type { Logger } from '../../../logging';
import { backoffDelay } from '../../../lib/backoff';

/**
 * Alpaca trade_updates WebSocket: connect → {"action":"auth"} → authorized → {"action":"listen"} →
 * listening → trade_updates messages. Reconnects forever with capped exponential backoff and jitter,
 * re-authenticating every time. Frames may be text or binary (the paper endpoint sends binary).
 *
 * The stream is an optimisation, not the source of truth: AlpacaBroker polls while it is not
 * `listening`, so a lost connection delays fills but never loses them.
 */

export type StreamState = 'idle' | 'connecting' | 'listening' | 'down' | 'closed';

export interface TradeUpdatesStreamOptions {
  url: string;
  keyId: string;
  secretKey: string;
  logger: Logger;
  onTradeUpdate: (data: unknown) => void;
  onStateChange?: (state: StreamState) => void;
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /** Max time from connect to `listening` before the attempt is abandoned. */
  handshakeTimeoutMs?: number;
  /** Ping interval; a connection that misses a pong for one interval is considered dead. 0 = off. */
  heartbeatMs?: number;
  random?: () => number;
}

/** Stream URL from the REST base URL: https://paper-api.alpaca.markets → wss://paper-api.alpaca.markets/stream. */
export function streamUrlFor(baseUrl: string): string {
  const u = new URL(baseUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/stream`;
  u.search = '';
  return u.toString();
}

export class TradeUpdatesStream {
  private ws: WebSocket | undefined;
  private stateValue: StreamState = 'idle';
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly handshakeMs: number;
  private readonly heartbeatMs: number;

  constructor(private readonly opts: TradeUpdatesStreamOptions) {
    this.initialMs = opts.reconnectInitialMs ?? 500;
    this.maxMs = opts.reconnectMaxMs ?? 30_000;
    this.handshakeMs = opts.handshakeTimeoutMs ?? 10_000;
    this.heartbeatMs = opts.heartbeatMs ?? 20_000;
  }

  get state(): StreamState {
    return this.stateValue;
  }

  start(): void {
    if (this.stopped || this.stateValue !== 'idle') return;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    this.ws = undefined;
    this.setState('closed');
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          ws.terminate();
          resolve();
        }, 1_000);
        t.unref();
        ws.once('close', () => {
          clearTimeout(t);
          resolve();
        });
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close();
      });
    }
  }

  private setState(s: StreamState): void {
    if (this.stateValue === s) return;
    this.stateValue = s;
    try {
      this.opts.onStateChange?.(s);
    } catch (err) {
      this.opts.logger.error({ err }, 'trade_updates state listener threw');
    }
  }

  private clearTimers(): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.handshakeTimer = undefined;
    this.heartbeatTimer = undefined;
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState('connecting');
    const ws = new WebSocket(this.opts.url, { handshakeTimeout: this.handshakeMs });
    this.ws = ws;
    this.handshakeTimer = setTimeout(() => {
      this.opts.logger.warn('trade_updates handshake timed out');
      ws.terminate();
    }, this.handshakeMs);
    this.handshakeTimer.unref();

    ws.on('open', () => {
      // Credentials go in the first message only; never logged.
      ws.send(JSON.stringify({ action: 'auth', key: this.opts.keyId, secret: this.opts.secretKey }));
    });
    ws.on('message', (raw: WebSocket.RawData) => this.onMessage(ws, raw));
    ws.on('pong', () => {
      (ws as WebSocket & { alive?: boolean }).alive = true;
    });
    ws.on('error', (err) => {
      this.opts.logger.warn({ err: { message: err.message } }, 'trade_updates socket error');
    });
    ws.on('unexpected-response', (_req, res) => {
      this.opts.logger.warn({ status: res.statusCode }, 'trade_updates upgrade refused');
      ws.terminate();
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.clearTimers();
      this.ws = undefined;
      if (this.stopped) return;
      this.setState('down');
      const delay = backoffDelay(this.attempt++, this.initialMs, this.maxMs, this.opts.random);
      this.opts.logger.warn(
        { code, reconnectInMs: delay, attempt: this.attempt },
        'trade_updates stream down; polling covers open orders',
      );
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
      this.reconnectTimer.unref();
    });
  }

  private onMessage(ws: WebSocket, raw: WebSocket.RawData): void {
    const buf = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw as ArrayBuffer);
    let msgs: unknown;
    try {
      msgs = JSON.parse(buf.toString('utf8'));
    } catch {
      this.opts.logger.warn({ bytes: buf.length }, 'trade_updates: unparseable frame ignored');
      return;
    }
    for (const msg of Array.isArray(msgs) ? msgs : [msgs]) {
      if (!msg || typeof msg !== 'object') continue;
      const { stream, data } = msg as { stream?: unknown; data?: unknown };
      const d = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>;
      if (stream === 'authorization') {
        if (d.status === 'authorized') {
          ws.send(JSON.stringify({ action: 'listen', data: { streams: ['trade_updates'] } }));
        } else {
          this.opts.logger.error(
            { status: d.status, message: d.message },
            'trade_updates authorization refused (check broker keys)',
          );
          ws.close();
        }
      } else if (stream === 'listening') {
        const streams = Array.isArray(d.streams) ? d.streams : [];
        if (!streams.includes('trade_updates')) {
          this.opts.logger.error({ streams }, 'trade_updates not granted by the server');
          ws.close();
          continue;
        }
        if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
        this.handshakeTimer = undefined;
        this.attempt = 0;
        this.startHeartbeat(ws);
        this.opts.logger.info('trade_updates stream listening');
        this.setState('listening');
      } else if (stream === 'trade_updates') {
        try {
          this.opts.onTradeUpdate(data);
        } catch (err) {
          this.opts.logger.error({ err }, 'trade_updates handler threw');
        }
      }
    }
  }

  private startHeartbeat(ws: WebSocket): void {
    if (!this.heartbeatMs) return;
    const w = ws as WebSocket & { alive?: boolean };
    w.alive = true;
    this.heartbeatTimer = setInterval(() => {
      if (!w.alive) {
        // Half-open TCP: no close frame will ever come; terminate so reconnect + polling take over.
        this.opts.logger.warn('trade_updates heartbeat missed; reconnecting');
        ws.terminate();
        return;
      }
      w.alive = false;
      ws.ping();
    }, this.heartbeatMs);
    this.heartbeatTimer.unref();
  }
}
