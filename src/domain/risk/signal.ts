import type { Side } from '../../contracts/order';
import * as typesModule from './types';
import type { AssetClass } from './types';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. ASSET_CLASSES is read per decision (docs/quant.md, "Run under tsx").
const { ASSET_CLASSES } = typesModule;

/**
 * The engine's own defence against malformed input. Signals arriving through the intake are already
 * validated by the contract (src/contracts/signal.ts), but the engine is also called by the backtester,
 * manual tools and tests, and a bad price is the kind of input that must never size an order
 * (the original approved a price of −150).
 */

/** The fields of a TradeSignal the engine uses, normalised. */
export interface RiskSignal {
  symbol: string;
  side: Side;
  /** Reference price per share, finite and > 0. */
  price: number;
  confidence: number;
  strategy: string;
  assetClass: AssetClass;
  createdAt: string | null;
  /** Upper bound on shares (positive integer) when given. */
  quantityHint: number | null;
  /** The bracket's stop-loss trigger, when given; on the loss side of the price. */
  stopLossPrice: number | null;
}

export type SignalValidation = { ok: true; signal: RiskSignal } | { ok: false; problems: string[] };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPositiveFinite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** Validate the fields the engine depends on. Never throws. */
export function validateRiskSignal(input: unknown): SignalValidation {
  if (!isRecord(input)) return { ok: false, problems: ['signal is not an object'] };
  const problems: string[] = [];

  const symbol = typeof input.symbol === 'string' ? input.symbol.trim() : '';
  if (symbol === '') problems.push('symbol is missing or empty');

  const side = input.side;
  if (side !== 'buy' && side !== 'sell')
    problems.push(`side must be "buy" or "sell" (got ${JSON.stringify(side) ?? 'undefined'})`);

  const price = input.price;
  if (!isPositiveFinite(price)) problems.push(`price must be a finite number > 0 (got ${String(price)})`);

  const confidence = input.confidence;
  if (typeof confidence !== 'number' || !Number.isFinite(confidence) || confidence < 0 || confidence > 1) {
    problems.push(`confidence must be a number in [0, 1] (got ${String(confidence)})`);
  }

  const strategy = typeof input.strategy === 'string' ? input.strategy.trim() : '';
  if (strategy === '') problems.push('strategy is missing or empty');

  const assetClassRaw = input.asset_class ?? 'equity';
  const assetClass = ASSET_CLASSES.find((c) => c === assetClassRaw);
  if (!assetClass)
    problems.push(`asset_class must be one of ${ASSET_CLASSES.join(', ')} (got ${String(assetClassRaw)})`);

  const createdAt =
    typeof input.created_at === 'string' && !Number.isNaN(Date.parse(input.created_at)) ? input.created_at : null;

  let quantityHint: number | null = null;
  let stopLossPrice: number | null = null;
  if (input.order !== undefined) {
    if (!isRecord(input.order)) {
      problems.push('order must be an object');
    } else {
      const hint = input.order.quantity_hint;
      if (hint !== undefined) {
        if (typeof hint !== 'number' || !Number.isInteger(hint) || hint <= 0) {
          problems.push(`order.quantity_hint must be a positive integer (got ${String(hint)})`);
        } else {
          quantityHint = hint;
        }
      }
      const stopLoss = input.order.stop_loss;
      if (stopLoss !== undefined) {
        const stop = isRecord(stopLoss) ? stopLoss.stop_price : undefined;
        if (!isPositiveFinite(stop)) {
          problems.push(`order.stop_loss.stop_price must be a finite number > 0 (got ${String(stop)})`);
        } else if (isPositiveFinite(price) && (side === 'buy' || side === 'sell')) {
          // A stop on the profit side (or at the price) gives no stop distance: sizing would divide by ≤ 0.
          const lossSide = side === 'buy' ? stop < price : stop > price;
          if (!lossSide)
            problems.push(
              `order.stop_loss.stop_price ${stop} must be ${side === 'buy' ? 'below' : 'above'} the price ${price} for a ${side}`,
            );
          else stopLossPrice = stop;
        }
      }
    }
  }

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    signal: {
      symbol,
      side: side as Side,
      price: price as number,
      confidence: confidence as number,
      strategy,
      assetClass: assetClass!,
      createdAt,
      quantityHint,
      stopLossPrice,
    },
  };
}
