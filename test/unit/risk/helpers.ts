import type { OhlcvBar } from '../../../src/contracts/bar';
import {
  DEFAULT_RISK_LIMITS,
  type AssetClass,
  type PortfolioSnapshot,
  type RiskLimits,
} from '../../../src/domain/risk';

export const T0 = '2025-01-02T15:00:00.000Z';

/** A valid TradeSignal (contract field names) with overrides. */
export function signal(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: 1,
    signal_id: 'sig-1',
    correlation_id: 'corr-1',
    symbol: 'AAPL',
    side: 'buy',
    price: 100,
    confidence: 0.8,
    strategy: 'ma_cross',
    created_at: T0,
    asset_class: 'equity',
    ...over,
  };
}

/** A flat $100k account, ACTIVE, with overrides. */
export function portfolio(over: Partial<PortfolioSnapshot> = {}): PortfolioSnapshot {
  return {
    cash: 100_000,
    positions: {},
    reservations: [],
    dayStartEquity: 100_000,
    tradingState: 'ACTIVE',
    lastSignalAt: {},
    asOf: T0,
    ...over,
  };
}

export function limits(over: Partial<RiskLimits> = {}): RiskLimits {
  return { ...DEFAULT_RISK_LIMITS, ...over };
}

/** `n` daily bars with a constant true range of 2·halfRange around `close` (ATR = 2·halfRange). */
export function flatBars(n: number, close = 100, halfRange = 1, symbol = 'AAPL'): OhlcvBar[] {
  return Array.from({ length: n }, (_, i) => ({
    symbol,
    timestamp: new Date(Date.UTC(2024, 0, 1 + i)).toISOString(),
    open: close,
    high: close + halfRange,
    low: close - halfRange,
    close,
    volume: 1_000_000,
  }));
}

/** Daily bars whose closes alternate between `a` and `b`: high realised volatility. */
export function choppyBars(n: number, a = 100, b = 120, symbol = 'AAPL'): OhlcvBar[] {
  return Array.from({ length: n }, (_, i) => {
    const close = i % 2 === 0 ? a : b;
    return {
      symbol,
      timestamp: new Date(Date.UTC(2024, 0, 1 + i)).toISOString(),
      open: close,
      high: Math.max(a, b),
      low: Math.min(a, b),
      close,
      volume: 1_000_000,
    };
  });
}

/**
 * Independent re-computation of the portfolio metrics (docs/risk.md definitions), used to verify the
 * engine's decisions from outside: deliberately not sharing code with src/domain/risk/exposure.ts.
 */
export interface Measured {
  equity: number;
  worst: number; // worst-case |shares| of the symbol
  lowest: number; // lowest reachable position of the symbol
  gross: number;
  marginUsed: number;
}

export function measure(
  p: PortfolioSnapshot,
  symbol: string,
  price: number,
  assetClass: AssetClass,
  lim: RiskLimits,
): Measured {
  const markOf = (s: string): number => {
    if (s === symbol) return price;
    const pos = p.positions[s];
    if (pos) return pos.lastPrice ?? pos.avgCost;
    const r = p.reservations.find((x) => x.symbol === s);
    return r ? r.notional / r.qty : 0;
  };
  const classOf = (s: string): AssetClass => {
    if (s === symbol) return assetClass;
    return p.positions[s]?.assetClass ?? p.reservations.find((x) => x.symbol === s)?.assetClass ?? 'equity';
  };
  let equity = p.cash;
  for (const [s, pos] of Object.entries(p.positions)) equity += pos.qty * markOf(s);
  const symbols = new Set([...Object.keys(p.positions), ...p.reservations.map((r) => r.symbol), symbol]);
  let gross = 0;
  let marginUsed = 0;
  let worst = 0;
  let lowest = 0;
  for (const s of symbols) {
    const held = p.positions[s]?.qty ?? 0;
    const buys = p.reservations.filter((r) => r.symbol === s && r.side === 'buy').reduce((a, r) => a + r.qty, 0);
    const sells = p.reservations.filter((r) => r.symbol === s && r.side === 'sell').reduce((a, r) => a + r.qty, 0);
    const w = Math.max(Math.abs(held + buys), Math.abs(held - sells));
    gross += w * markOf(s);
    marginUsed += (w * markOf(s)) / lim.assetClasses[classOf(s)].leverageLimit;
    if (s === symbol) {
      worst = w;
      lowest = held - sells;
    }
  }
  return { equity, worst, lowest, gross, marginUsed };
}
