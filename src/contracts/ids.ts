import * as crypto from 'node:crypto';
import * as sha256Module from './sha256';
import type { JoinedIdPrefix } from './sha256';

// Bound once, at load: run under tsx (as the workers and benchmarks are), an ES module is compiled to CommonJS whose
// exports are getters, and a call through an import binding reads two of them each time, which V8 does not inline
// (esbuild's shared getter does a megamorphic `from[key]`). joinedId runs per id (docs/quant.md).
const { joinedId, JoinedIdPrefix: JoinedIdPrefixClass } = sha256Module;

/**
 * Identifier chain (see docs/architecture.md): every id is derived, never random, so a retry,
 * a redelivery or a replay reproduces the same id and is recognised as the same thing.
 */

// crypto.hash is the one-shot form of createHash (Node >= 20.12, our engines say >= 20.19): the same SHA-256, a
// third of the cost on short inputs (~0.3 µs instead of ~1.1 µs), which matters with a signal id per signal and a
// message id per bar. The fallback keeps an older runtime working; the digest is identical either way.
const sha256Hex: (data: string) => string =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'hex')
    : (data) => crypto.createHash('sha256').update(data).digest('hex');

/** Short stable hash, url/Alpaca safe: the first 20 hex digits of SHA-256 of the parts joined by '|'. */
export function shortHash(...parts: Array<string | number>): string {
  return sha256Hex(parts.join('|')).slice(0, 20);
}

/**
 * Deterministic bar id: a re-published bar is recognisably the same bar. `bar-` and shortHash(source, symbol,
 * interval, barStartIso), hashed part by part like signalIdFor: one flat string (the concatenation of `bar-` and a
 * slice of a 64-digit digest was a rope over a slice, one more indirection for every reader of the id).
 */
export function barMessageId(source: string, symbol: string, interval: string, barStartIso: string): string {
  return (
    joinedId('bar-', source, symbol, interval, barStartIso) ?? `bar-${shortHash(source, symbol, interval, barStartIso)}`
  );
}

/**
 * Deterministic signal id: strategy + symbol + bar timestamp, within a scope (the account the signal trades for).
 * A replayed or redelivered bar cannot create a second signal in its scope, while a fresh paper account (a new
 * `npm start` run) trades the same bars again under new ids: a trade is "this strategy's signal on this bar, for
 * this account". Unscoped ids (no scope) are the original ones.
 */
export function signalIdFor(strategy: string, symbol: string, barTimestampIso: string, scope?: string): string {
  // SHA-256 of the same text as shortHash's, written part by part into the JavaScript SHA-256 (./sha256: no joined
  // string, no native call, no 64-digit digest to slice; one id per signal); node:crypto for non-ASCII text.
  const id = joinedId('sig-', scope, strategy, symbol, barTimestampIso);
  if (id !== undefined) return id;
  const data =
    scope === undefined
      ? `${strategy}|${symbol}|${barTimestampIso}`
      : `${scope}|${strategy}|${symbol}|${barTimestampIso}`;
  return `sig-${sha256Hex(data).slice(0, 20)}`;
}

/**
 * The fixed part of one strategy's signal ids on one symbol within a scope: `signalIdWith(prefix, timestamp)` is
 * signalIdFor(strategy, symbol, timestamp, scope) without writing the scope, strategy and symbol into SHA-256's
 * block again for every signal (the quant keeps one per series and strategy; ./sha256.ts, JoinedIdPrefix).
 */
export class SignalIdPrefix {
  private readonly fixed: JoinedIdPrefix;

  constructor(
    readonly strategy: string,
    readonly symbol: string,
    readonly scope?: string,
  ) {
    this.fixed = new JoinedIdPrefixClass('sig-', scope, strategy, symbol);
  }

  /** signalIdFor(strategy, symbol, barTimestampIso, scope): the same id. */
  idFor(barTimestampIso: string): string {
    return this.fixed.idFor(barTimestampIso) ?? signalIdFor(this.strategy, this.symbol, barTimestampIso, this.scope);
  }
}

// Trade ids are pure so workflow code can use them too.
export {
  TRADE_WORKFLOW_PREFIX,
  MAX_CLIENT_ORDER_ID,
  MAX_SIGNAL_ID,
  tradeWorkflowId,
  clientOrderIdFor,
} from './trade-ids';
