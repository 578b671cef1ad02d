import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { OrderUpdate } from '../../contracts/order';
import type { Logger } from '../../logging';
import type { Broker } from '../../adapters/brokers/broker';
import { toWireNumber, type AlpacaTradeUpdateMessage } from '../../adapters/brokers/alpaca/wire';
import { streamAuthCredentials, type CredentialCheck } from './auth';
import type { AlpacaCompatHooks } from './hooks';
import { eventToAlpaca, orderToAlpaca } from './wire';

interface StreamClient {
  ws: WebSocket;
  authorized: boolean;
  listening: boolean;
}

export interface TradeUpdatesStreamOptions {
  server: Server;
  broker: Broker;
  hooks: AlpacaCompatHooks;
  checkCredentials: CredentialCheck;
  /** Binary frames, like Alpaca's paper endpoint; text frames otherwise. */
  binary: boolean;
  log: Logger;
}

/** Alpaca's trade_updates WebSocket on `/stream` of the compat server. */
export interface TradeUpdatesStream {
  /** Relay one broker update to every listening client (in order: see `publish`'s chain). */
  publish(u: OrderUpdate): void;
  /** Terminate every connection (clients see an abnormal close). */
  disconnectAll(): void;
  listeningClients(): number;
  close(): void;
}

/**
 * Alpaca's protocol: connect to /stream, authenticate (`auth` or `authenticate`), then `listen` to
 * `trade_updates`. An unauthorised client is told so and disconnected; only listening clients get updates.
 */
export function attachTradeUpdatesStream(opts: TradeUpdatesStreamOptions): TradeUpdatesStream {
  const { server, broker, hooks, binary, log } = opts;
  const wss = new WebSocketServer({ noServer: true });
  const clients = new Set<StreamClient>();

  const frame = (msg: unknown): Buffer | string => (binary ? Buffer.from(JSON.stringify(msg)) : JSON.stringify(msg));
  const sendTo = (c: StreamClient, msg: unknown) => {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(frame(msg), { binary });
  };

  const onMessage = (client: StreamClient, raw: Buffer | ArrayBuffer | Buffer[]) => {
    const { ws } = client;
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
    const credentials = streamAuthCredentials(msg, data);
    if (credentials) {
      client.authorized = opts.checkCredentials(credentials.key, credentials.secret);
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
      ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[]) => onMessage(client, raw));
    });
  });

  /** A broker update as Alpaca's trade_updates message; a fill carries its own qty/price/fee and the position after it. */
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

  // Relay broker updates in order. Fills need the position after the fill (async), so updates are
  // chained: a later event never overtakes an earlier one.
  let relay: Promise<void> = Promise.resolve();

  const disconnectAll = () => {
    for (const c of clients) c.ws.terminate();
    clients.clear();
  };

  return {
    publish(u) {
      relay = relay
        .then(async () => {
          const msg = await toMessage(u);
          const out = hooks.onTradeUpdate ? hooks.onTradeUpdate(msg) : [msg];
          for (const c of clients) {
            if (!c.listening) continue;
            for (const m of out) sendTo(c, m);
          }
        })
        .catch((err: unknown) =>
          log.error({ err, clientOrderId: u.order.clientOrderId }, 'trade_updates relay failed'),
        );
    },
    disconnectAll,
    listeningClients: () => [...clients].filter((c) => c.listening).length,
    close() {
      disconnectAll();
      wss.close();
    },
  };
}
