import type { RiskConfig } from '../../config';
import type { AssetClass } from './types';

/**
 * Risk limits. Every number has an environment variable (the `risk` section of src/config) except the asset-class
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

/**
 * The engine's limits: the configurable ones (the `risk` config section, RISK_* and CONFIDENCE_THRESH, documented
 * in src/config/risk.ts) plus constants that have no variable.
 */
export interface RiskLimits extends RiskConfig {
  /** Returns in the realised-volatility window (constant; default 20). */
  realizedVolWindow: number;
  /** Fewer returns than this: volatility unknown, the check passes (constant; default 10). */
  realizedVolMinReturns: number;
  /** Stop distance as a fraction of price when there are too few bars for an ATR (constant; default 0.05). */
  fallbackStopPct: number;
  assetClasses: Readonly<Record<AssetClass, AssetClassLimits>>;
}

/** Defaults; equal to riskLimits() of an empty environment's risk section (a unit test keeps them in step). */
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

/** The engine's limits for the configured `risk` section: the section's values over the constants. */
export function riskLimits(section: RiskConfig): RiskLimits {
  return { ...DEFAULT_RISK_LIMITS, ...section };
}

/** Bars the engine can use: enough for the ATR and the realised-volatility window. */
export function barsNeeded(limits: Pick<RiskLimits, 'atrPeriod' | 'realizedVolWindow'>): number {
  return Math.max(limits.atrPeriod, limits.realizedVolWindow) + 1;
}
