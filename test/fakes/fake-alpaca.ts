import type { ServerResponse } from 'node:http';
import { isTerminal, type BrokerOrder, type OrderRequest, type OrderUpdate } from '../../src/contracts/order';
import { createLogger, type Logger } from '../../src/logging';
import { sleep } from '../../src/lib/sleep';
import { startAlpacaCompatServer, type AlpacaCompatServer } from '../../src/venue/alpaca-compat';
import type { AlpacaTradeUpdateMessage } from '../../src/adapters/brokers/alpaca/wire';
import { activityIdFor } from '../../src/venue/alpaca-compat/wire';
import {
  BrokerRejectedError,
  type Broker,
  type BrokerAccount,
  type BrokerExecution,
  type BrokerPosition,
  type ExecutionLog,
  type BrokerFee,
  type FeeLog,
} from '../../src/adapters/brokers/broker';

/**
 * A faithful fake of Alpaca's Trading API v2 for tests: the production Alpaca-compatible server
 * (src/venue/alpaca-compat) in front of a small deterministic in-memory engine, plus
 * fault injection. By default nothing fills by itself: tests call `fill()`. `marketFills(...)` makes
 * market orders fill on their own the way Alpaca's do in market hours (see MarketFillMode).
 *
 * Adversarial modes (all off by default; each is a method on FakeAlpaca unless noted):
 *  - fills:      marketFills({ when: 'after-accept', delayMs: 100 })  — market orders fill ~100 ms after acceptance;
 *                marketFills({ when: 'at-accept', response: 'filled' | 'new' }) — filled inside the POST, before
 *                its response (which shows the order filled, or as accepted before the fill);
 *                marketFills({ ..., parts: [1, 1] }) — partial fills (1 + 1 of 2);
 *                fill(cid, qty, price) — manual (partial) fill of any open order.
 *  - cancels:    engine.cancelsTakeMs(ms) — DELETE leaves the order pending_cancel for `ms` (as Alpaca does).
 *  - submits:    failNextPostAfterAccept('destroy' | '504' | '500' | 'hang') — the order exists, the response fails;
 *                hangNextPostThenFill(ms) — the POST response is held `ms` while the order exists and fills;
 *                delayNextResponse(ms, match) — any response late; rejectNext({status, code, message}).
 *  - 429s:       rateLimitNext(n, resetInSec); rateLimitFor(ms) — every request 429 for `ms` (a storm);
 *                rateLimitEvery(n, ms) — the n-th, 2n-th, ... request opens a `ms` 429 window;
 *                FakeAlpacaOptions.enforceRateLimit + rateLimitPerMinute — Alpaca's per-minute window.
 *                Every 429 has `{"code":42910000,"message":"rate limit exceeded"}` and X-Ratelimit-Limit /
 *                X-Ratelimit-Remaining / X-Ratelimit-Reset (epoch seconds), as Alpaca sends.
 *  - stream:     duplicateNextFillEvents(n), dropNextFillEvents(n), dropNextEvents(n, events?),
 *                reorderNextEvents(n, events?) — hold n messages and send them in reverse order;
 *                dropStream(), refuseStream(on), disconnectStreamOnNextEvent(event, refuseMs) — the
 *                connection dies just before that event (lost with everything until reconnection);
 *                replayMissedEvents(on).
 *  - activities: GET /v2/account/activities/FILL serves real-shaped FILL activities of every fill
 *                (executions()); FakeAlpacaOptions.feePerFill charges a fee per fill (not Alpaca's way, see
 *                that option); FakeAlpacaOptions.regulatoryFees + engine.endOfDay() charge Alpaca's real
 *                SEC/TAF fees on sells as FEE activities (GET /v2/account/activities/FEE).
 * Counters for assertions: requests, count(method, path), postsReceived, ordersCreated,
 * rateLimitedResponses, sentEvents.
 */

// ---------------------------------------------------------------------------------------------
// in-memory engine

interface Pos {
  qty: number;
  avgEntryPrice: number;
}

// pending_cancel: a fill can still race the cancel, as at Alpaca.
const OPEN_FOR_FILLS = new Set(['new', 'accepted', 'partially_filled', 'pending_new', 'pending_cancel']);

