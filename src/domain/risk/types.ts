import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';
import type { MarkedPosition } from '../portfolio';

/**
 * Vocabulary of the pre-trade risk engine. Everything here is plain data (JSON-serialisable), so a
 * decision travels through Temporal unchanged and is stored as-is in `risk_decisions`.
 */

export type AssetClass = 'equity' | 'options' | 'futures' | 'crypto';
export const ASSET_CLASSES: readonly AssetClass[] = ['equity', 'options', 'futures', 'crypto'];

/** Kill switch. HALTED: nothing trades. REDUCING: only trades that shrink an existing position. */
export type TradingState = 'ACTIVE' | 'HALTED' | 'REDUCING';
export const TRADING_STATES: readonly TradingState[] = ['ACTIVE', 'HALTED', 'REDUCING'];

/**
 * Why a trade was rejected. One code per check; the first failing check in the documented order
 * (docs/risk.md) is the decision's reason. `approved` is the reason of an approval.
 */
export type RejectionCode =
  | 'invalid_signal'
  | 'trading_halted'
  | 'reduce_only'
  | 'duplicate_signal'
  | 'extreme_volatility'
  | 'low_confidence'
  | 'circuit_breaker'
  | 'under_margin_call'
  | 'risk_budget_too_small'
  | 'short_not_allowed'
  | 'over_position_limit'
  | 'exposure_limit_breach'
  | 'leverage_limit_breach'
  | 'insufficient_buying_power'
  | 'max_order_notional'
  | 'stress_test_fail';
export type RiskReasonCode = 'approved' | RejectionCode;

/** One check as recorded: what was measured, against what, and whether it passed. */
export interface RiskCheck {
  /** Check name, e.g. `exposure_limit_breach` or `extreme_volatility.vix`. */
  name: string;
  /** The reason code this check produces when it fails. */
  code: RejectionCode;
  passed: boolean;
  /** The measured value (shares, dollars, a ratio, a state); null when it could not be measured. */
  value: number | string | null;
  limit: number | string | null;
  /** How value and limit are compared for a pass, e.g. `value <= limit`. */
  rule: string;
  detail?: string;
}

/** Fixed-fractional sizing, and how the limits cut it. */
export interface SizingResult {
  /** Where the stop distance came from. */
  method: 'stop_loss' | 'atr' | 'fallback_pct';
  equity: number;
  /** Dollars the trade may lose if the stop is hit: equity × risk per trade. */
  riskBudget: number;
  /** Dollars per share between entry and stop. */
  stopDistance: number;
  atr: number | null;
  /**
   * The bar time of the last bar of the signal's symbol that sizing saw (null without bars): what the ATR and the
   * realised volatility are as of. Risk reads the bar store when it decides; it waits a few seconds for the
   * signal's own bar when the store is a bar or so behind (bar-lag.ts), then decides on what is stored, so the
   * record says which data it used.
   */
  barsThrough: string | null;
  /** floor(riskBudget / stopDistance). */
  riskQty: number;
  /** The signal's quantity hint (an upper bound), if any. */
  hint: number | null;
  /** min(riskQty, hint): what sizing asks for before the limits cut it. */
  proposedQty: number;
  /** Largest quantity each capping check allows (only checks that cut the proposal are listed). */
  caps: Partial<Record<RejectionCode, number>>;
  /** The check that cut the proposal the most, or null when no limit bound. */
  bindingLimit: RejectionCode | null;
  finalQty: number;
}

/** Portfolio figures before and after the decided trade, for the audit trail. */
export interface RiskMetrics {
  equity: number;
  dayStartEquity: number;
  /** (day-start equity − equity) / day-start equity; negative on an up day. */
  drawdownPct: number;
  grossExposureBefore: number;
  grossExposureAfter: number;
  availableMarginBefore: number;
  availableMarginAfter: number;
  /** Worst-case absolute position in the symbol (shares), see docs/risk.md "Exposure model". */
  positionBefore: number;
  positionAfter: number;
}

export interface RiskDecision {
  decision: 'APPROVED' | 'REJECTED';
  reasonCode: RiskReasonCode;
  /** Whole shares to trade; 0 when rejected. */
  qty: number;
  /** qty × signal price; 0 when rejected. */
  notional: number;
  /** Every check in the documented order, each with its measured value and limit. */
  checks: RiskCheck[];
  /** Absent only for invalid signals. */
  sizing?: SizingResult;
  metrics?: RiskMetrics;
}

/** A position as the engine sees it: signed qty, avg cost and last price (domain/portfolio.ts), and its class. */
export interface PositionSnapshot extends MarkedPosition {
  assetClass?: AssetClass;
  realizedPnl?: number;
}

/** Exposure held by an in-flight trade (approved, not yet finished). */
export interface ReservationSnapshot {
  workflowId?: string;
  symbol: string;
  side: Side;
  qty: number;
  notional: number;
  assetClass?: AssetClass;
}

/** What the engine needs to know about the account at decision time. */
export interface PortfolioSnapshot {
  /** Cash balance (may be negative on margin; short-sale proceeds included). */
  cash: number;
  positions: Readonly<Record<string, PositionSnapshot>>;
  reservations: readonly ReservationSnapshot[];
  /** Equity at the start of the trading day: the circuit breaker's reference. */
  dayStartEquity: number;
  tradingState: TradingState;
  /** Signal time (created_at) of the last approved signal per `signalKey(symbol, strategy)` (ISO-8601 or epoch ms). */
  lastSignalAt: Readonly<Record<string, string | number>>;
  /** Decision time (ISO-8601), the cooldown clock for a signal without created_at. The engine never reads a clock. */
  asOf?: string;
}

/** Market context for the decision. */
export interface MarketContext {
  /** The VIX, when known. */
  vix?: number;
  /** Recent bars of the signal's symbol, oldest first (ATR stop and realised volatility). */
  recentBars?: readonly OhlcvBar[];
}

/** Key of the duplicate-signal cooldown map. */
export function signalKey(symbol: string, strategy: string): string {
  return `${symbol}|${strategy}`;
}

/**
 * The bars of `symbol` (a bar without a symbol counts as the signal's). The array itself when every bar is (the
 * usual case: a backtest passes one symbol's bars), so deciding does not copy it for every signal.
 */
export function barsOfSymbol<B extends { symbol?: string }>(
  bars: readonly B[] | undefined,
  symbol: string,
): readonly B[] {
  if (bars === undefined) return [];
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i]!;
    if (b.symbol !== undefined && b.symbol !== symbol)
      return bars.filter((x) => x.symbol === undefined || x.symbol === symbol);
  }
  return bars;
}
