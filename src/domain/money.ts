/**
 * Prices on US equity venues move in ticks: $0.01 at or above $1, $0.0001 below (Reg NMS Rule 612, the
 * sub-penny rule; Alpaca rejects sub-penny limit and stop prices at or above $1). Every price the venue
 * fills at and every limit/stop price sent to a broker is on the tick, so cash moves in whole cents for
 * whole-share fills and the ledger reconciles exactly.
 */

/** Tick size for a price. */
export function tickSize(price: number): number {
  return Math.abs(price) >= 1 ? 0.01 : 0.0001;
}

export type TickRounding = 'nearest' | 'down' | 'up';

/**
 * Round a price to its tick. Works in integer tick units (with a guard against binary noise such as
 * 16.088039999999996), so the result prints as the decimal a person would write.
 */
export function roundToTick(price: number, how: TickRounding = 'nearest'): number {
  if (!Number.isFinite(price)) return price;
  const tick = tickSize(price);
  const decimals = tick === 0.01 ? 2 : 4;
  const units = price / tick;
  const near = Math.round(units);
  // Within 1e-6 of a tick boundary is binary noise, not a real fraction of a tick.
  const onTick = Math.abs(units - near) < 1e-6;
  const n = onTick ? near : how === 'down' ? Math.floor(units) : how === 'up' ? Math.ceil(units) : near;
  // n ticks, as the decimal they print as. toFixed writes n·tick as the decimal n / 10^decimals (the product is within
  // |n|·2.3e-16 of it, far inside half a tick below 1e15 ticks) and Number parses it to the double nearest that
  // decimal: which is n / 10^decimals, one correctly rounded division of two exact integers. `+ 0` gives the +0
  // that "0.00" parses to where n is -0. The same doubles without formatting and parsing a string per price (a
  // backtest rounds every fill and its audit twice); test/unit/money.test.ts compares the two forms.
  if (Math.abs(n) < 1e15) return n / (decimals === 2 ? 100 : 10_000) + 0;
  return Number((n * tick).toFixed(decimals));
}

/**
 * A limit or stop price on the tick, rounded the way that never makes the order more aggressive than
 * the trader asked: a buy limit never rises, a sell limit never falls; a buy stop never triggers
 * earlier (never falls), a sell stop never triggers earlier (never rises).
 */
export function conservativeTick(price: number, side: 'buy' | 'sell', kind: 'limit' | 'stop'): number {
  const down = (side === 'buy') === (kind === 'limit');
  return roundToTick(price, down ? 'down' : 'up');
}

/** Dollars to whole cents, half away from zero, for display and cent-level comparisons. */
export function toCents(amount: number): number {
  return Math.sign(amount) * Math.round(Math.abs(amount) * 100 + 1e-9);
}