export interface FakeEngineOptions {
  startingCash?: number;
  /** Price used for market-order buying-power checks and position valuation until setPrice. Default 100. */
  defaultPrice?: number;
  /**
   * A fee charged per fill, in dollars (number, or a function of the fill). NOT what Alpaca does for
   * equities: they are commission-free and regulatory fees (SEC/TAF/CAT) are charged as separate FEE
   * activities at end of day, not per fill. This models a venue that does charge per execution (like
   * our simulated venue): the fee is deducted from cash and reported in the `fee` extension field of the
   * trade_updates fill event and of the FILL activity. Default: none (0), which is Alpaca's behaviour.
   */
  feePerFill?: number | ((fill: { side: 'buy' | 'sell'; qty: number; price: number }) => number);
  /**
   * Alpaca's real regulatory fees on sells: SEC (REG) $27.80 per $1,000,000 of principal and FINRA TAF
   * $0.000166 per share (at most $8.30 a trade). They are not per-fill amounts: they accrue during the day
   * and are charged at end of day, each rounded up to the cent, as FEE activities
   * (`GET /v2/account/activities/FEE`). Here `endOfDay()` charges what accrued (cash and FEE activities).
   * CAT fees (both sides, rate revised from time to time) are not modelled. Default false.
   */
  regulatoryFees?: boolean;
}

const SEC_FEE_PER_DOLLAR = 27.8 / 1_000_000;
const TAF_PER_SHARE = 0.000166;
const TAF_MAX_PER_TRADE = 8.3;
const ceilCent = (x: number) => Math.ceil(Math.round(x * 1e6) / 1e4) / 100;

/** How market orders fill by themselves (FakeAlpacaEngine.marketFills). */
export interface MarketFillMode {
  /**
   * 'after-accept': `delayMs` (default 100) after the order is accepted, like Alpaca's market orders in
   * market hours. 'at-accept': inside the POST, before its response is written.
   */
  when: 'after-accept' | 'at-accept';
  delayMs?: number;
  /** Split the fill into these quantities (e.g. [1, 1] of 2); the remainder, if any, fills last. */
  parts?: number[];
  /** Pause between parts (after-accept), ms. Default 20. */
  partGapMs?: number;
  /** 'at-accept' only: the POST response shows the order 'filled' (default) or still 'new' (taken before the fill). */
  response?: 'filled' | 'new';
  /** Fill price; default the symbol's price (setPrice / defaultPrice). */
  price?: number;
}

/** Minimal Alpaca-like order book: orders, fills, cash, positions, buying power, FILL activities. Implements Broker. */
export class FakeAlpacaEngine implements Broker, ExecutionLog, FeeLog {
  readonly name = 'alpaca' as const;
  /** Orders created (idempotent re-submits do not count). The number tests assert "exactly one order" on. */
  ordersCreated = 0;
  private readonly orders = new Map<string, BrokerOrder>();
  private readonly legIds = new Map<string, string[]>();
  private readonly parentOf = new Map<string, string>();
  private readonly positions = new Map<string, Pos>();
  private readonly prices = new Map<string, number>();
  private readonly listeners = new Set<(u: OrderUpdate) => void>();
  private cash: number;
  private seq = 0;
  private execSeq = 0;
  private readonly executionLog: BrokerExecution[] = [];
  private marketFillMode: MarketFillMode | ((order: BrokerOrder) => MarketFillMode | undefined) | undefined;
  private fillNextAcceptedAfterMs: number | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private pendingCancelMs = 0;
  private readonly accruedFees = new Map<string, { reg: number; taf: number; qty: number }>();
  /** FEE activities charged so far (regulatoryFees), oldest first; the compat server lists them (FeeLog). */
  readonly feeActivities: BrokerFee[] = [];
  tradingBlocked = false;

  constructor(private readonly opts: FakeEngineOptions = {}) {
    this.cash = opts.startingCash ?? 100_000;
  }

  setPrice(symbol: string, price: number): void {
    this.prices.set(symbol, price);
  }

  private priceOf(symbol: string): number {
    return this.prices.get(symbol) ?? this.positions.get(symbol)?.avgEntryPrice ?? this.opts.defaultPrice ?? 100;
  }

  private snapshot(o: BrokerOrder): BrokerOrder {
    const copy: BrokerOrder = { ...o };
    const legs = this.legIds.get(o.clientOrderId);
    if (legs) copy.legs = legs.map((id) => ({ ...this.orders.get(id)! }));
    return copy;
  }

  private emit(event: OrderUpdate['event'], o: BrokerOrder, fill?: OrderUpdate['fill']): void {
    const u: OrderUpdate = { event, order: this.snapshot(o), timestamp: new Date().toISOString() };
    if (fill) u.fill = fill;
    for (const l of [...this.listeners]) l(u);
  }

  private reservedBuyingPower(): number {
    let r = 0;
    for (const o of this.orders.values()) {
      if (o.side !== 'buy' || isTerminal(o.status) || this.parentOf.has(o.clientOrderId)) continue;
      r += (o.qty - o.filledQty) * (o.limitPrice ?? this.priceOf(o.symbol) * 1.03);
    }
    return r;
  }

  private buyingPower(): number {
    return Math.max(0, this.cash - this.reservedBuyingPower());
  }

