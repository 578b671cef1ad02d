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

/**
 * Deterministic signal id: strategy + symbol + bar timestamp, within a scope (the account the signal trades for).
 * A replayed or redelivered bar cannot create a second signal in its scope, while a fresh paper account (a new
 * `npm start` run) trades the same bars again under new ids: a trade is "this strategy's signal on this bar, for
 * this account". Unscoped ids (no scope) are the original ones.
 */
export function signalIdFor(strategy: string, symbol: string, barTimestampIso: string, scope?: string): string {
  return scope === undefined
    ? `sig-${shortHash(strategy, symbol, barTimestampIso)}`
    : `sig-${shortHash(scope, strategy, symbol, barTimestampIso)}`;
}

// Trade ids are pure so workflow code can use them too.
export {
  TRADE_WORKFLOW_PREFIX,
  MAX_CLIENT_ORDER_ID,
  MAX_SIGNAL_ID,
  tradeWorkflowId,
  clientOrderIdFor,
} from './trade-ids';
