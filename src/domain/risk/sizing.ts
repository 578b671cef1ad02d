import type { OhlcvBar } from '../../contracts/bar';
import * as atrModule from '../indicators/atr';
import type { RiskLimits } from './limits';
import type { RiskSignal } from './signal';
import * as typesModule from './types';
import type { SizingResult } from './types';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. They run per decision (docs/quant.md, "Run under tsx").
const { atr } = atrModule;
const { barsOfSymbol } = typesModule;

/**
 * Fixed-fractional position sizing: risk a fixed fraction of equity on every trade.
 *
 *   riskBudget   = equity × RISK_PER_TRADE_PCT          (dollars lost if the stop is hit)
 *   stopDistance = |price − stop_loss|                  (when the signal carries a bracket stop)
 *                | ATR(RISK_ATR_PERIOD) × RISK_ATR_STOP_MULTIPLE   (when there are period + 1 bars)
 *                | price × fallbackStopPct (5 %)        (otherwise: a wide stop, so a small size)
 *   riskQty      = floor(riskBudget / stopDistance)     (whole shares, never rounded up)
 *   proposedQty  = min(riskQty, quantity_hint)          (a hint may cut the size, never raise it)
 *
 * The limits then cap proposedQty (engine.ts); this module only proposes.
 */

export type SizingProposal = Omit<SizingResult, 'caps' | 'bindingLimit' | 'finalQty'>;

/** Largest quantity ever proposed: keeps the arithmetic exact (well inside 2^53) on absurd inputs. */
export const MAX_PROPOSED_QTY = 1_000_000_000;

export function proposeSize(
  signal: Pick<RiskSignal, 'symbol' | 'price' | 'quantityHint' | 'stopLossPrice'>,
  equity: number,
  bars: readonly OhlcvBar[] | undefined,
  limits: Pick<RiskLimits, 'riskPerTradePct' | 'atrPeriod' | 'atrStopMultiple' | 'fallbackStopPct'>,
): SizingProposal {
  const riskBudget = Math.max(0, equity) * limits.riskPerTradePct;
  const symbolBars = barsOfSymbol(bars, signal.symbol);
  const barAtr = symbolBars.length > limits.atrPeriod ? atr(symbolBars, limits.atrPeriod) : null;

  let method: SizingResult['method'];
  let stopDistance: number;
  if (signal.stopLossPrice !== null) {
    method = 'stop_loss';
    stopDistance = Math.abs(signal.price - signal.stopLossPrice);
  } else if (barAtr !== null && barAtr > 0) {
    method = 'atr';
    stopDistance = barAtr * limits.atrStopMultiple;
  } else {
    // Too few bars (or a flat tape with zero range): assume a wide stop rather than size on no information.
    method = 'fallback_pct';
    stopDistance = signal.price * limits.fallbackStopPct;
  }

  const raw = stopDistance > 0 ? riskBudget / stopDistance : 0;
  // A tiny epsilon keeps 1000 / 10 from flooring to 99 through binary rounding; never enough to round a share up.
  const riskQty = Number.isFinite(raw) ? Math.min(MAX_PROPOSED_QTY, Math.floor(raw + 1e-9)) : 0;
  const hint = signal.quantityHint;
  return {
    method,
    equity,
    riskBudget,
    stopDistance,
    atr: barAtr,
    barsThrough: symbolBars.length > 0 ? symbolBars[symbolBars.length - 1]!.timestamp : null,
    riskQty,
    hint,
    proposedQty: hint === null ? riskQty : Math.min(riskQty, hint),
  };
}