  async submitOrder(req: OrderRequest): Promise<BrokerOrder> {
    const existing = this.orders.get(req.clientOrderId);
    if (existing) return this.snapshot(existing);
    if (!Number.isInteger(req.qty) || req.qty <= 0)
      throw new BrokerRejectedError('qty must be a positive integer', '40010001', 422);
    if ((req.type === 'limit' || req.type === 'stop_limit') && req.limitPrice === undefined) {
      throw new BrokerRejectedError('limit_price is required', '40010001', 422);
    }
    if (req.side === 'buy') {
      // Alpaca values market buys a few percent above the market for the check.
      const cost = req.qty * (req.limitPrice ?? this.priceOf(req.symbol) * 1.03);
      if (cost > this.buyingPower()) throw new BrokerRejectedError('insufficient buying power', '40310000', 403);
    }
    const now = new Date().toISOString();
    const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    const order: BrokerOrder = {
      brokerOrderId: id(++this.seq),
      clientOrderId: req.clientOrderId,
      symbol: req.symbol,
      side: req.side,
      qty: req.qty,
      type: req.type,
      timeInForce: req.timeInForce,
      status: 'new',
      filledQty: 0,
      filledAvgPrice: null,
      createdAt: now,
      updatedAt: now,
    };
    if (req.limitPrice !== undefined) order.limitPrice = req.limitPrice;
    if (req.stopPrice !== undefined) order.stopPrice = req.stopPrice;
    this.orders.set(order.clientOrderId, order);
    this.ordersCreated++;
    if (req.orderClass === 'bracket' && req.takeProfit && req.stopLoss) {
      const exit = req.side === 'buy' ? 'sell' : 'buy';
      const legId = (suffix: string) => {
        const c = `${req.clientOrderId}-${suffix}`;
        return c.length <= 48 ? c : `${order.brokerOrderId.slice(-12)}-${suffix}`;
      };
      const tp: BrokerOrder = {
        ...order,
        brokerOrderId: id(++this.seq),
        clientOrderId: legId('tp'),
        side: exit,
        type: 'limit',
        timeInForce: 'gtc',
        status: 'held',
        limitPrice: req.takeProfit.limitPrice,
      };
      delete tp.stopPrice;
      const sl: BrokerOrder = {
        ...order,
        brokerOrderId: id(++this.seq),
        clientOrderId: legId('sl'),
        side: exit,
        type: req.stopLoss.limitPrice !== undefined ? 'stop_limit' : 'stop',
        timeInForce: 'gtc',
        status: 'held',
        stopPrice: req.stopLoss.stopPrice,
      };
      delete sl.limitPrice;
      if (req.stopLoss.limitPrice !== undefined) sl.limitPrice = req.stopLoss.limitPrice;
      for (const leg of [tp, sl]) {
        this.orders.set(leg.clientOrderId, leg);
        this.parentOf.set(leg.clientOrderId, order.clientOrderId);
      }
      this.legIds.set(order.clientOrderId, [tp.clientOrderId, sl.clientOrderId]);
    }
    this.emit('new', order);
    const accepted = this.snapshot(order);
    const mode = typeof this.marketFillMode === 'function' ? this.marketFillMode(accepted) : this.marketFillMode;
    if (this.fillNextAcceptedAfterMs !== undefined) {
      const ms = this.fillNextAcceptedAfterMs;
      this.fillNextAcceptedAfterMs = undefined;
      this.later(ms, () => this.autoFill(order.clientOrderId, { when: 'after-accept' }));
    } else if (mode && order.type === 'market') {
      if (mode.when === 'at-accept') {
        await this.autoFill(order.clientOrderId, mode);
        return mode.response === 'new' ? accepted : this.snapshot(order);
      }
      this.later(mode.delayMs ?? 100, () => this.autoFill(order.clientOrderId, mode));
    }
    return accepted;
  }

  /**
   * Charge a fee outside any fill, as Alpaca does at end of day: cash goes down by `amount` (whole cents) and a
   * FEE activity lists it. Its id sorts after the day's fills, as a real end-of-day activity's does.
   */
  chargeFee(date: string, description: string, symbol: string | null, amount: number): void {
    this.cash -= amount;
    const seq = String(this.feeActivities.length + 1).padStart(8, '0');
    this.feeActivities.push({
      activityId: `${date.replace(/-/g, '')}235959999::fee-${seq}`,
      date,
      netAmount: -amount,
      description,
      symbol,
      cancelled: false,
    });
  }

  /**
   * The broker cancels a fee it charged (Alpaca lists the activity again with status `canceled`): its amount
   * goes back to cash.
   */
  cancelFee(activityId: string): void {
    const k = this.feeActivities.findIndex((f) => f.activityId === activityId);
    const fee = this.feeActivities[k];
    if (!fee || fee.cancelled) throw new Error(`no standing fee ${activityId}`);
    this.cash -= fee.netAmount;
    this.feeActivities[k] = { ...fee, cancelled: true };
  }

