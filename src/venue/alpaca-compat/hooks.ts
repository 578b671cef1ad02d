import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AlpacaTradeUpdateMessage } from '../../adapters/brokers/alpaca/wire';

/** One REST request as the compat server sees it, before routing. */
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

/** The same request after the broker acted, with the answer about to be written. */
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
