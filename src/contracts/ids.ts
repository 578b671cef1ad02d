import { createHash } from 'node:crypto';

/**
 * Identifier chain (see docs/architecture.md): every id is derived, never random, so a retry,
 * a redelivery or a replay reproduces the same id and is recognised as the same thing.
 */

/** Short stable hash, url/Alpaca safe. */
export function shortHash(...parts: Array<string | number>): string {
  return createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 20);
}

/** Deterministic bar id: a re-published bar is recognisably the same bar. */
export function barMessageId(source: string, symbol: string, interval: string, barStartIso: string): string {
  return `bar-${shortHash(source, symbol, interval, barStartIso)}`;
}

/** Deterministic signal id: strategy + symbol + bar timestamp. A replayed bar cannot create a second signal. */
export function signalIdFor(strategy: string, symbol: string, barTimestampIso: string): string {
  return `sig-${shortHash(strategy, symbol, barTimestampIso)}`;
}

// Trade ids are pure so workflow code can use them too.
export {
  TRADE_WORKFLOW_PREFIX,
  MAX_CLIENT_ORDER_ID,
  MAX_SIGNAL_ID,
  tradeWorkflowId,
  clientOrderIdFor,
} from './trade-ids';
