import type { Side } from '../../contracts/order';
import type { RiskLimits } from './limits';
import * as portfolioModule from '../portfolio';
import type { AssetClass, PortfolioSnapshot } from './types';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. portfolioEquity runs per decision (docs/quant.md, "Run under tsx").
const { portfolioEquity } = portfolioModule;

/**
 * The exposure model: equity, worst-case positions, gross exposure and margin. Pure.
 *
 * Money invariants:
 * - Equity = cash + Σ signed qty × mark (domain/portfolio.ts). Shorts carry negative qty (their sale proceeds
 *   sit in cash).
 * - Marks: the signal's symbol is marked at the signal price (the freshest price we have); every other
 *   symbol at its last price, else its average cost.
 * - In-flight trades (HELD reservations) may or may not fill, so a symbol's position is a range:
 *   [held − reserved sells, held + reserved buys]. Limits are checked against the WORST CASE, the larger
 *   absolute end of that range. Counting a pending buy protects against two concurrent approvals spending
 *   the same limit; not netting a pending sell protects against a buy approved on the strength of a sell
 *   that is then cancelled.
 * - Gross exposure = Σ worst-case |shares| × mark. Margin used = Σ that notional / the class leverage limit.
 *   Available margin = equity − margin used.
 */

export interface SymbolExposure {
  symbol: string;
  /** Filled position, signed shares. */
  held: number;
  reservedBuy: number;
  reservedSell: number;
  mark: number;
  assetClass: AssetClass;
}

/** max(|held + reserved buys|, |held − reserved sells|): the largest position the symbol can reach. */
export function worstCaseShares(held: number, reservedBuy: number, reservedSell: number): number {
  return Math.max(Math.abs(held + reservedBuy), Math.abs(held - reservedSell));
}

/** Every symbol with a position or a reservation, with its marks and class. */
export function symbolExposures(
  portfolio: Pick<PortfolioSnapshot, 'positions' | 'reservations'>,
  signal: { symbol: string; price: number; assetClass: AssetClass },
): Map<string, SymbolExposure> {
  const out = new Map<string, SymbolExposure>();
  for (const symbol of Object.keys(portfolio.positions)) exposureEntry(out, portfolio, signal, symbol);
  exposureEntry(out, portfolio, signal, signal.symbol);
  for (const r of portfolio.reservations) {
    const e = exposureEntry(out, portfolio, signal, r.symbol);
    if (r.side === 'buy') e.reservedBuy += r.qty;
    else e.reservedSell += r.qty;
    // A symbol known only through a reservation is marked at the reservation's own price.
    if (e.mark <= 0 && r.qty > 0) e.mark = r.notional / r.qty;
    if (!portfolio.positions[r.symbol] && r.symbol !== signal.symbol && r.assetClass) e.assetClass = r.assetClass;
  }
  return out;
}

/** The symbol's entry in `out`, created from its position (if any) on first sight. */
function exposureEntry(
  out: Map<string, SymbolExposure>,
  portfolio: Pick<PortfolioSnapshot, 'positions'>,
  signal: { symbol: string; price: number; assetClass: AssetClass },
  symbol: string,
): SymbolExposure {
  let e = out.get(symbol);
  if (!e) {
    const p = portfolio.positions[symbol];
    e = {
      symbol,
      held: p?.qty ?? 0,
      reservedBuy: 0,
      reservedSell: 0,
      mark: symbol === signal.symbol ? signal.price : (p?.lastPrice ?? p?.avgCost ?? 0),
      assetClass: symbol === signal.symbol ? signal.assetClass : (p?.assetClass ?? 'equity'),
    };
    out.set(symbol, e);
  }
  return e;
}

/**
 * The portfolio as one trade of `side` in the signal's symbol changes it, as a function of the quantity.
 * Only the signal's symbol changes with the quantity; every other symbol is a constant.
 */
export interface ExposureModel {
  equity: number;
  symbol: SymbolExposure;
  /** Gross exposure of every other symbol (worst case), dollars. */
  grossOthers: number;
  /** Margin used by every other symbol, dollars. */
  marginOthers: number;
  /** Worst-case |position| of the symbol after trading `qty` shares. */
  worstAfter(qty: number): number;
  /** Lowest position the symbol can reach after trading `qty` (negative = short). */
  lowestAfter(qty: number): number;
  grossAfter(qty: number): number;
  marginUsedAfter(qty: number): number;
  availableMarginAfter(qty: number): number;
  /**
   * Shares this side can trade while only shrinking an existing position (never flipping it, never
   * selling shares another in-flight sell already claims): the reduce-only allowance.
   */
  reducibleQty: number;
}

export function exposureModel(
  portfolio: Pick<PortfolioSnapshot, 'cash' | 'positions' | 'reservations'>,
  signal: { symbol: string; side: Side; price: number; assetClass: AssetClass },
  limits: Pick<RiskLimits, 'assetClasses'>,
): ExposureModel {
  const equity = portfolioEquity(portfolio, signal.symbol, signal.price);
  const all = symbolExposures(portfolio, signal);
  const sym = all.get(signal.symbol)!;
  let grossOthers = 0;
  let marginOthers = 0;
  for (const e of all.values()) {
    if (e.symbol === signal.symbol) continue;
    const notional = worstCaseShares(e.held, e.reservedBuy, e.reservedSell) * e.mark;
    grossOthers += notional;
    marginOthers += notional / limits.assetClasses[e.assetClass].leverageLimit;
  }
  return new TradeExposure(
    equity,
    sym,
    grossOthers,
    marginOthers,
    limits.assetClasses[sym.assetClass].leverageLimit,
    signal.side === 'buy',
  );
}

/**
 * The model as an object with methods rather than a record of closures: the risk engine builds one per decision
 * and the caps' binary search calls it many times; closures cost an allocation each (and a run-time name under tsx).
 */
class TradeExposure implements ExposureModel {
  readonly reducibleQty: number;

  constructor(
    readonly equity: number,
    readonly symbol: SymbolExposure,
    readonly grossOthers: number,
    readonly marginOthers: number,
    private readonly leverage: number,
    private readonly buy: boolean,
  ) {
    const sym = symbol;
    this.reducibleQty = buy
      ? sym.held < 0
        ? Math.max(0, Math.floor(-sym.held - sym.reservedBuy))
        : 0
      : sym.held > 0
        ? Math.max(0, Math.floor(sym.held - sym.reservedSell))
        : 0;
  }

  worstAfter(qty: number): number {
    const sym = this.symbol;
    return worstCaseShares(sym.held, sym.reservedBuy + (this.buy ? qty : 0), sym.reservedSell + (this.buy ? 0 : qty));
  }

  lowestAfter(qty: number): number {
    return this.symbol.held - this.symbol.reservedSell - (this.buy ? 0 : qty);
  }

  grossAfter(qty: number): number {
    return this.grossOthers + this.worstAfter(qty) * this.symbol.mark;
  }

  marginUsedAfter(qty: number): number {
    return this.marginOthers + (this.worstAfter(qty) * this.symbol.mark) / this.leverage;
  }

  availableMarginAfter(qty: number): number {
    return this.equity - this.marginUsedAfter(qty);
  }
}
