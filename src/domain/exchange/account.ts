import * as orderModule from '../../contracts/order';
import type { Side } from '../../contracts/order';
import * as fillModelModule from './fill-model';
import type { ExchangeAccount, ExchangePosition, OrderRejection, ResolvedExchangeOptions } from './types';
import type { WorkingOrder } from './working-order';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. They run per fill and per order (docs/quant.md, "Run under tsx").
const { isTerminal } = orderModule;
const { commission } = fillModelModule;

/**
 * The venue's account: cash, positions with their average entry and realised P&L, fees paid, and the
 * buying-power arithmetic that decides whether an order may be placed (submit time) and how much of it may
 * fill (fill time).
 *
 * Money invariants:
 * - cash moves only by fills: a buy pays qty × price + fee, a sell receives qty × price − fee;
 * - buying power = cash + short market value − cash reserved by open orders, never below 0. A short sale's
 *   proceeds are cash, but the short's market value (negative) takes them back: a short is not free money;
 * - every open opening order reserves its worst plausible cost (reservation), so two orders can never both
 *   be accepted against the same dollars; exits (bracket legs) and ordinary sells reserve nothing;
 * - a sell never commits the same shares twice (open sells, an OCO pair once), and goes short only when
 *   shorting is allowed;
 * - at fill time a buy never spends more cash than the account holds (the gap between a reservation's
 *   reference price and the real fill price is cut there, not allowed to overdraw).
 */

interface PositionState {
  qty: number;
  avgEntryPrice: number;
  realizedPnl: number;
}

/** What the account needs to know of the rest of the venue. */
export interface AccountMarket {
  /** Last close of a symbol (the mark price), undefined before its first bar. */
  lastClose(symbol: string): number | undefined;
  /** Every non-terminal order, held bracket legs included. */
  openOrders(): Iterable<WorkingOrder>;
}

export class TradingAccount {
  private readonly positionStates = new Map<string, PositionState>();
  private cash: number;
  private realizedPnl = 0;
  private feesPaid = 0;

  constructor(
    private readonly options: ResolvedExchangeOptions,
    private readonly market: AccountMarket,
  ) {
    this.cash = options.startingCash;
  }

  /** Book one fill: cash, fees, and the position (average entry; P&L realised on the part that reduced it). */
  applyFill(symbol: string, side: Side, qty: number, price: number, fee: number): void {
    const signed = side === 'buy' ? qty : -qty;
    this.cash -= signed * price + fee;
    this.feesPaid += fee;
    const p = this.positionStates.get(symbol) ?? { qty: 0, avgEntryPrice: 0, realizedPnl: 0 };
    if (p.qty === 0 || Math.sign(p.qty) === Math.sign(signed)) {
      // Opening or adding: volume-weighted average entry.
      p.avgEntryPrice = (Math.abs(p.qty) * p.avgEntryPrice + qty * price) / (Math.abs(p.qty) + qty);
      p.qty += signed;
    } else {
      // Reducing, closing or flipping: realise P&L on the closed part at the average entry.
      const closing = Math.min(qty, Math.abs(p.qty));
      const pnl = closing * (price - p.avgEntryPrice) * Math.sign(p.qty);
      p.realizedPnl += pnl;
      this.realizedPnl += pnl;
      p.qty += signed;
      if (p.qty === 0) p.avgEntryPrice = 0;
      else if (Math.sign(p.qty) === Math.sign(signed)) p.avgEntryPrice = price; // flipped: the rest opened here
    }
    this.positionStates.set(symbol, p);
  }

  snapshot(): ExchangeAccount {
    let longMarketValue = 0;
    let shortMarketValue = 0;
    // Keys, then get: the same order as iterating entries, without an entry array per position per call (the
    // backtester asks for the account at every bar).
    for (const symbol of this.positionStates.keys()) {
      const p = this.positionStates.get(symbol)!;
      const mv = p.qty * this.markPrice(symbol, p);
      if (p.qty > 0) longMarketValue += mv;
      else shortMarketValue += mv;
    }
    const reservedCash = this.reservedCash();
    return {
      cash: this.cash,
      equity: this.cash + longMarketValue + shortMarketValue,
      buyingPower: Math.max(0, this.cash + shortMarketValue - reservedCash),
      reservedCash,
      longMarketValue,
      shortMarketValue,
      realizedPnl: this.realizedPnl,
      feesPaid: this.feesPaid,
      tradingBlocked: false,
    };
  }

  /** Open positions (non-zero qty), sorted by symbol. */
  positions(): ExchangePosition[] {
    const out: ExchangePosition[] = [];
    for (const symbol of [...this.positionStates.keys()].sort()) {
      const p = this.positionStates.get(symbol)!;
      if (p.qty !== 0) out.push(this.positionView(symbol, p));
    }
    return out;
  }

  /** The signed position in `symbol` (0 when flat): position(symbol)?.qty ?? 0 without building the view. */
  positionQty(symbol: string): number {
    return this.positionStates.get(symbol)?.qty ?? 0;
  }

