import type { OhlcvBar } from '../../contracts/bar';
import type { Side } from '../../contracts/order';

/**
 * Bar-level fill arithmetic, pure and side-effect free. The matching engine (simulated-exchange.ts) decides
 * *whether* an order is live on a bar; these functions decide *at what price* and *how much*.
 *
 * Bar path assumption: within a bar only the open is known to come first and the close last; the order in
 * which the high and low printed is unknown. So a price is "reached" on a bar when it lies in [low, high], a
 * gap is judged on the open, and anything that would need the intrabar path is resolved conservatively.
 */

const BPS = 10_000;

/** Price after adverse slippage (buys pay more, sells receive less), clamped into the bar's traded range. */
export function slipped(side: Side, price: number, slippageBps: number, bar: OhlcvBar): number {
  const f = slippageBps / BPS;
  const p = side === 'buy' ? price * (1 + f) : price * (1 - f);
  return clamp(p, bar.low, bar.high);
}

/**
 * Where a stop is triggered on this bar, or null if it is not.
 * Buy stop: triggers when the bar trades at or above the stop; sell stop: at or below.
 * A gap through the stop triggers at the open, which is worse than the stop (that is what a stop does in a gap).
 */
export function stopTriggerPrice(side: Side, stopPrice: number, bar: OhlcvBar): number | null {
  if (side === 'buy') {
    if (bar.open >= stopPrice) return bar.open;
    return bar.high >= stopPrice ? stopPrice : null;
  }
  if (bar.open <= stopPrice) return bar.open;
  return bar.low <= stopPrice ? stopPrice : null;
}

/** How a resting limit order meets a bar. */
export type LimitMatch =
  /** The open is already at or better than the limit: fills at the open (price improvement on a gap). */
  | { kind: 'open'; price: number }
  /** The bar trades through the limit (strictly beyond it): fills at the limit. */
  | { kind: 'through'; price: number }
  /** The bar only touches the limit: fills at the limit only if the queue would have reached us. */
  | { kind: 'touch'; price: number }
  | { kind: 'none' };

/** Buy limit: fills at or below the limit; sell limit: at or above. Never a price worse than the limit. */
export function matchLimit(side: Side, limitPrice: number, bar: OhlcvBar): LimitMatch {
  if (side === 'buy') {
    if (bar.open <= limitPrice) return { kind: 'open', price: bar.open };
    if (bar.low < limitPrice) return { kind: 'through', price: limitPrice };
    if (bar.low === limitPrice) return { kind: 'touch', price: limitPrice };
    return { kind: 'none' };
  }
  if (bar.open >= limitPrice) return { kind: 'open', price: bar.open };
  if (bar.high > limitPrice) return { kind: 'through', price: limitPrice };
  if (bar.high === limitPrice) return { kind: 'touch', price: limitPrice };
  return { kind: 'none' };
}

/** True when `price` is at or better than the limit for this side. */
export function withinLimit(side: Side, price: number, limitPrice: number): boolean {
  return side === 'buy' ? price <= limitPrice : price >= limitPrice;
}

/**
 * Trailing stop level from its water mark: sells trail below the high-water mark, buys above the low-water mark.
 * `trailPercent` is in percent (5 = 5%), as in Alpaca's trail_percent.
 */
export function trailingStopLevel(
  side: Side,
  waterMark: number,
  trail: { trailPrice?: number; trailPercent?: number },
): number {
  if (trail.trailPrice !== undefined)
    return side === 'sell' ? waterMark - trail.trailPrice : waterMark + trail.trailPrice;
  const pct = (trail.trailPercent ?? 0) / 100;
  return side === 'sell' ? waterMark * (1 - pct) : waterMark * (1 + pct);
}

/** Commission for one fill: per-share plus basis points of notional. No minimum, no rounding. */
export function commission(qty: number, price: number, feePerShare: number, feeBps: number): number {
  return qty * feePerShare + (qty * price * feeBps) / BPS;
}

/** Shares the venue may trade on this bar in total: floor(volume × maxVolumePct). */
export function barCapacity(bar: OhlcvBar, maxVolumePct: number): number {
  // The epsilon keeps e.g. 6139200 × 0.1 = 613919.99999… from losing a share to binary floating point.
  return Math.max(0, Math.floor(bar.volume * maxVolumePct + 1e-6));
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** Trading day of a timestamp: its date part (the CSV readers keep exchange-local dates). */
export function tradingDayOf(timestamp: string): string {
  return timestamp.slice(0, 10);
}
