import type { Env } from '../../config';
import type { AssetClass } from './types';

/**
 * Risk limits. Every number has an environment variable (validated by src/config) except the asset-class
 * table, the fallback stop and the volatility window, which are constants documented in docs/risk.md.
 */

export interface AssetClassLimits {
  /** Maximum gross exposure / equity for the portfolio when trading this class; also the margin multiplier. */
  leverageLimit: number;
  /** Maximum notional of one position of this class, as a fraction of equity. */
  maxExposurePct: number;
}

/** The original system's asset-class table (original-system.md §3.3), kept as-is. */
export const ASSET_CLASS_LIMITS: Readonly<Record<AssetClass, AssetClassLimits>> = {
  equity: { leverageLimit: 2.0, maxExposurePct: 0.1 },
  options: { leverageLimit: 1.5, maxExposurePct: 0.15 },
  futures: { leverageLimit: 5.0, maxExposurePct: 0.2 },
  crypto: { leverageLimit: 2.5, maxExposurePct: 0.1 },
};

export interface RiskLimits {
  /** CONFIDENCE_THRESH: reject below. */
  confidenceThreshold: number;
  /** RISK_MAX_VIX: reject when the VIX is above. */
  maxVix: number;
  /** RISK_MAX_REALIZED_VOL: reject when the symbol's annualised realised volatility is above. */
  maxRealizedVol: number;
  /** Returns in the realised-volatility window (constant; default 20). */
  realizedVolWindow: number;
  /** Fewer returns than this: volatility unknown, the check passes (constant; default 10). */
  realizedVolMinReturns: number;
  /** RISK_CIRCUIT_BREAKER_PCT: reject new risk when the day's drawdown is at or above. */
  circuitBreakerPct: number;
  /** RISK_MARGIN_CALL_PCT: reject new risk when available margin is below this fraction of equity. */
  marginCallPct: number;
  /** RISK_MAX_POSITION_SHARES: maximum |position| per symbol, long or short. */
  maxPositionShares: number;
  /** RISK_MAX_ORDER_NOTIONAL: maximum qty × price of one order (fat-finger limit). */
  maxOrderNotional: number;
  /** RISK_STRESS_DROP_PCT: the price shock applied to gross exposure. */
  stressDropPct: number;
  /** RISK_STRESS_THRESHOLD_PCT: the largest acceptable stress loss, as a fraction of equity. */
  stressThresholdPct: number;
  /** RISK_PER_TRADE_PCT: equity fraction lost if the stop is hit (fixed-fractional sizing). */
  riskPerTradePct: number;
  /** RISK_ATR_PERIOD. */
  atrPeriod: number;
  /** RISK_ATR_STOP_MULTIPLE: stop distance = ATR × this. */
  atrStopMultiple: number;
  /** Stop distance as a fraction of price when there are too few bars for an ATR (constant; default 0.05). */
  fallbackStopPct: number;
  /** RISK_DUPLICATE_COOLDOWN_SEC: minimum seconds between approved signals of one symbol + strategy; 0 disables. */
  duplicateCooldownSec: number;
  /** RISK_ALLOW_SHORT: may a sell take the position below zero. */
  allowShort: boolean;
  assetClasses: Readonly<Record<AssetClass, AssetClassLimits>>;
}

/** Defaults; equal to limitsFromEnv() of an empty environment (a unit test keeps them in step). */
export const DEFAULT_RISK_LIMITS: Readonly<RiskLimits> = Object.freeze({
  confidenceThreshold: 0.75,
  maxVix: 30,
  maxRealizedVol: 1.5,
  realizedVolWindow: 20,
  realizedVolMinReturns: 10,
  circuitBreakerPct: 0.05,
  marginCallPct: 0.1,
  maxPositionShares: 1000,
  maxOrderNotional: 50_000,
  stressDropPct: 0.1,
  stressThresholdPct: 0.05,
  riskPerTradePct: 0.01,
  atrPeriod: 14,
  atrStopMultiple: 2,
  fallbackStopPct: 0.05,
  duplicateCooldownSec: 60,
  allowShort: false,
  assetClasses: ASSET_CLASS_LIMITS,
});

export type RiskEnv = Pick<
  Env,
  | 'CONFIDENCE_THRESH'
  | 'RISK_MAX_VIX'
  | 'RISK_MAX_REALIZED_VOL'
  | 'RISK_CIRCUIT_BREAKER_PCT'
  | 'RISK_MARGIN_CALL_PCT'
  | 'RISK_MAX_POSITION_SHARES'
  | 'RISK_MAX_ORDER_NOTIONAL'
  | 'RISK_STRESS_DROP_PCT'
  | 'RISK_STRESS_THRESHOLD_PCT'
  | 'RISK_PER_TRADE_PCT'
  | 'RISK_ATR_PERIOD'
  | 'RISK_ATR_STOP_MULTIPLE'
  | 'RISK_DUPLICATE_COOLDOWN_SEC'
  | 'RISK_ALLOW_SHORT'
>;

/** Map the validated environment (src/config) to the engine's limits. */
export function limitsFromEnv(env: RiskEnv): RiskLimits {
  return {
    ...DEFAULT_RISK_LIMITS,
    confidenceThreshold: env.CONFIDENCE_THRESH,
    maxVix: env.RISK_MAX_VIX,
    maxRealizedVol: env.RISK_MAX_REALIZED_VOL,
    circuitBreakerPct: env.RISK_CIRCUIT_BREAKER_PCT,
    marginCallPct: env.RISK_MARGIN_CALL_PCT,
    maxPositionShares: env.RISK_MAX_POSITION_SHARES,
    maxOrderNotional: env.RISK_MAX_ORDER_NOTIONAL,
    stressDropPct: env.RISK_STRESS_DROP_PCT,
    stressThresholdPct: env.RISK_STRESS_THRESHOLD_PCT,
    riskPerTradePct: env.RISK_PER_TRADE_PCT,
    atrPeriod: env.RISK_ATR_PERIOD,
    atrStopMultiple: env.RISK_ATR_STOP_MULTIPLE,
    duplicateCooldownSec: env.RISK_DUPLICATE_COOLDOWN_SEC,
    allowShort: env.RISK_ALLOW_SHORT,
  };
}

/** Bars the engine can use: enough for the ATR and the realised-volatility window. */
export function barsNeeded(limits: Pick<RiskLimits, 'atrPeriod' | 'realizedVolWindow'>): number {
  return Math.max(limits.atrPeriod, limits.realizedVolWindow) + 1;
}
