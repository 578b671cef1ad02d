/**
 * Pre-trade risk: the pure engine, its limits, sizing and exposure model. No I/O; workflows may
 * `import type` from here, the backtester imports the functions.
 */
export { decide, evaluate } from './engine';
export type { RiskVerdict } from './engine';
export { ASSET_CLASS_LIMITS, DEFAULT_RISK_LIMITS, barsNeeded, riskLimits } from './limits';
export type { AssetClassLimits, RiskLimits } from './limits';
export { exposureModel, symbolExposures, worstCaseShares } from './exposure';
// Equity and unrealised P&L are portfolio accounting, shared with the ledger's reports.
export { portfolioEquity, unrealizedPnl } from '../portfolio';
export type { ExposureModel, SymbolExposure } from './exposure';
export { MAX_PROPOSED_QTY, proposeSize } from './sizing';
export type { SizingProposal } from './sizing';
export { validateRiskSignal } from './signal';
export type { RiskSignal, SignalValidation } from './signal';
export { ASSET_CLASSES, TRADING_STATES, signalKey } from './types';
export {
  BAR_STORE_BEHIND_MAX_BARS,
  BAR_WAIT_ATTEMPTS,
  BarStoreBehindError,
  barStoreBehind,
  waitDelayMs,
} from './bar-lag';
export { IN_FLIGHT_WAIT_ATTEMPTS, TradesInFlightError, tradesInFlightToAwait } from './in-flight';
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
