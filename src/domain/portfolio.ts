/**
 * Positions and portfolio accounting: the shape of a booked position and the marks every figure of an
 * account (equity, unrealised P&L) is computed with. Pure.
 *
 * Booking itself is average-cost accounting done by the ledger in PostgreSQL NUMERIC, in the same transaction
 * as the fill (adapters/postgres/ledger/booking.ts), so quantities, prices and cash never pass through floating
 * point and account cash = starting cash + Σ cash movements holds to the cent:
 * - adding to a position (or opening one) moves the average cost to the quantity-weighted mean;
 * - reducing it realises P&L = (fill price − average cost) × closed shares × sign(position), at unchanged cost;
 * - crossing through zero closes the old side (realising its P&L) and opens the new one at the fill price;
 * - a position closed to zero carries no cost and no exposure (its realised P&L is already in cash).
 *
 * Money invariants of the figures below:
 * - Equity = cash + Σ signed qty × mark. Shorts carry negative qty (their sale proceeds sit in cash).
 * - Marks: a position is marked at its last price, else its average cost; a caller with a fresher price for
 *   one symbol (risk: the signal's price) marks that symbol at it.
 */

export interface MarkedPosition {
  /** Signed shares: negative is short. */
  qty: number;
  avgCost: number;
  /** Last known price; null when never marked (avg cost is used then). */
  lastPrice?: number | null;
}

/** A position as the ledger books it (positions row). */
export interface BookedPosition extends MarkedPosition {
  symbol: string;
  lastPrice: number | null;
  realizedPnl: number;
}

/** The price a position is marked at: `markPrice` for `markSymbol` when given, else last price, else avg cost. */
export function markOf(symbol: string, p: MarkedPosition, markSymbol?: string, markPrice?: number): number {
  return symbol === markSymbol && markPrice !== undefined ? markPrice : (p.lastPrice ?? p.avgCost);
}

/** Equity with every position marked (the `markSymbol` at `markPrice` when given). */
export function portfolioEquity(
  portfolio: { cash: number; positions: Readonly<Record<string, MarkedPosition>> },
  markSymbol?: string,
  markPrice?: number,
): number {
  let equity = portfolio.cash;
  for (const [symbol, p] of Object.entries(portfolio.positions))
    equity += p.qty * markOf(symbol, p, markSymbol, markPrice);
  return equity;
}

/** Unrealised P&L of every position at the same marks as portfolioEquity. */
export function unrealizedPnl(
  portfolio: { positions: Readonly<Record<string, MarkedPosition>> },
  markSymbol?: string,
  markPrice?: number,
): number {
  let pnl = 0;
  for (const [symbol, p] of Object.entries(portfolio.positions)) {
    pnl += p.qty * (markOf(symbol, p, markSymbol, markPrice) - p.avgCost);
  }
  return pnl;
}
