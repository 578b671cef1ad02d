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

export const TRADE_WORKFLOW_PREFIX = 'trade-';

/** Workflow id of the one trade a signal may start. */
export function tradeWorkflowId(signalId: string): string {
  return `${TRADE_WORKFLOW_PREFIX}${signalId}`;
}

/** Alpaca caps client_order_id at 48 characters. */
export const MAX_CLIENT_ORDER_ID = 48;

/**
 * Broker idempotency key for a trade's order, derived from the workflow id so every activity retry
 * (and every worker restart) re-sends the same key and the broker refuses a second order.
 * Bracket legs get a suffix (`-tp`, `-sl`). Long ids are shortened with a hash, keeping the result unique.
 */
export function clientOrderIdFor(workflowId: string, leg: '' | 'tp' | 'sl' = ''): string {
  const suffix = leg ? `-${leg}` : '';
  const base = workflowId.length + suffix.length <= MAX_CLIENT_ORDER_ID ? workflowId : `t-${shortHash(workflowId)}`;
  return `${base}${suffix}`;
}