  /**
   * Close the trading day (regulatoryFees): charge each symbol's accrued REG and TAF, rounded up to the
   * cent, from cash and list them as FEE activities. Returns the total charged.
   */
  endOfDay(date = new Date().toISOString().slice(0, 10)): number {
    let total = 0;
    for (const [symbol, acc] of this.accruedFees) {
      for (const [kind, amount] of [
        ['REG', acc.reg],
        ['TAF', acc.taf],
      ] as const) {
        const charged = ceilCent(amount);
        if (charged <= 0) continue;
        total += charged;
        this.chargeFee(date, `${kind} fee`, symbol, charged);
      }
    }
    this.accruedFees.clear();
    return Math.round(total * 100) / 100;
  }

  /**
   * Market orders fill by themselves from now on (undefined: off, the default). A function chooses the mode
   * per accepted order (undefined: that order does not fill by itself), e.g. a seeded mix in the chaos test.
   */
  marketFills(mode: MarketFillMode | ((order: BrokerOrder) => MarketFillMode | undefined) | undefined): void {
    this.marketFillMode = mode;
  }

  /** Every top-level order the engine holds (open and closed; bracket legs are inside their parent). */
  allOrders(): BrokerOrder[] {
    return [...this.orders.values()].filter((o) => !this.parentOf.has(o.clientOrderId)).map((o) => this.snapshot(o));
  }

  /** The next accepted order (any type) fills in full `ms` after acceptance. */
  fillNextAccepted(ms: number): void {
    this.fillNextAcceptedAfterMs = ms;
  }

