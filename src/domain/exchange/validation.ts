import type { OhlcvBar } from '../../contracts/bar';
import type { OrderRequest } from '../../contracts/order';
import { MAX_CLIENT_ORDER_ID } from '../../contracts/trade-ids';
import { DEFAULT_EXCHANGE_OPTIONS, type ResolvedExchangeOptions, type SimulatedExchangeOptions } from './types';

/**
 * What the exchange accepts as input, checked before it touches any state: its options (a bad option is a
 * programming or configuration error: RangeError at construction), order requests (a malformed request is the
 * client's error: an `invalid_order` rejection with the reason) and bars (a malformed bar would corrupt the
 * matching: RangeError). Runtime-safe for values parsed from JSON, whatever their static type says.
 *
 * Checks that depend on the venue's state (symbol known, halted, market data, funds) are the exchange's
 * (simulated-exchange.ts, account.ts), not validation.
 */

/** Alpaca's client_order_id limit (the same cap our own ids are built to: contracts/trade-ids.ts). */
export const MAX_CLIENT_ORDER_ID_LENGTH = MAX_CLIENT_ORDER_ID;

const ORDER_TYPES: ReadonlySet<string> = new Set(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']);
const TIFS: ReadonlySet<string> = new Set(['day', 'gtc', 'ioc', 'fok']);

/** Options with their defaults, validated and frozen. */
export function resolveExchangeOptions(options: SimulatedExchangeOptions): ResolvedExchangeOptions {
  const o: ResolvedExchangeOptions = { ...DEFAULT_EXCHANGE_OPTIONS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  assertOption(o.startingCash >= 0 && Number.isFinite(o.startingCash), 'startingCash must be a finite number >= 0');
  assertOption(o.slippageBps >= 0 && o.slippageBps <= 1000, 'slippageBps must be in [0, 1000]');
  assertOption(o.slippageJitterBps >= 0 && o.slippageJitterBps <= 1000, 'slippageJitterBps must be in [0, 1000]');
  assertOption(o.feePerShare >= 0 && Number.isFinite(o.feePerShare), 'feePerShare must be >= 0');
  assertOption(o.feeBps >= 0 && o.feeBps <= 1000, 'feeBps must be in [0, 1000]');
  assertOption(o.maxVolumePct > 0 && o.maxVolumePct <= 1, 'maxVolumePct must be in (0, 1]');
  assertOption(Number.isInteger(o.latencyBars) && o.latencyBars >= 1, 'latencyBars must be an integer >= 1');
  assertOption(
    o.limitTouchFillProbability >= 0 && o.limitTouchFillProbability <= 1,
    'limitTouchFillProbability must be in [0, 1]',
  );
  assertOption(o.marketOrderBufferPct >= 0 && o.marketOrderBufferPct < 1, 'marketOrderBufferPct must be in [0, 1)');
  assertOption(o.barPeriod === 'daily' || o.barPeriod === 'intraday', "barPeriod must be 'daily' or 'intraday'");
  assertOption(o.orderIdPrefix.length > 0, 'orderIdPrefix must not be empty');
  o.symbols = [...o.symbols];
  return Object.freeze(o);
}

function assertOption(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(`SimulatedExchange: ${message}`);
}

const isPositivePrice = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0;

/** Shape validation of an order request (runtime-safe for requests parsed from JSON). null when valid. */
export function validateRequest(req: OrderRequest): string | null {
  if (req === null || typeof req !== 'object') return 'order request must be an object';
  if (typeof req.clientOrderId !== 'string' || req.clientOrderId === '') return 'client_order_id is required';
  if (req.clientOrderId.length > MAX_CLIENT_ORDER_ID_LENGTH) {
    return `client_order_id must be at most ${MAX_CLIENT_ORDER_ID_LENGTH} characters`;
  }
  if (typeof req.symbol !== 'string' || req.symbol === '') return 'symbol is required';
  if (req.side !== 'buy' && req.side !== 'sell') return `side must be buy or sell, got ${String(req.side)}`;
  if (!ORDER_TYPES.has(req.type)) return `unsupported order type ${String(req.type)}`;
  if (!TIFS.has(req.timeInForce)) return `unsupported time_in_force ${String(req.timeInForce)}`;
  if (typeof req.qty !== 'number' || !Number.isInteger(req.qty) || req.qty <= 0) {
    return `qty must be a positive whole number of shares, got ${String(req.qty)}`;
  }
  if ((req.type === 'limit' || req.type === 'stop_limit') && !isPositivePrice(req.limitPrice)) {
    return `limit_price is required for ${req.type} orders and must be > 0`;
  }
  if ((req.type === 'stop' || req.type === 'stop_limit') && !isPositivePrice(req.stopPrice)) {
    return `stop_price is required for ${req.type} orders and must be > 0`;
  }
  if (req.type === 'trailing_stop') {
    const hasPrice = req.trailPrice !== undefined;
    const hasPct = req.trailPercent !== undefined;
    if (hasPrice === hasPct) return 'trailing_stop needs exactly one of trail_price or trail_percent';
    if (hasPrice && !isPositivePrice(req.trailPrice)) return 'trail_price must be > 0';
    if (hasPct && !(isPositivePrice(req.trailPercent) && req.trailPercent < 100))
      return 'trail_percent must be in (0, 100)';
  }
  if ((req.timeInForce === 'ioc' || req.timeInForce === 'fok') && req.type !== 'market' && req.type !== 'limit') {
    return `time_in_force ${req.timeInForce} is only accepted for market and limit orders`;
  }
  const orderClass = req.orderClass ?? 'simple';
  if (orderClass !== 'simple' && orderClass !== 'bracket') return `unsupported order_class ${String(orderClass)}`;
  if (orderClass === 'simple') {
    if (req.takeProfit !== undefined || req.stopLoss !== undefined)
      return 'take_profit/stop_loss require order_class bracket';
    return null;
  }
  if (req.timeInForce !== 'day' && req.timeInForce !== 'gtc') return 'bracket orders must be day or gtc';
  if (req.type === 'trailing_stop') return 'a bracket entry cannot be a trailing_stop';
  if (!req.takeProfit || !isPositivePrice(req.takeProfit.limitPrice))
    return 'bracket requires take_profit.limit_price > 0';
  if (!req.stopLoss || !isPositivePrice(req.stopLoss.stopPrice)) return 'bracket requires stop_loss.stop_price > 0';
  if (req.stopLoss.limitPrice !== undefined && !isPositivePrice(req.stopLoss.limitPrice))
    return 'stop_loss.limit_price must be > 0';
  const tp = req.takeProfit.limitPrice;
  const sl = req.stopLoss.stopPrice;
  if (req.side === 'buy' ? tp <= sl : tp >= sl) {
    return `bracket ${req.side}: take_profit.limit_price ${tp} must be ${req.side === 'buy' ? 'above' : 'below'} stop_loss.stop_price ${sl}`;
  }
  return null;
}

/** A bar the matching can trust: positive prices, high/low enclosing open and close, volume >= 0. */
export function validateBar(bar: OhlcvBar): void {
  const ok =
    bar !== null &&
    typeof bar === 'object' &&
    typeof bar.symbol === 'string' &&
    bar.symbol !== '' &&
    typeof bar.timestamp === 'string' &&
    [bar.open, bar.high, bar.low, bar.close].every(isPositivePrice) &&
    typeof bar.volume === 'number' &&
    Number.isFinite(bar.volume) &&
    bar.volume >= 0 &&
    bar.high >= Math.max(bar.open, bar.close, bar.low) &&
    bar.low <= Math.min(bar.open, bar.close);
  if (!ok) throw new RangeError(`invalid bar: ${JSON.stringify(bar)}`);
}
