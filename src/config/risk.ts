import { bool, frac, int, num, type Parsed } from './fields';

/** The `risk` section's variables: RiskOps limits (original names and defaults where they exist; docs/risk.md). */
export const riskVars = {
  CONFIDENCE_THRESH: frac(0.75),
  RISK_MAX_VIX: num(30, (s) => s.positive()),
  RISK_MAX_REALIZED_VOL: num(1.5, (s) => s.positive()),
  RISK_CIRCUIT_BREAKER_PCT: frac(0.05),
  RISK_MARGIN_CALL_PCT: frac(0.1),
  RISK_MAX_POSITION_SHARES: int(1000, 1),
  RISK_MAX_ORDER_NOTIONAL: num(50_000, (s) => s.positive()),
  RISK_STRESS_DROP_PCT: frac(0.1),
  RISK_STRESS_THRESHOLD_PCT: frac(0.05),
  RISK_PER_TRADE_PCT: frac(0.01),
  RISK_ATR_PERIOD: int(14, 1, 500),
  RISK_ATR_STOP_MULTIPLE: num(2, (s) => s.positive()),
  RISK_DUPLICATE_COOLDOWN_SEC: int(60, 0),
  RISK_ALLOW_SHORT: bool(false),
};

/**
 * The configurable RiskOps limits. The engine's full RiskLimits (src/domain/risk/limits.ts) adds the constants
 * that have no variable (the asset-class table, the volatility window, the fallback stop).
 */
export interface RiskConfig {
  /** Reject signals below this confidence. */
  confidenceThreshold: number;
  /** Reject new risk when the VIX is above. */
  maxVix: number;
  /** Reject when the symbol's annualised realised volatility is above. */
  maxRealizedVol: number;
  /** Reject new risk when the day's drawdown is at or above. */
  circuitBreakerPct: number;
  /** Reject new risk when available margin is below this fraction of equity. */
  marginCallPct: number;
  /** Maximum |position| per symbol, long or short. */
  maxPositionShares: number;
  /** Maximum qty × price of one order (fat-finger limit). */
  maxOrderNotional: number;
  /** The price shock applied to gross exposure. */
  stressDropPct: number;
  /** The largest acceptable stress loss, as a fraction of equity. */
  stressThresholdPct: number;
  /** Equity fraction lost if the stop is hit (fixed-fractional sizing). */
  riskPerTradePct: number;
  atrPeriod: number;
  /** Stop distance = ATR × this. */
  atrStopMultiple: number;
  /** Minimum seconds between approved signals of one symbol + strategy; 0 disables. */
  duplicateCooldownSec: number;
  /** May a sell take the position below zero. */
  allowShort: boolean;
}

export function riskSection(e: Parsed<typeof riskVars>): RiskConfig {
  return {
    confidenceThreshold: e.CONFIDENCE_THRESH,
    maxVix: e.RISK_MAX_VIX,
    maxRealizedVol: e.RISK_MAX_REALIZED_VOL,
    circuitBreakerPct: e.RISK_CIRCUIT_BREAKER_PCT,
    marginCallPct: e.RISK_MARGIN_CALL_PCT,
    maxPositionShares: e.RISK_MAX_POSITION_SHARES,
    maxOrderNotional: e.RISK_MAX_ORDER_NOTIONAL,
    stressDropPct: e.RISK_STRESS_DROP_PCT,
    stressThresholdPct: e.RISK_STRESS_THRESHOLD_PCT,
    riskPerTradePct: e.RISK_PER_TRADE_PCT,
    atrPeriod: e.RISK_ATR_PERIOD,
    atrStopMultiple: e.RISK_ATR_STOP_MULTIPLE,
    duplicateCooldownSec: e.RISK_DUPLICATE_COOLDOWN_SEC,
    allowShort: e.RISK_ALLOW_SHORT,
  };
}
