import type { OhlcvBar } from '../../contracts/bar';
import * as orderModule from '../../contracts/order';
import type { Fill, OrderEventType, OrderRequest, OrderUpdate, Side } from '../../contracts/order';
import { SeededRandom } from '../random';
import * as moneyModule from '../money';
import { TradingAccount } from './account';
import * as fillModelModule from './fill-model';
import type {
  ExchangeAccount,
  ExchangePosition,
  OrderRejection,
  RejectCode,
  ResolvedExchangeOptions,
  SimulatedExchangeOptions,
  SimulatedOrder,
  SubmitResult,
} from './types';
import * as validationModule from './validation';
import * as workingOrderModule from './working-order';
import type { WorkingOrder } from './working-order';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. They run per bar and per order (docs/quant.md, "Run under tsx").
const { isTerminal } = orderModule;
const { roundToTick, toCents } = moneyModule;
const { barCapacity, commission, matchLimit, slipped, stopTriggerPrice, tradingDayOf, trailingStopLevel, withinLimit } =
  fillModelModule;
const { resolveExchangeOptions, validateBar, validateRequest } = validationModule;
const { detachedRejection, legClientOrderId, snapshotOf } = workingOrderModule;

/**
 * SimulatedExchange: a pure, bar-driven matching engine with a cash account (the paper venue).
 *
 * No I/O, no timers, no wall clock: time only advances through `onBar(bar)` and the `now` strings callers pass
 * to `submit`/`cancel` (used for createdAt/updatedAt and event timestamps). Given the same options (incl. seed),
 * the same bars and the same calls, it emits the same OrderUpdate stream, byte for byte.
 *
 * Invariants:
 * - No look-ahead: an order is first matched against the `latencyBars`-th bar of its symbol *after* the last bar
 *   known at submit time.
 * - A client order id names at most one order, forever (also after reject/cancel): re-submitting returns it.
 * - filledQty is cumulative and never exceeds qty; Σ fill.qty == filledQty; filledAvgPrice == Σ qty·price / Σ qty.
 * - Every fill has a unique, deterministic execution id `<brokerOrderId>-<n>` (n = 1, 2, … per order).
 * - Total shares filled per bar and symbol ≤ floor(volume × maxVolumePct), shared by all orders in time priority.
 * - Terminal orders (filled, canceled, expired, rejected) never change again.
 * - State is consistent before any listener is called; events are delivered in the order they happened.
 *
 * The fill rules are documented in docs/fill-model.md; the price arithmetic lives in fill-model.ts, the money
 * (cash, positions, buying power) in account.ts, input validation in validation.ts.
 */

export type OrderUpdateListener = (update: OrderUpdate) => void;

export class SimulatedExchange {
  readonly options: ResolvedExchangeOptions;
  private readonly rng: SeededRandom;
  /** All orders ever created, by broker order id, in creation order. */
  private readonly orders = new Map<string, WorkingOrder>();
  private readonly byClientId = new Map<string, WorkingOrder>();
  /** Non-terminal orders (including held bracket legs). */
  private readonly open = new Map<string, WorkingOrder>();
  private readonly listeners = new Set<OrderUpdateListener>();
  private readonly universe = new Set<string>();
  private readonly halted = new Set<string>();
  private readonly lastBars = new Map<string, OhlcvBar>();
  private readonly barCounts = new Map<string, number>();
  private readonly fillLog: Fill[] = [];
  private readonly tradingAccount: TradingAccount;
  private nextOrderNo = 1;
  private nextSeq = 1;
  private pending: OrderUpdate[] = [];

  constructor(options: SimulatedExchangeOptions = {}) {
    this.options = resolveExchangeOptions(options);
    this.rng = new SeededRandom(this.options.seed);
    this.tradingAccount = new TradingAccount(this.options, {
      lastClose: (symbol) => this.lastBars.get(symbol)?.close,
      openOrders: () => this.open.values(),
    });
    for (const s of this.options.symbols) this.universe.add(s);
  }

  // ------------------------------------------------------------------ events

