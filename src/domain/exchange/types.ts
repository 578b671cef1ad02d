import type { BrokerOrder, OrderClass } from '../../contracts/order';

/**
 * Public types of the simulated exchange. The order vocabulary itself (OrderRequest, BrokerOrder, OrderUpdate…)
 * lives in contracts/order.ts; this file adds only what is specific to the simulator.
 */

/**
 * How bars map to trading days, which decides when `day` orders expire (see docs/fill-model.md §Time in force):
 * - 'daily': one bar per session. A day order works for exactly one bar (its first eligible bar) and the
 *   unfilled remainder expires right after that bar is matched.
 * - 'intraday': many bars per session. A day order works for the trading day of its first eligible bar and
 *   expires when the first bar of a later trading day arrives for its symbol (or on `expireDayOrders`).
 * The trading day of a bar is the date part (first 10 characters) of its timestamp.
 */
export type BarPeriod = 'daily' | 'intraday';

/** Constructor options. Every knob has a default matching the SIM_* settings in src/config. */
export interface SimulatedExchangeOptions {
  /** Starting cash in dollars. Default 100_000 (STARTING_CASH). */
  startingCash?: number;
  /** Adverse slippage in basis points on market, stop and trailing-stop fills. Default 5 (SIM_SLIPPAGE_BPS). */
  slippageBps?: number;
  /**
   * Extra random adverse slippage, uniform in [0, slippageJitterBps] bps per fill, drawn from the seeded PRNG.
   * Default 0 (off: fills are fully deterministic without consuming random numbers).
   */
  slippageJitterBps?: number;
  /** Commission per share, dollars. Default 0.005 (SIM_FEE_PER_SHARE). */
  feePerShare?: number;
  /** Commission in basis points of fill notional. Default 0 (SIM_FEE_BPS). */
  feeBps?: number;
  /**
   * Share of each bar's volume this venue's orders may take in total (all orders on the symbol share it),
   * in (0, 1]. Larger orders fill partially across several bars. Default 0.1 (SIM_MAX_VOLUME_PCT).
   */
  maxVolumePct?: number;
  /**
   * Submission latency in bars, integer >= 1. An order submitted after bar N is first matched against bar
   * N + latencyBars: never against a bar already known at submit time (no look-ahead). Default 1.
   * (Wall-clock latency, SIM_LATENCY_MS, is modelled by SimulatedBroker as an async delay before submit.)
   */
  latencyBars?: number;
  /**
   * Probability that a resting limit order fills when the bar only *touches* its price (low == buy limit or
   * high == sell limit) without trading through it: a stand-in for unknown queue position. Default 1.
   * Values below 1 draw from the seeded PRNG.
   */
  limitTouchFillProbability?: number;
  /**
   * Buying-power headroom reserved for orders whose fill price is not capped by a limit (market, stop,
   * trailing stop), as a fraction of the reference price: Alpaca values market buys 2.5-4% above market.
   * Default 0.03.
   */
  marketOrderBufferPct?: number;
  /** PRNG seed (SIM_SEED). Same bars + same orders + same seed → identical event stream. Default 42. */
  seed?: number;
  /** Symbols accepted before any bar was seen for them. Symbols with bars are always known. Default []. */
  symbols?: readonly string[];
  /** Allow sells beyond the long position (short sales). Default false (RISK_ALLOW_SHORT). */
  allowShort?: boolean;
  /** See BarPeriod. Default 'daily'. */
  barPeriod?: BarPeriod;
  /**
   * Print executions on the US equity tick ($0.01 at or above $1, $0.0001 below), rounded against the
   * trader and never beyond a limit; commissions in whole cents. Default true. Off only to study the raw
   * bar-level fill arithmetic.
   */
  tickPrices?: boolean;
  /** Prefix of broker order ids (`<prefix>-000001`). Execution ids are `<brokerOrderId>-<n>`. Default 'SIM'. */
  orderIdPrefix?: string;
}

export type ResolvedExchangeOptions = Required<Omit<SimulatedExchangeOptions, 'symbols'>> & {
  symbols: readonly string[];
};

export const DEFAULT_EXCHANGE_OPTIONS: ResolvedExchangeOptions = {
  tickPrices: true,
  startingCash: 100_000,
  slippageBps: 5,
  slippageJitterBps: 0,
  feePerShare: 0.005,
  feeBps: 0,
  maxVolumePct: 0.1,
  latencyBars: 1,
  limitTouchFillProbability: 1,
  marketOrderBufferPct: 0.03,
  seed: 42,
  symbols: [],
  allowShort: false,
  barPeriod: 'daily',
  orderIdPrefix: 'SIM',
};

/**
 * Why the venue refused an order. Mirrors the broker error codes SimulatedBroker raises as BrokerRejectedError.
 * - invalid_order: malformed request (qty <= 0 or fractional, missing/invalid prices, bad bracket, bad TIF…).
 * - unknown_symbol: not in the configured universe and no bar ever seen.
 * - symbol_halted: trading halted via `halt(symbol)`.
 * - no_market_data: known symbol but no price to value a market-style order against.
 * - insufficient_buying_power: a buy (or short sale) needs more cash than is free.
 * - insufficient_qty: a sell exceeds the shares available (long position minus open sells) and shorting is off.
 */
export type RejectCode =
  | 'invalid_order'
  | 'unknown_symbol'
  | 'symbol_halted'
  | 'no_market_data'
  | 'insufficient_buying_power'
  | 'insufficient_qty';

export interface OrderRejection {
  code: RejectCode;
  message: string;
}

/** BrokerOrder plus simulator detail. Extra fields are optional, so it is assignable to BrokerOrder. */
export interface SimulatedOrder extends BrokerOrder {
  orderClass: OrderClass;
  trailPrice?: number;
  trailPercent?: number;
  /** Trailing stop: high-water mark (sells) or low-water mark (buys) the stop trails. */
  hwm?: number;
  /** Total commission charged on this order's fills so far. */
  feesPaid: number;
  /** Bracket legs: the entry order's client order id and this leg's role. */
  parentClientOrderId?: string;
  legRole?: 'take_profit' | 'stop_loss';
  legs?: SimulatedOrder[];
}

export interface SubmitResult {
  order: SimulatedOrder;
  /** True when the client order id was already known: `order` is the existing order, nothing new was created. */
  duplicate: boolean;
  /** Set when the order is (or, for a duplicate, was) rejected. */
  rejection?: OrderRejection;
}

export interface ExchangeAccount {
  cash: number;
  /** cash + Σ position qty × last close. */
  equity: number;
  /** Cash not committed: cash − short liability − reservations of open opening orders; never below 0. */
  buyingPower: number;
  /** Cash reserved by open buy orders (and short-opening sells). */
  reservedCash: number;
  longMarketValue: number;
  shortMarketValue: number;
  realizedPnl: number;
  feesPaid: number;
  tradingBlocked: boolean;
}

export interface ExchangePosition {
  symbol: string;
  /** Signed: negative is short. */
  qty: number;
  avgEntryPrice: number;
  /** Last close seen for the symbol. */
  lastPrice: number;
  marketValue: number;
  unrealizedPnl: number;
  realizedPnl: number;
}