  position(symbol: string): ExchangePosition | null {
    const p = this.positionStates.get(symbol);
    return p && p.qty !== 0 ? this.positionView(symbol, p) : null;
  }

  /**
   * Submit-time funds check (the request shape and the venue checks already passed): a sell must find the
   * shares (or, with shorting allowed, records how much of it opens a short in `o.shortQty`), and whatever
   * the order reserves must fit in buying power.
   */
  fundsCheck(o: WorkingOrder): OrderRejection | null {
    if (o.side === 'sell') {
      const held = this.heldQty(o.symbol);
      const available = Math.max(0, held - this.committedSellQty(o.symbol));
      if (o.qty > available) {
        if (!this.options.allowShort) {
          return {
            code: 'insufficient_qty',
            message: `insufficient qty available for order (requested: ${o.qty}, available: ${available})`,
          };
        }
        o.shortQty = o.qty - available;
      }
    }
    const need = this.reservation(o);
    if (need > 0) {
      const bp = this.snapshot().buyingPower;
      if (need > bp + 1e-9) {
        return {
          code: 'insufficient_buying_power',
          message: `insufficient buying power: order needs $${need.toFixed(2)}, buying power is $${bp.toFixed(2)}`,
        };
      }
    }
    return null;
  }

  /**
   * Cash-account guards at fill time: a buy never spends more cash than the account holds; a sell never goes
   * short unless shorting is allowed. `reason` is set when the guard cut the fill (the remainder is cancelled).
   */
  fillGuard(o: WorkingOrder, wanted: number, price: number): { qty: number; reason?: string } {
    if (o.side === 'buy') {
      const perShare = price + commission(1, price, this.options.feePerShare, this.options.feeBps);
      const affordable = Math.max(0, Math.floor(this.cash / perShare + 1e-9));
      if (affordable < wanted) {
        return {
          qty: affordable,
          reason: `insufficient buying power at fill time: cash $${this.cash.toFixed(2)} buys ${affordable} shares at ${price}`,
        };
      }
      return { qty: wanted };
    }
    if (!this.options.allowShort) {
      const held = this.heldQty(o.symbol);
      if (held < wanted)
        return { qty: held, reason: `insufficient qty at fill time: ${held} shares held, shorting disabled` };
    }
    return { qty: wanted };
  }

  /** Long shares held (0 when flat or short). */
  private heldQty(symbol: string): number {
    return Math.max(0, this.positionStates.get(symbol)?.qty ?? 0);
  }

  private markPrice(symbol: string, p: PositionState): number {
    return this.market.lastClose(symbol) ?? p.avgEntryPrice;
  }

  private positionView(symbol: string, p: PositionState): ExchangePosition {
    const lastPrice = this.markPrice(symbol, p);
    return {
      symbol,
      qty: p.qty,
      avgEntryPrice: p.avgEntryPrice,
      lastPrice,
      marketValue: p.qty * lastPrice,
      unrealizedPnl: p.qty * (lastPrice - p.avgEntryPrice),
      realizedPnl: p.realizedPnl,
    };
  }

  private reservedCash(): number {
    let sum = 0;
    for (const o of this.market.openOrders()) sum += this.reservation(o);
    return sum;
  }

  /**
   * Cash an open order holds back from buying power: remaining opening shares × reference price (+ the market
   * buffer when no limit caps the price) + estimated commission. Exits (bracket legs) and ordinary sells hold none.
   */
  private reservation(o: WorkingOrder): number {
    if (o.status === 'held' || isTerminal(o.status) || o.parent) return 0;
    const remaining = o.qty - o.filledQty;
    const shares = o.side === 'buy' ? remaining : Math.min(remaining, o.shortQty);
    if (shares <= 0) return 0;
    const ref = this.referencePrice(o);
    if (ref === null) return 0;
    return shares * ref + commission(shares, ref, this.options.feePerShare, this.options.feeBps);
  }

  /**
   * Price used to value an order for buying power; null if nothing is known. Limit-capped orders: the limit.
   * Otherwise the worse of last close and stop (a stop buys at or above its stop), plus the market buffer.
   * A short sale is valued like a buy: the reservation covers buying the shares back.
   */
  private referencePrice(o: WorkingOrder): number | null {
    if (o.type === 'limit' || o.type === 'stop_limit') return o.limitPrice!;
    const last = this.market.lastClose(o.symbol);
    const stop = o.type === 'stop' || o.type === 'trailing_stop' ? o.stopPrice : undefined;
    const candidates = [last, stop].filter((x): x is number => x !== undefined);
    if (candidates.length === 0) return null;
    return Math.max(...candidates) * (1 + this.options.marketOrderBufferPct);
  }

  /** Shares of `symbol` already committed to open sells (an active OCO pair counts once; held legs not at all). */
  private committedSellQty(symbol: string): number {
    let sum = 0;
    for (const o of this.market.openOrders()) {
      if (o.symbol !== symbol || o.side !== 'sell' || o.status === 'held') continue;
      if (o.legRole === 'take_profit' && o.parent && !isTerminal(o.parent.legs!.stopLoss.status)) continue;
      sum += o.qty - o.filledQty;
    }
    return sum;
  }
}
