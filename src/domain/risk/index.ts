/**
 * Pre-trade risk: the pure engine, its limits, sizing and exposure model. No I/O; workflows may
 * `import type` from here, the backtester imports the functions.
 */
export { evaluate } from './engine';
export { ASSET_CLASS_LIMITS, DEFAULT_RISK_LIMITS, barsNeeded, riskLimits } from './limits';
export type { AssetClassLimits, RiskLimits } from './limits';
export { exposureModel, portfolioEquity, symbolExposures, unrealizedPnl, worstCaseShares } from './exposure';
export type { ExposureModel, SymbolExposure } from './exposure';
export { MAX_PROPOSED_QTY, proposeSize } from './sizing';
export type { SizingProposal } from './sizing';
export { validateRiskSignal } from './signal';
export type { RiskSignal, SignalValidation } from './signal';
export { ASSET_CLASSES, TRADING_STATES, signalKey } from './types';
export type {
  AssetClass,
  MarketContext,
  PortfolioSnapshot,
  PositionSnapshot,
  RejectionCode,
  ReservationSnapshot,
  RiskCheck,
  RiskDecision,
  RiskMetrics,
  RiskReasonCode,
  SizingResult,
  TradingState,
} from './types';