  private later(ms: number, fn: () => Promise<unknown>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn().catch(() => undefined); // the order may have been cancelled meanwhile: nothing to fill
    }, ms);
    this.timers.add(t);
  }

  private async autoFill(clientOrderId: string, mode: MarketFillMode): Promise<void> {
    const o = this.orders.get(clientOrderId);
    if (!o) return;
    const price = mode.price ?? this.priceOf(o.symbol);
    const parts = [...(mode.parts ?? [])];
    const rest = o.qty - o.filledQty - parts.reduce((a, b) => a + b, 0);
    if (rest > 0) parts.push(rest);
    const gap = mode.partGapMs ?? 20;
    for (const [i, q] of parts.entries()) {
      if (i > 0 && mode.when === 'after-accept') await sleep(gap);
      const cur = this.orders.get(clientOrderId)!;
      if (!OPEN_FOR_FILLS.has(cur.status)) return;
      await this.fill(clientOrderId, Math.min(q, cur.qty - cur.filledQty), price);
    }
  }

  async getOrderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null> {
    const o = this.orders.get(clientOrderId);
    return o ? this.snapshot(o) : null;
  }

  async cancelOrder(clientOrderId: string): Promise<BrokerOrder | null> {
    const o = this.orders.get(clientOrderId);
    if (!o) return null;
    if (isTerminal(o.status)) return this.snapshot(o);
    if (this.pendingCancelMs > 0 && o.status !== 'pending_cancel') {
      // Alpaca: DELETE is accepted (204) and the order goes pending_cancel → canceled asynchronously.
      o.status = 'pending_cancel';
      o.updatedAt = new Date().toISOString();
      this.emit('pending_cancel', o);
      this.later(this.pendingCancelMs, async () => {
        if (!isTerminal(o.status)) this.cancelNow(clientOrderId, o);
      });
      return this.snapshot(o);
    }
    this.cancelNow(clientOrderId, o);
    return this.snapshot(o);
  }

  /** DELETE leaves orders pending_cancel for `ms` before they are canceled (0: at once, the default). */
  cancelsTakeMs(ms: number): void {
    this.pendingCancelMs = ms;
  }

  private cancelNow(clientOrderId: string, o: BrokerOrder): void {
    this.finish(o, 'canceled');
    // Cancelling a bracket parent cancels its legs.
    for (const legId of this.legIds.get(clientOrderId) ?? []) {
      const leg = this.orders.get(legId)!;
      if (!isTerminal(leg.status)) this.finish(leg, 'canceled');
    }
  }

  /** Terminal transition without a fill (canceled / expired / rejected). */
  finish(o: BrokerOrder, status: 'canceled' | 'expired' | 'rejected'): void {
    o.status = status;
    o.updatedAt = new Date().toISOString();
    this.emit(status, o);
  }

  async expire(clientOrderId: string): Promise<void> {
    const o = this.orders.get(clientOrderId);
    if (o && !isTerminal(o.status)) this.finish(o, 'expired');
  }

  /** Execute `qty` shares of an open order at `price`. Emits partial_fill or fill with a fresh execution id. */
  async fill(clientOrderId: string, qty: number, price: number): Promise<OrderUpdate> {
    const o = this.orders.get(clientOrderId);
    if (!o) throw new Error(`fake-alpaca: no order ${clientOrderId}`);
    if (!OPEN_FOR_FILLS.has(o.status))
      throw new Error(`fake-alpaca: order ${clientOrderId} is ${o.status}, cannot fill`);
    const remaining = o.qty - o.filledQty;
    if (!(qty > 0) || qty > remaining) throw new Error(`fake-alpaca: fill qty ${qty} outside 1..${remaining}`);
    const prevNotional = (o.filledAvgPrice ?? 0) * o.filledQty;
    o.filledQty += qty;
    o.filledAvgPrice = (prevNotional + qty * price) / o.filledQty;
    o.status = o.filledQty === o.qty ? 'filled' : 'partially_filled';
    o.updatedAt = new Date().toISOString();
    const f = this.opts.feePerFill;
    const fee = typeof f === 'function' ? f({ side: o.side, qty, price }) : (f ?? 0);
    this.applyToBook(o.symbol, o.side, qty, price);
    this.cash -= fee;
    if (this.opts.regulatoryFees && o.side === 'sell') {
      const acc = this.accruedFees.get(o.symbol) ?? { reg: 0, taf: 0, qty: 0 };
      acc.reg += qty * price * SEC_FEE_PER_DOLLAR;
      acc.taf += Math.min(TAF_MAX_PER_TRADE, qty * TAF_PER_SHARE);
      acc.qty += qty;
      this.accruedFees.set(o.symbol, acc);
    }
    const fill = {
      executionId: `exec-${String(++this.execSeq).padStart(6, '0')}`,
      clientOrderId: o.clientOrderId,
      brokerOrderId: o.brokerOrderId,
      symbol: o.symbol,
      side: o.side,
      qty,
      price,
      fee,
      timestamp: o.updatedAt,
    };
    // Alpaca FILL activity: id `<timestamp digits>::<uuid>`; here the part after `::` is the stream's
    // execution id (an assumption of this fake — Alpaca does not document the link; match on cum_qty).
    this.executionLog.push({
      executionId: activityIdFor(o.updatedAt, fill.executionId),
      brokerOrderId: o.brokerOrderId,
      symbol: o.symbol,
      side: o.side,
      qty,
      price,
      cumQty: o.filledQty,
      leavesQty: o.qty - o.filledQty,
      orderStatus: o.status,
      timestamp: o.updatedAt,
      fee,
    });
    this.emit(o.status === 'filled' ? 'fill' : 'partial_fill', o, fill);
    // Bracket: entry filled → legs go live; one exit leg filled → the other is cancelled (OCO).
    if (o.status === 'filled') {
      for (const legId of this.legIds.get(clientOrderId) ?? []) {
        const leg = this.orders.get(legId)!;
        if (leg.status === 'held') {
          leg.status = 'new';
          leg.updatedAt = o.updatedAt;
          this.emit('new', leg);
        }
      }
    }
    const parent = this.parentOf.get(clientOrderId);
    if (parent) {
      for (const sibling of this.legIds.get(parent) ?? []) {
        const s = this.orders.get(sibling)!;
        if (sibling !== clientOrderId && !isTerminal(s.status)) this.finish(s, 'canceled');
      }
    }
    return {
      event: o.status === 'filled' ? 'fill' : 'partial_fill',
      order: this.snapshot(o),
      fill,
      timestamp: o.updatedAt,
    };
  }

  private applyToBook(symbol: string, side: 'buy' | 'sell', qty: number, price: number): void {
    const signed = side === 'buy' ? qty : -qty;
    this.cash -= signed * price;
    const p = this.positions.get(symbol) ?? { qty: 0, avgEntryPrice: 0 };
    const next = p.qty + signed;
    if (p.qty === 0 || Math.sign(p.qty) === Math.sign(signed)) {
      p.avgEntryPrice = (Math.abs(p.qty) * p.avgEntryPrice + qty * price) / Math.abs(next);
    } else if (Math.sign(next) !== Math.sign(p.qty) && next !== 0) {
      p.avgEntryPrice = price; // crossed through zero: the remainder opened at this price
    }
    p.qty = next;
    if (p.qty === 0) this.positions.delete(symbol);
    else this.positions.set(symbol, p);
    if (!this.prices.has(symbol)) this.prices.set(symbol, price);
  }

  async listExecutions(brokerOrderId: string): Promise<BrokerExecution[]> {
    return this.executionLog.filter((e) => e.brokerOrderId === brokerOrderId).map((e) => ({ ...e }));
  }

  async listAllFees(): Promise<BrokerFee[]> {
    return this.feeActivities.map((f) => ({ ...f }));
  }

  async listAllExecutions(): Promise<BrokerExecution[]> {
    return this.executionLog.map((e) => ({ ...e }));
  }

  streamHealthy(): boolean {
    return true;
  }

  watchOrder(_clientOrderId: string): void {}

  onOrderUpdate(listener: (u: OrderUpdate) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async listOpenOrders(): Promise<BrokerOrder[]> {
    const out: BrokerOrder[] = [];
    for (const o of this.orders.values()) {
      if (this.parentOf.has(o.clientOrderId)) continue;
      const legsOpen = (this.legIds.get(o.clientOrderId) ?? []).some((id) => !isTerminal(this.orders.get(id)!.status));
      if (!isTerminal(o.status) || legsOpen) out.push(this.snapshot(o));
    }
    return out;
  }

  async getAccount(): Promise<BrokerAccount> {
    let mv = 0;
    for (const [symbol, p] of this.positions) mv += p.qty * this.priceOf(symbol);
    return {
      cash: this.cash,
      equity: this.cash + mv,
      buyingPower: this.buyingPower(),
      tradingBlocked: this.tradingBlocked,
    };
  }

  async getPositions(): Promise<BrokerPosition[]> {
    return [...this.positions].map(([symbol, p]) => ({
      symbol,
      qty: p.qty,
      avgEntryPrice: p.avgEntryPrice,
      marketValue: p.qty * this.priceOf(symbol),
    }));
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.listeners.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// the fake server with fault injection

export interface FakeAlpacaOptions extends FakeEngineOptions {
  apiKey?: string;
  apiSecret?: string;
  /** trade_updates frames as binary (Alpaca paper) or text. Default true. */
  binaryFrames?: boolean;
  logger?: Logger;
  /** Advertised in X-Ratelimit-Limit; with enforceRateLimit, requests beyond it in a minute get 429. Default 200. */
  rateLimitPerMinute?: number;
  /** Enforce rateLimitPerMinute like Alpaca (fixed one-minute window). Default false (headers only). */
  enforceRateLimit?: boolean;
}

export interface RejectSpec {
  status: number;
  code: number | string;
  message: string;
  [extra: string]: unknown;
}

export type PostFailureMode = 'destroy' | '504' | '500' | 'hang';

export class FakeAlpaca {
  /** Every request that reached the server, in order. */
  readonly requests: Array<{ method: string; path: string }> = [];
  /** POST /v2/orders requests received (including ones answered with faults). */
  postsReceived = 0;
  /** Messages re-delivered to a reconnecting listener (replayMissedEvents). */
  replayedEvents = 0;
  /** 429 answers sent (all modes). */
  rateLimitedResponses = 0;
  private failPostMode: PostFailureMode | undefined;
  private delays: Array<{ ms: number; method?: string; path?: string }> = [];
  private rateLimit = { remaining: 0, resetInSec: 1 };
  private stormUntil = 0;
  private stormEvery: { n: number; ms: number } | undefined;
  private rejects: RejectSpec[] = [];
  private duplicateFills = 0;
  private dropFills = 0;
  private dropEvents: { n: number; events: string[] | undefined } = { n: 0, events: undefined };
  private reorder: { n: number; events: string[] | undefined; held: AlpacaTradeUpdateMessage[] } = {
    n: 0,
    events: undefined,
    held: [],
  };
  private disconnectOn: { event: string; refuseMs: number } | undefined;
  private refuseTimer: NodeJS.Timeout | undefined;
  private refusing = false;
  private replayMissed = false;
  private missed: AlpacaTradeUpdateMessage[] = [];
  private readonly hanging = new Set<ServerResponse>();
  /** Every trade_updates message the server sent (after fault injection), for assertions. */
  readonly sentEvents: AlpacaTradeUpdateMessage[] = [];

  private constructor(
    readonly engine: FakeAlpacaEngine,
    private server: AlpacaCompatServer | undefined,
  ) {}

  static async start(opts: FakeAlpacaOptions = {}): Promise<FakeAlpaca> {
    const engine = new FakeAlpacaEngine(opts);
    const fake = new FakeAlpaca(engine, undefined);
    fake.server = await startAlpacaCompatServer({
      broker: engine,
      port: 0,
      apiKey: opts.apiKey,
      apiSecret: opts.apiSecret,
      binaryFrames: opts.binaryFrames ?? true,
      logger: opts.logger ?? createLogger('fake-alpaca', { level: 'silent' }),
      ...(opts.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: opts.rateLimitPerMinute } : {}),
      ...(opts.enforceRateLimit !== undefined ? { enforceRateLimit: opts.enforceRateLimit } : {}),
      hooks: {
        onRequest: (ctx) => fake.onRequest(ctx.method, ctx.path, ctx.res),
        onResponse: (ctx) => fake.onResponse(ctx.method, ctx.path, ctx.status, ctx.res),
        onTradeUpdate: (m) => fake.onTradeUpdate(m),
        onStreamConnect: () => !fake.refusing,
        onStreamListening: (send) => {
          const replay = fake.missed;
          fake.missed = [];
          fake.replayedEvents += replay.length;
          for (const m of replay) send(m);
        },
      },
    });
    return fake;
  }

  private get srv(): AlpacaCompatServer {
    if (!this.server) throw new Error('fake-alpaca not started');
    return this.server;
  }

  get url(): string {
    return this.srv.url;
  }
  get streamUrl(): string {
    return this.srv.streamUrl;
  }
  /** Orders the engine created. */
  get ordersCreated(): number {
    return this.engine.ordersCreated;
  }
  listeningClients(): number {
    return this.srv.listeningClients();
  }

  // -- controls --------------------------------------------------------------------------------

  /** The next POST /v2/orders creates the order, then fails: socket destroyed, 504, 500, or no response at all. */
  failNextPostAfterAccept(mode: PostFailureMode = 'destroy'): void {
    this.failPostMode = mode;
  }
  /**
   * Hang, then fill: the next POST /v2/orders creates the order, the order fills in full `fillAfterMs`
   * later, and the response is only written after `hangMs` (set it past the client's timeout).
   */
  hangNextPostThenFill(hangMs: number, fillAfterMs = 50): void {
    this.engine.fillNextAccepted(fillAfterMs);
    this.delayNextResponse(hangMs, { method: 'POST', path: '/v2/orders' });
  }
  /** Market orders fill by themselves (see MarketFillMode; a function picks per order); undefined turns it off. */
  marketFills(mode: MarketFillMode | ((order: BrokerOrder) => MarketFillMode | undefined) | undefined): void {
    this.engine.marketFills(mode);
  }
  /** A 429 storm: every request for the next `ms` gets 429 with X-Ratelimit-Reset at the storm's end. */
  rateLimitFor(ms: number): void {
    this.stormUntil = Date.now() + ms;
  }
  /** Every n-th request (counting all) opens a `ms` window in which every request gets 429. Off: n = 0. */
  rateLimitEvery(n: number, ms: number): void {
    this.stormEvery = n > 0 ? { n, ms } : undefined;
  }
  /** The next `n` trade_updates messages (of these events, default any) are never sent. */
  dropNextEvents(n: number, events?: string[]): void {
    this.dropEvents = { n, events };
  }
  /** Hold the next `n` messages (of these events, default any) and send them in reverse order. */
  reorderNextEvents(n: number, events?: string[]): void {
    this.reorder = { n, events, held: [] };
  }
  /**
   * The stream connection dies just before the next message of `event` is sent: that message and all
   * until the client reconnects are lost. Reconnection is refused for `refuseMs` (0: reconnect at once).
   */
  disconnectStreamOnNextEvent(event: string, refuseMs = 0): void {
    this.disconnectOn = { event, refuseMs };
  }
  /** Every FILL activity the fake would serve, oldest first. */
  executions(): Promise<BrokerExecution[]> {
    return this.engine.listAllExecutions();
  }
  /** Delay the next response (optionally only for a method/path) by `ms`, after the broker acted. */
  delayNextResponse(ms: number, match: { method?: string; path?: string } = {}): void {
    this.delays.push({ ms, ...match });
  }
  /** The next `n` requests get 429 with X-Ratelimit-* headers resetting in `resetInSec`. Nothing is executed. */
  rateLimitNext(n: number, resetInSec: number): void {
    this.rateLimit = { remaining: n, resetInSec };
  }
  /** The next POST /v2/orders is refused with this status and body (`{code, message, ...extra}`); no order is created. */
  rejectNext(spec: RejectSpec): void {
    this.rejects.push(spec);
  }
  /** The next `n` fill/partial_fill messages are sent twice (Alpaca replays with the same execution_id). */
  duplicateNextFillEvents(n = 1): void {
    this.duplicateFills += n;
  }
  /** The next `n` fill/partial_fill messages are never sent (Alpaca's "missing fill event"). */
  dropNextFillEvents(n = 1): void {
    this.dropFills += n;
  }
  /** Kill every stream connection now (clients reconnect unless refuseStream). */
  dropStream(): void {
    this.srv.disconnectStreams();
  }
  /** Refuse (or allow again) new stream connections with HTTP 503. */
  refuseStream(on = true): void {
    this.refusing = on;
  }
  /** Keep messages sent while nobody listens and deliver them to the next listener (late/duplicate delivery). */
  replayMissedEvents(on = true): void {
    this.replayMissed = on;
  }
  /** Fill `qty` of an order at `price` (partial when qty < remaining). */
  async fill(clientOrderId: string, qty: number, price: number): Promise<OrderUpdate> {
    return this.engine.fill(clientOrderId, qty, price);
  }
  setPrice(symbol: string, price: number): void {
    this.engine.setPrice(symbol, price);
  }
  /** Requests received for a method + path. */
  count(method: string, path: string | RegExp): number {
    return this.requests.filter(
      (r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)),
    ).length;
  }

  async close(): Promise<void> {
    if (this.refuseTimer) clearTimeout(this.refuseTimer);
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    await this.srv.close();
    await this.engine.close();
  }

  // -- hooks -----------------------------------------------------------------------------------

  private onRequest(method: string, path: string, res: ServerResponse): boolean {
    this.requests.push({ method, path });
    const isPost = method === 'POST' && path === '/v2/orders';
    if (isPost) this.postsReceived++;
    const now = Date.now();
    if (this.stormEvery && this.requests.length % this.stormEvery.n === 0) {
      this.stormUntil = Math.max(this.stormUntil, now + this.stormEvery.ms);
    }
    let resetAtSec: number | undefined;
    if (now < this.stormUntil) resetAtSec = Math.ceil(this.stormUntil / 1000);
    else if (this.rateLimit.remaining > 0) {
      this.rateLimit.remaining--;
      resetAtSec = Math.floor(now / 1000) + this.rateLimit.resetInSec;
    }
    if (resetAtSec !== undefined) {
      // Nothing was executed: a 429 is answered before routing, as Alpaca's gateway does.
      this.rateLimitedResponses++;
      const body = JSON.stringify({ code: 42910000, message: 'rate limit exceeded' });
      res.writeHead(429, {
        'content-type': 'application/json',
        'X-Ratelimit-Limit': '200',
        'X-Ratelimit-Remaining': '0',
        'X-Ratelimit-Reset': String(resetAtSec),
      });
      res.end(body);
      return true;
    }
    if (isPost && this.rejects.length > 0) {
      const { status, ...body } = this.rejects.shift()!;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      return true;
    }
    return false;
  }

  private async onResponse(method: string, path: string, status: number, res: ServerResponse): Promise<boolean> {
    const i = this.delays.findIndex((d) => (!d.method || d.method === method) && (!d.path || d.path === path));
    if (i >= 0) {
      const [d] = this.delays.splice(i, 1);
      await sleep(d!.ms);
    }
    if (method === 'POST' && path === '/v2/orders' && status === 200 && this.failPostMode) {
      const mode = this.failPostMode;
      this.failPostMode = undefined;
      // The order exists at the venue now; the client just never learns it.
      if (mode === 'destroy') res.socket?.destroy();
      else if (mode === '504') {
        res.writeHead(504, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 50010000, message: 'gateway timeout' }));
      } else if (mode === '500') {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 50010000, message: 'internal server error' }));
      } else this.hanging.add(res);
      return true;
    }
    return false;
  }

  private onTradeUpdate(m: AlpacaTradeUpdateMessage): AlpacaTradeUpdateMessage[] {
    let out = [m];
    const event = m.data.event;
    const isFill = event === 'fill' || event === 'partial_fill';
    const matches = (events: string[] | undefined) => !events || events.includes(event);
    if (this.disconnectOn && this.disconnectOn.event === event) {
      const { refuseMs } = this.disconnectOn;
      this.disconnectOn = undefined;
      if (refuseMs > 0) {
        this.refusing = true;
        this.refuseTimer = setTimeout(() => {
          this.refusing = false;
        }, refuseMs);
      }
      this.srv.disconnectStreams();
    }
    if (this.dropEvents.n > 0 && matches(this.dropEvents.events)) {
      this.dropEvents.n--;
      out = [];
    } else if (this.reorder.n > 0 && matches(this.reorder.events)) {
      this.reorder.held.push(m);
      out = [];
      if (this.reorder.held.length >= this.reorder.n) {
        out = this.reorder.held.reverse();
        this.reorder = { n: 0, events: undefined, held: [] };
      }
    } else if (isFill && this.dropFills > 0) {
      this.dropFills--;
      out = [];
    } else if (isFill && this.duplicateFills > 0) {
      this.duplicateFills--;
      out = [m, m];
    }
    if (this.replayMissed && this.srv.listeningClients() === 0) this.missed.push(...out);
    this.sentEvents.push(...out);
    return out;
  }
}

/** Convenience: start a fake (see FakeAlpaca.start). */
export function startFakeAlpaca(opts: FakeAlpacaOptions = {}): Promise<FakeAlpaca> {
  return FakeAlpaca.start(opts);
}