  /** Subscribe to order updates. Returns an unsubscribe function. */
  onUpdate(listener: OrderUpdateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ------------------------------------------------------------------ orders

  /**
   * Submit an order at time `now` (ISO-8601). Validation, symbol, halt and funds checks happen synchronously:
   * a refused order is stored with status `rejected` (and a `rejected` event), otherwise it is `new` (a `new`
   * event) and works from the next eligible bar. Idempotent by clientOrderId.
   */
  submit(req: OrderRequest, now: string): SubmitResult {
    const clientOrderId = (req as Partial<OrderRequest> | null)?.clientOrderId;
    if (typeof clientOrderId === 'string') {
      const existing = this.byClientId.get(clientOrderId);
      if (existing) {
        const r: SubmitResult = { order: snapshotOf(existing), duplicate: true };
        if (existing.rejection) r.rejection = { ...existing.rejection };
        return r;
      }
    }
    const shapeError = validateRequest(req);
    if (shapeError !== null && (typeof clientOrderId !== 'string' || clientOrderId === '')) {
      // Without a usable client order id the order cannot be stored or looked up: refuse without a record.
      return {
        order: detachedRejection(req, now, shapeError),
        duplicate: false,
        rejection: { code: 'invalid_order', message: shapeError },
      };
    }
    const o = this.createOrder(req, now);
    const rejection: OrderRejection | null =
      shapeError !== null ? { code: 'invalid_order', message: shapeError } : this.venueChecks(o, req);
    if (rejection) {
      o.status = 'rejected';
      o.reason = rejection.message;
      o.rejection = rejection;
      this.emit('rejected', o, now);
      this.flush();
      return { order: snapshotOf(o), duplicate: false, rejection: { ...rejection } };
    }
    this.open.set(o.brokerOrderId, o);
    if (o.orderClass === 'bracket') this.createLegs(o, req, now);
    this.emit('new', o, now);
    this.flush();
    return { order: snapshotOf(o), duplicate: false };
  }

  /**
   * Cancel by client order id at time `now`. Idempotent: a terminal order is returned unchanged; null if unknown.
   * Cancelling a working bracket entry cancels its held legs (or, after a partial fill, releases them for the
   * filled quantity). Cancelling a filled bracket entry cancels its open legs.
   */
  cancel(clientOrderId: string, now: string): SimulatedOrder | null {
    const o = this.byClientId.get(clientOrderId);
    if (!o) return null;
    if (isTerminal(o.status)) {
      if (o.legs) {
        for (const leg of [o.legs.stopLoss, o.legs.takeProfit]) {
          if (!isTerminal(leg.status)) this.finish(leg, 'canceled', 'bracket canceled by client', now);
        }
      }
    } else {
      this.finish(o, 'canceled', 'canceled by client', now);
    }
    this.flush();
    return snapshotOf(o);
  }

  /** Expire every working day order whose trading day is `tradingDay` or earlier (an explicit session close). */
  expireDayOrders(tradingDay: string, now: string): OrderUpdate[] {
    for (const o of this.openInPriority()) {
      if (
        o.timeInForce === 'day' &&
        o.tradingDay !== undefined &&
        o.tradingDay <= tradingDay &&
        !isTerminal(o.status)
      ) {
        this.finish(o, 'expired', `day order expired at the close of ${o.tradingDay}`, now);
      }
    }
    return this.flush();
  }

  getOrder(clientOrderId: string): SimulatedOrder | null {
    const o = this.byClientId.get(clientOrderId);
    return o ? snapshotOf(o) : null;
  }

  getOrderByBrokerId(brokerOrderId: string): SimulatedOrder | null {
    const o = this.orders.get(brokerOrderId);
    return o ? snapshotOf(o) : null;
  }

  /** Orders in creation order. Bracket legs are listed on their own too (and nested under their entry). */
  listOrders(filter: { status?: 'open' | 'closed' | 'all'; symbol?: string } = {}): SimulatedOrder[] {
    const status = filter.status ?? 'all';
    const out: SimulatedOrder[] = [];
    for (const o of this.orders.values()) {
      if (filter.symbol !== undefined && o.symbol !== filter.symbol) continue;
      const term = isTerminal(o.status);
      if ((status === 'open' && term) || (status === 'closed' && !term)) continue;
      out.push(snapshotOf(o));
    }
    return out;
  }

  /** Every execution so far, in the order it happened (optionally for one client order id). */
  fills(clientOrderId?: string): Fill[] {
    const all =
      clientOrderId === undefined ? this.fillLog : this.fillLog.filter((f) => f.clientOrderId === clientOrderId);
    return all.map((f) => ({ ...f }));
  }

  // ------------------------------------------------------------------ venue state

  /** Stop trading a symbol: new orders are rejected (symbol_halted) and working orders do not fill. */
  halt(symbol: string): void {
    this.halted.add(symbol);
  }

  resume(symbol: string): void {
    this.halted.delete(symbol);
  }

  isHalted(symbol: string): boolean {
    return this.halted.has(symbol);
  }

  /** Configured symbols plus every symbol a bar was seen for. */
  knownSymbols(): string[] {
    return [...this.universe].sort();
  }

  lastBar(symbol: string): OhlcvBar | null {
    const b = this.lastBars.get(symbol);
    return b ? { ...b } : null;
  }

  // ------------------------------------------------------------------ account

  /** Cash, equity, buying power, P&L (account.ts: the money rules). */
  account(): ExchangeAccount {
    return this.tradingAccount.snapshot();
  }

  /** Open positions (non-zero qty), sorted by symbol. */
  positions(): ExchangePosition[] {
    return this.tradingAccount.positions();
  }

  position(symbol: string): ExchangePosition | null {
    return this.tradingAccount.position(symbol);
  }

  /** The signed position in `symbol`, 0 when flat (the backtester's per-bar audit: no view object). */
  positionQty(symbol: string): number {
    return this.tradingAccount.positionQty(symbol);
  }

  // ------------------------------------------------------------------ market data

  /**
   * Feed one bar. Bars of one symbol must arrive in time order; a bar with the same timestamp as the symbol's
   * last bar is a redelivery and is ignored (returns []). Returns the updates this bar caused (also delivered
   * to listeners).
   *
   * Per bar: (intraday) expire day orders of earlier sessions → match eligible orders in time priority under the
   * shared volume cap → (daily) expire day orders whose session this bar was.
   */
  onBar(bar: OhlcvBar): OrderUpdate[] {
    validateBar(bar);
    const symbol = bar.symbol;
    const prev = this.lastBars.get(symbol);
    if (prev) {
      if (bar.timestamp === prev.timestamp) return [];
      if (bar.timestamp < prev.timestamp) {
        throw new RangeError(`bar for ${symbol} at ${bar.timestamp} is older than the last one (${prev.timestamp})`);
      }
    }
    this.universe.add(symbol);
    const barNo = (this.barCounts.get(symbol) ?? 0) + 1;
    this.barCounts.set(symbol, barNo);
    this.lastBars.set(symbol, { ...bar });
    const day = tradingDayOf(bar.timestamp);

    if (this.options.barPeriod === 'intraday') {
      for (const o of this.openInPriority(symbol)) {
        if (o.timeInForce === 'day' && o.tradingDay !== undefined && o.tradingDay < day && !isTerminal(o.status)) {
          this.finish(o, 'expired', `day order expired at the close of ${o.tradingDay}`, bar.timestamp);
        }
      }
    }

    this.match(bar, barNo, day);

    if (this.options.barPeriod === 'daily') {
      for (const o of this.openInPriority(symbol)) {
        if (o.timeInForce === 'day' && o.tradingDay !== undefined && o.tradingDay <= day && !isTerminal(o.status)) {
          this.finish(o, 'expired', `day order expired at the close of ${o.tradingDay}`, bar.timestamp);
        }
      }
    }
    return this.flush();
  }

  // ================================================================== internals: matching

  private match(bar: OhlcvBar, barNo: number, day: string): void {
    const halted = this.halted.has(bar.symbol);
    const candidates = this.openInPriority(bar.symbol, bar).filter(
      (o) => o.status !== 'held' && barNo >= o.eligibleFromBar,
    );
    let capacity = barCapacity(bar, this.options.maxVolumePct);
    for (const o of candidates) {
      // An earlier order on this bar may have cancelled this one (OCO).
      if (isTerminal(o.status) || o.status === 'held') continue;
      if (o.timeInForce === 'day' && o.tradingDay === undefined) o.tradingDay = day;
      if (halted) {
        // No trading while halted. Day orders still expire with their session; ioc/fok cannot wait for a resume.
        if (o.timeInForce === 'ioc' || o.timeInForce === 'fok') {
          this.finish(o, 'canceled', `${o.timeInForce}: ${o.symbol} halted on the first eligible bar`, bar.timestamp);
        }
        continue;
      }

      const remaining = o.qty - o.filledQty;
      const price = this.executablePrice(o, bar);
      let filledNow = 0;
      if (price !== null && capacity > 0) {
        const guard = this.tradingAccount.fillGuard(o, Math.min(remaining, capacity), price);
        if (o.timeInForce === 'fok' && guard.qty < remaining) {
          const why =
            guard.qty < Math.min(remaining, capacity)
              ? guard.reason
              : `only ${Math.min(remaining, capacity)} of ${remaining} shares available on the bar`;
          this.finish(
            o,
            'canceled',
            `fok: cannot fill all ${remaining} shares on the first eligible bar (${why})`,
            bar.timestamp,
          );
          continue;
        }
        if (guard.qty > 0) {
          this.fill(o, guard.qty, price, bar);
          capacity -= guard.qty;
          filledNow = guard.qty;
        }
        if (guard.reason !== undefined && !isTerminal(o.status)) {
          this.finish(o, 'canceled', guard.reason, bar.timestamp);
          continue;
        }
      }
      if ((o.timeInForce === 'ioc' || o.timeInForce === 'fok') && !isTerminal(o.status)) {
        const why =
          price === null
            ? 'not marketable on the first eligible bar'
            : filledNow > 0
              ? 'unfilled remainder'
              : 'no volume left on the first eligible bar';
        this.finish(o, 'canceled', `${o.timeInForce}: ${why}`, bar.timestamp);
      }
    }
  }

  /**
   * The price this order can execute at on this bar (before the volume cap), or null. Advances trigger and
   * trailing state as a side effect: a stop that triggers stays triggered (it is now a market / limit order).
   */
  private executablePrice(o: WorkingOrder, bar: OhlcvBar): number | null {
    switch (o.type) {
      case 'market':
        return this.adverse(o.side, bar.open, bar);
      case 'limit':
        return this.limitExecution(o.side, o.limitPrice!, bar);
      case 'stop': {
        if (o.triggered) return this.adverse(o.side, bar.open, bar);
        const t = stopTriggerPrice(o.side, o.stopPrice!, bar);
        if (t === null) return null;
        o.triggered = true;
        return this.adverse(o.side, t, bar);
      }
      case 'stop_limit': {
        if (o.triggered) return this.limitExecution(o.side, o.limitPrice!, bar);
        const t = stopTriggerPrice(o.side, o.stopPrice!, bar);
        if (t === null) return null;
        o.triggered = true;
        // Marketable on trigger: fills at the trigger price (a limit order: no slippage, never beyond the limit).
        if (withinLimit(o.side, t, o.limitPrice!)) return t;
        // Gapped through the stop *and* the limit: triggered at the open, so the rest of the bar may still reach
        // the limit. Triggered intrabar beyond the limit: the path after the trigger is unknown → wait a bar.
        return t === bar.open ? this.limitExecution(o.side, o.limitPrice!, bar) : null;
      }
      case 'trailing_stop': {
        if (o.triggered) return this.adverse(o.side, bar.open, bar);
        if (o.hwm === undefined) o.hwm = bar.open;
        const stop = trailingStopLevel(o.side, o.hwm, o);
        o.stopPrice = stop;
        // Check against the stop as it stood *before* this bar: whether this bar's high (low) came before its
        // low (high) is unknown, and assuming it did would let the stop ratchet up and fill better than it may have.
        const t = stopTriggerPrice(o.side, stop, bar);
        if (t !== null) {
          o.triggered = true;
          return this.adverse(o.side, t, bar);
        }
        o.hwm = o.side === 'sell' ? Math.max(o.hwm, bar.high) : Math.min(o.hwm, bar.low);
        o.stopPrice = trailingStopLevel(o.side, o.hwm, o);
        return null;
      }
    }
  }

  private adverse(side: Side, price: number, bar: OhlcvBar): number {
    const jitter = this.options.slippageJitterBps > 0 ? this.rng.next() * this.options.slippageJitterBps : 0;
    return slipped(side, price, this.options.slippageBps + jitter, bar);
  }

  private limitExecution(side: Side, limitPrice: number, bar: OhlcvBar): number | null {
    const m = matchLimit(side, limitPrice, bar);
    switch (m.kind) {
      case 'open':
      case 'through':
        return m.price;
      case 'touch':
        return this.rng.chance(this.options.limitTouchFillProbability) ? m.price : null;
      case 'none':
        return null;
    }
  }

  private fill(o: WorkingOrder, qty: number, rawPrice: number, bar: OhlcvBar): void {
    const ticks = this.options.tickPrices;
    const price = ticks ? onTick(o, rawPrice) : rawPrice;
    const commissionDue = commission(qty, price, this.options.feePerShare, this.options.feeBps);
    // Brokers charge whole cents: the commission is rounded to the cent, so cash moves in cents.
    const fee = ticks ? toCents(commissionDue) / 100 : commissionDue;
    o.filledQty += qty;
    o.filledNotional += qty * price;
    o.fees += fee;
    o.executions += 1;
    o.updatedAt = bar.timestamp;
    o.status = o.filledQty === o.qty ? 'filled' : 'partially_filled';
    this.tradingAccount.applyFill(o.symbol, o.side, qty, price, fee);
    const fill: Fill = {
      executionId: `${o.brokerOrderId}-${o.executions}`,
      clientOrderId: o.clientOrderId,
      brokerOrderId: o.brokerOrderId,
      symbol: o.symbol,
      side: o.side,
      qty,
      price,
      fee,
      timestamp: bar.timestamp,
    };
    this.fillLog.push(fill);
    if (o.status === 'filled') this.open.delete(o.brokerOrderId);
    this.emit(o.status === 'filled' ? 'fill' : 'partial_fill', o, bar.timestamp, fill);

    // OCO: the first fill of either bracket leg cancels the other one.
    if (o.parent?.legs && o.executions === 1) {
      const sibling = o.legRole === 'take_profit' ? o.parent.legs.stopLoss : o.parent.legs.takeProfit;
      if (!isTerminal(sibling.status)) this.finish(sibling, 'canceled', `oco: ${o.legRole} leg filled`, bar.timestamp);
    }
    if (o.legs && o.status === 'filled') this.releaseLegs(o, bar.timestamp);
  }

  /** Move an order to a terminal status (not 'filled', which only `fill` sets) and run bracket consequences. */
  private finish(o: WorkingOrder, status: 'canceled' | 'expired', reason: string, now: string): void {
    o.status = status;
    o.reason = reason;
    o.updatedAt = now;
    this.open.delete(o.brokerOrderId);
    this.emit(status, o, now);
    if (o.legs) {
      // Entry ended: protect whatever was filled, or drop the legs if nothing was.
      if (o.filledQty > 0) this.releaseLegs(o, now);
      else {
        for (const leg of [o.legs.stopLoss, o.legs.takeProfit]) {
          if (!isTerminal(leg.status)) this.finish(leg, 'canceled', `bracket entry ${status} unfilled`, now);
        }
      }
    }
  }

  /** Activate held bracket legs for the entry's filled quantity, eligible from the next bar of the symbol. */
  private releaseLegs(entry: WorkingOrder, now: string): void {
    const nextBar = (this.barCounts.get(entry.symbol) ?? 0) + 1;
    for (const leg of [entry.legs!.stopLoss, entry.legs!.takeProfit]) {
      if (leg.status !== 'held') continue;
      leg.qty = entry.filledQty;
      leg.status = 'new';
      leg.eligibleFromBar = nextBar;
      leg.updatedAt = now;
      this.emit('new', leg, now);
    }
  }

  /**
   * Open orders (optionally of one symbol) in time priority. With a bar: when both legs of one bracket are live,
   * the stop-loss goes first (the intrabar path is unknown, so assume the adverse one) unless the bar *opens*
   * through the take-profit, which then is provably first.
   */
  private openInPriority(symbol?: string, bar?: OhlcvBar): WorkingOrder[] {
    if (this.open.size === 0) return []; // the usual case on a bar: nothing working
    const list = [...this.open.values()].filter((o) => symbol === undefined || o.symbol === symbol);
    return list.sort((a, b) => priorityKey(a, bar) - priorityKey(b, bar));
  }

  // ================================================================== internals: submit

  private createOrder(req: OrderRequest, now: string): WorkingOrder {
    const o: WorkingOrder = {
      seq: this.nextSeq++,
      brokerOrderId: this.nextBrokerOrderId(),
      clientOrderId: req.clientOrderId,
      symbol: String(req.symbol ?? ''),
      side: req.side,
      qty: req.qty,
      type: req.type,
      timeInForce: req.timeInForce,
      orderClass: req.orderClass ?? 'simple',
      status: 'new',
      filledQty: 0,
      filledNotional: 0,
      fees: 0,
      createdAt: now,
      updatedAt: now,
      eligibleFromBar: (this.barCounts.get(req.symbol) ?? 0) + this.options.latencyBars,
      triggered: false,
      executions: 0,
      shortQty: 0,
    };
    if ((o.type === 'limit' || o.type === 'stop_limit') && req.limitPrice !== undefined) o.limitPrice = req.limitPrice;
    if ((o.type === 'stop' || o.type === 'stop_limit') && req.stopPrice !== undefined) o.stopPrice = req.stopPrice;
    if (o.type === 'trailing_stop') {
      if (req.trailPrice !== undefined) o.trailPrice = req.trailPrice;
      else if (req.trailPercent !== undefined) o.trailPercent = req.trailPercent;
      const last = this.lastBars.get(o.symbol)?.close;
      if (last !== undefined && (o.trailPrice !== undefined || o.trailPercent !== undefined)) {
        // The water mark starts at the price when the order is accepted (the last close known).
        o.hwm = last;
        o.stopPrice = trailingStopLevel(o.side, last, o);
      }
    }
    this.orders.set(o.brokerOrderId, o);
    if (typeof o.clientOrderId === 'string' && o.clientOrderId !== '') this.byClientId.set(o.clientOrderId, o);
    return o;
  }

  private createLegs(entry: WorkingOrder, req: OrderRequest, now: string): void {
    const exit: Side = entry.side === 'buy' ? 'sell' : 'buy';
    const base = {
      symbol: entry.symbol,
      side: exit,
      qty: entry.qty,
      timeInForce: entry.timeInForce,
      orderClass: 'bracket' as const,
      status: 'held' as const,
      filledQty: 0,
      filledNotional: 0,
      fees: 0,
      createdAt: now,
      updatedAt: now,
      eligibleFromBar: Number.POSITIVE_INFINITY,
      triggered: false,
      executions: 0,
      shortQty: 0,
      parent: entry,
    };
    const sl = req.stopLoss!;
    const stopLoss: WorkingOrder = {
      ...base,
      seq: this.nextSeq++,
      brokerOrderId: this.nextBrokerOrderId(),
      clientOrderId: legClientOrderId(entry.clientOrderId, 'stop_loss'),
      type: sl.limitPrice !== undefined ? 'stop_limit' : 'stop',
      stopPrice: sl.stopPrice,
      legRole: 'stop_loss',
    };
    if (sl.limitPrice !== undefined) stopLoss.limitPrice = sl.limitPrice;
    const takeProfit: WorkingOrder = {
      ...base,
      seq: this.nextSeq++,
      brokerOrderId: this.nextBrokerOrderId(),
      clientOrderId: legClientOrderId(entry.clientOrderId, 'take_profit'),
      type: 'limit',
      limitPrice: req.takeProfit!.limitPrice,
      legRole: 'take_profit',
    };
    entry.legs = { takeProfit, stopLoss };
    for (const leg of [stopLoss, takeProfit]) {
      this.orders.set(leg.brokerOrderId, leg);
      this.byClientId.set(leg.clientOrderId, leg);
      this.open.set(leg.brokerOrderId, leg);
    }
  }

  /** Symbol, halt, market-data and (account.ts) funds checks (the request shape is already valid). */
  private venueChecks(o: WorkingOrder, req: OrderRequest): OrderRejection | null {
    if (!this.universe.has(o.symbol)) return rejection('unknown_symbol', `unknown symbol: ${o.symbol}`);
    if (this.halted.has(o.symbol)) return rejection('symbol_halted', `trading in ${o.symbol} is halted`);
    const last = this.lastBars.get(o.symbol)?.close;
    const needsMarket = o.type === 'market' || o.type === 'trailing_stop';
    if (needsMarket && last === undefined) return rejection('no_market_data', `no market price for ${o.symbol} yet`);

    if (o.orderClass === 'bracket') {
      for (const role of ['take_profit', 'stop_loss'] as const) {
        if (this.byClientId.has(legClientOrderId(o.clientOrderId, role))) {
          return rejection(
            'invalid_order',
            `bracket leg id ${legClientOrderId(o.clientOrderId, role)} is already in use`,
          );
        }
      }
      const basePrice = o.limitPrice ?? o.stopPrice ?? last;
      const tp = req.takeProfit!.limitPrice;
      const sl = req.stopLoss!.stopPrice;
      if (basePrice !== undefined) {
        const ok = o.side === 'buy' ? tp > basePrice && sl < basePrice : tp < basePrice && sl > basePrice;
        if (!ok) {
          return rejection(
            'invalid_order',
            `bracket ${o.side}: take_profit.limit_price ${tp} must be ${o.side === 'buy' ? 'above' : 'below'} and stop_loss.stop_price ${sl} ${o.side === 'buy' ? 'below' : 'above'} the base price ${basePrice}`,
          );
        }
      }
    }

    return this.tradingAccount.fundsCheck(o);
  }

  private nextBrokerOrderId(): string {
    return `${this.options.orderIdPrefix}-${String(this.nextOrderNo++).padStart(6, '0')}`;
  }

  // ================================================================== internals: snapshots and events

  private emit(event: OrderEventType, o: WorkingOrder, timestamp: string, fill?: Fill): void {
    const update: OrderUpdate = { event, order: snapshotOf(o), timestamp };
    if (fill) update.fill = { ...fill };
    this.pending.push(update);
  }

  /**
   * Deliver queued updates (state is already consistent). A throwing listener does not stop delivery to the
   * others; the first error is rethrown afterwards. Returns the delivered updates.
   */
  private flush(): OrderUpdate[] {
    const batch = this.pending;
    this.pending = [];
    let firstError: unknown;
    let failed = false;
    for (const u of batch) {
      for (const l of [...this.listeners]) {
        try {
          l(u);
        } catch (err) {
          if (!failed) {
            failed = true;
            firstError = err;
          }
        }
      }
    }
    if (failed) throw firstError;
    return batch;
  }
}

// ==================================================================== helpers

/**
 * Executions print on the tick ($0.01 at or above $1, $0.0001 below). Bar prices of adjusted historical
 * data carry more decimals, and slippage arithmetic adds binary noise (16.088039999999996): round against
 * the trader (a buyer pays up, a seller receives less), but never beyond the order's own limit, which is
 * on the tick itself.
 */
function onTick(o: WorkingOrder, price: number): number {
  const p = roundToTick(price, o.side === 'buy' ? 'up' : 'down');
  const limit = o.limitPrice;
  if (limit === undefined) return p;
  return o.side === 'buy' ? Math.min(p, roundToTick(limit, 'down')) : Math.max(p, roundToTick(limit, 'up'));
}

/** A time-priority key: a take-profit the bar opens through goes before its stop-loss (see openInPriority). */
function priorityKey(o: WorkingOrder, bar: OhlcvBar | undefined): number {
  return bar && o.legRole === 'take_profit' && matchLimit(o.side, o.limitPrice!, bar).kind === 'open'
    ? o.seq - 1.5
    : o.seq;
}

function rejection(code: RejectCode, message: string): OrderRejection {
  return { code, message };
}
