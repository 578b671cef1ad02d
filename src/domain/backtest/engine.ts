import type { OhlcvBar } from '../../contracts/bar';
import * as idsModule from '../../contracts/ids';
import * as orderModule from '../../contracts/order';
import type { Fill, Side } from '../../contracts/order';
import * as exchangeModule from '../exchange';
import { SimulatedExchange, type SimulatedExchangeOptions } from '../exchange';
import * as riskModule from '../risk';
import type { PortfolioSnapshot, RiskLimits } from '../risk';
import type { Strategy, StrategyFactory } from '../strategies/types';
import * as moneyModule from '../money';
import * as metricsModule from './metrics';
import * as instantsModule from '../../contracts/instants';
import type { BacktestMetrics } from './metrics';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. They run per bar, per fill and per signal (docs/quant.md, "Run under tsx").
const { SignalIdPrefix } = idsModule;
const { isTerminal } = orderModule;
const { slipped } = exchangeModule.fillModel;
const { decide, barsNeeded, DEFAULT_RISK_LIMITS, signalKey } = riskModule;
const { roundToTick } = moneyModule;
const { computeMetrics } = metricsModule;
const { instantMs } = instantsModule;

/**
 * The backtester: the live path's pure parts, wired bar by bar with no I/O and no clock.
 *
 *   bar → SimulatedExchange.onBar (orders submitted earlier fill here: latency in bars, no look-ahead)
 *       → mark to market (equity = cash + Σ qty × close)
 *       → the strategy (the same objects the quant runs) → a signal (same signal id as live)
 *       → the risk engine (the same rules as `evaluate`, through `decide`: its verdict without the recorded checks;
 *         on a portfolio snapshot of the simulated account)
 *       → an approved order goes to the exchange as a market day order, to fill from the next bar on.
 *
 * Fees, slippage and partial fills are the simulated exchange's (the paper venue's fill model, docs/fill-model.md);
 * latency is `latencyBars`, modelled by time stepping, never by sleeping. Inventory and cash are the exchange's
 * account: a sell can only sell what is held (unless shorting is allowed), cash pays for every buy.
 *
 * Accounting invariants, checked at every bar (`audit`, on by default) to the cent, against a ledger kept here
 * from the fills alone:
 *  - cash + position value = equity;
 *  - fees: the sum of the fills' fees equals what the account was charged (each fee charged exactly once);
 *  - slippage: each market fill's price is the bar's open moved by the slippage once (clamped to the bar);
 *  - no position without a fill: every symbol's position equals the signed sum of its fills.
 * A violation throws AccountingError naming the bar and the figures.
 */

export interface BacktestOptions {
  /** Strategy factory (one instance per symbol). */
  strategy: StrategyFactory;
  startingCash?: number;
  exchange?: Omit<SimulatedExchangeOptions, 'startingCash' | 'symbols' | 'barPeriod'>;
  barPeriod?: 'daily' | 'intraday';
  limits?: RiskLimits;
  /** Check the accounting invariants at every bar (default true). */
  audit?: boolean;
  /** Bars (timestamps) before this index only warm the strategy up: signals there are not traded. */
  tradeFrom?: number;
  /** Called every `progressEvery` timestamps with (done, total). */
  onProgress?: (done: number, total: number) => void;
  progressEvery?: number;
}

export interface TradeRecord {
  /** Fill time (the bar it filled on). */
  timestamp: string;
  symbol: string;
  side: Side;
  qty: number;
  price: number;
  fee: number;
  /** qty × |price − bar open|: what slippage cost on this fill. */
  slippage: number;
  signalId: string;
}

export interface SignalRecord {
  timestamp: string;
  symbol: string;
  side: Side;
  confidence: number;
  signalId: string;
  decision: 'APPROVED' | 'REJECTED' | 'SKIPPED';
  reason: string;
  qty: number;
}

export interface BacktestResult {
  strategy: string;
  symbols: string[];
  startingCash: number;
  bars: number;
  /** One point per distinct timestamp. */
  timestamps: string[];
  equity: number[];
  cash: number[];
  /** Gross position value per timestamp. */
  exposure: number[];
  trades: TradeRecord[];
  signals: SignalRecord[];
  metrics: BacktestMetrics;
  final: { cash: number; equity: number; positions: Record<string, number>; feesPaid: number; slippage: number };
}

export class AccountingError extends Error {
  override readonly name = 'AccountingError';
}

const CENT = 0.005;

/** Merge per-symbol series into one time-ordered stream (ties: the order of `series`). */
export function mergeSeries(series: readonly (readonly OhlcvBar[])[]): OhlcvBar[] {
  const idx = series.map(() => 0);
  const out: OhlcvBar[] = [];
  for (;;) {
    let best = -1;
    for (let k = 0; k < series.length; k++) {
      const b = series[k]![idx[k]!];
      if (b && (best < 0 || b.timestamp < series[best]![idx[best]!]!.timestamp)) best = k;
    }
    if (best < 0) return out;
    out.push(series[best]![idx[best]!++]!);
  }
}

export function runBacktest(bars: readonly OhlcvBar[], opts: BacktestOptions): BacktestResult {
  const startingCash = opts.startingCash ?? 100_000;
  const limits = opts.limits ?? DEFAULT_RISK_LIMITS;
  const audit = opts.audit ?? true;
  const slippageBps = opts.exchange?.slippageBps ?? 5;
  const tickPrices = opts.exchange?.tickPrices ?? true;
  const symbols = [...new Set(bars.map((b) => b.symbol))];
  const exchange = new SimulatedExchange({
    ...opts.exchange,
    startingCash,
    symbols,
    barPeriod: opts.barPeriod ?? 'daily',
    orderIdPrefix: 'BT',
  });
  const keep = barsNeeded(limits);
  const strategies = new Map<string, Strategy>();
  /** Per symbol, the fixed part of its signal ids (the strategy's name and the symbol: the same ids as signalIdFor). */
  const signalIds = new Map<string, InstanceType<typeof SignalIdPrefix>>();
  /** Each symbol's recent bars for the risk engine, with their instants (parsed once, not per decision). */
  const recent = new Map<string, TimedBar[]>();
  const lastSignalAt: Record<string, string> = {};
  const orderSignal = new Map<string, string>();
  /** Our orders not yet filled, expired or cancelled: the reservations the risk engine must see. */
  const openOrders = new Set<string>();

  // The independent ledger the audit reconciles against.
  let ledgerCash = startingCash;
  let ledgerFees = 0;
  let slippageTotal = 0;
  const ledgerQty = new Map<string, number>();
  /** ledgerQty's keys in insertion order (its iteration order), walked without an entry array per symbol per bar. */
  const ledgerSymbols: string[] = [];
  const lastClose = new Map<string, number>();

  const timestamps: string[] = [];
  const equity: number[] = [];
  const cash: number[] = [];
  const exposure: number[] = [];
  const trades: TradeRecord[] = [];
  const signals: SignalRecord[] = [];
  let day = '';
  let dayStartEquity = startingCash;
  let tsIndex = -1;
  // Each bar's instant, parsed once: the risk engine's window takes it (TimedBar), and consecutive bars are told
  // apart by it before their timestamp strings are compared (sameTimestamp).
  const instants = new Float64Array(bars.length);
  for (let i = 0; i < bars.length; i++) instants[i] = instantMs(bars[i]!.timestamp);
  const totalTs = countTimestamps(bars, instants);
  const every = opts.progressEvery ?? 1000;
  let strategyName = '';

  for (let i = 0; i < bars.length; i++) {
    const bar = bars[i]!;
    const newTs = i === 0 || !sameTimestamp(bars, instants, i, i - 1);
    if (newTs) {
      tsIndex++;
      if (opts.onProgress && tsIndex % every === 0) opts.onProgress(tsIndex, totalTs);
      const d = bar.timestamp.slice(0, 10);
      if (d !== day) {
        day = d;
        dayStartEquity = tsIndex === 0 ? startingCash : equity[equity.length - 1]!;
      }
    }
    // 1. Orders submitted on earlier bars fill against this bar.
    for (const u of exchange.onBar(bar)) {
      if (isTerminal(u.order.status)) openOrders.delete(u.order.clientOrderId);
      if (!u.fill) continue;
      const f: Fill = u.fill;
      const notional = f.qty * f.price;
      ledgerCash += f.side === 'buy' ? -(notional + f.fee) : notional - f.fee;
      ledgerFees += f.fee;
      if (!ledgerQty.has(f.symbol)) ledgerSymbols.push(f.symbol);
      ledgerQty.set(f.symbol, (ledgerQty.get(f.symbol) ?? 0) + (f.side === 'buy' ? f.qty : -f.qty));
      const slip = f.qty * Math.abs(f.price - bar.open);
      slippageTotal += slip;
      if (audit) {
        // The venue prints on the tick, rounded against the trader (SimulatedExchange tickPrices, on by default).
        const raw = slipped(f.side, bar.open, slippageBps, bar);
        const expected = tickPrices ? roundToTick(raw, f.side === 'buy' ? 'up' : 'down') : raw;
        if (Math.abs(f.price - expected) > 1e-9 * expected) {
          throw new AccountingError(
            `${bar.timestamp} ${f.symbol}: fill at ${f.price}, expected the open ${bar.open} slipped once = ${expected}`,
          );
        }
      }
      trades.push({
        timestamp: f.timestamp,
        symbol: f.symbol,
        side: f.side,
        qty: f.qty,
        price: f.price,
        fee: f.fee,
        slippage: slip,
        signalId: orderSignal.get(f.clientOrderId) ?? '',
      });
    }
    lastClose.set(bar.symbol, bar.close);

    // 2. The strategy sees the completed bar.
    let strategy = strategies.get(bar.symbol);
    if (!strategy) {
      strategy = opts.strategy();
      strategyName = strategy.name;
      strategies.set(bar.symbol, strategy);
    }
    let hist = recent.get(bar.symbol);
    if (!hist) recent.set(bar.symbol, (hist = []));
    hist.push(timedBar(bar, instants[i]!));
    if (hist.length > keep * 2) hist.splice(0, hist.length - keep);
    const intent = strategy.onBar(bar);
    if (intent) {
      let ids = signalIds.get(bar.symbol);
      if (ids === undefined || ids.strategy !== strategy.name)
        signalIds.set(bar.symbol, (ids = new SignalIdPrefix(strategy.name, bar.symbol)));
      const signalId = ids.idFor(bar.timestamp);
      const record: SignalRecord = {
        timestamp: bar.timestamp,
        symbol: bar.symbol,
        side: intent.side,
        confidence: intent.confidence,
        signalId,
        decision: 'SKIPPED',
        reason: 'warm-up',
        qty: 0,
      };
      if (tsIndex >= (opts.tradeFrom ?? 0)) {
        // The engine's verdict without its record (decide: the same checks, caps and sizing as evaluate): a
        // backtest keeps only the decision, reason and quantity of each signal.
        const decision = decide(
          {
            symbol: bar.symbol,
            side: intent.side,
            price: bar.close,
            confidence: intent.confidence,
            strategy: strategy.name,
            asset_class: 'equity',
            created_at: bar.timestamp,
          },
          snapshot(exchange, symbols, openOrders, dayStartEquity, lastSignalAt, bar.timestamp),
          { recentBars: hist.slice(-keep) },
          limits,
        );
        record.decision = decision.decision;
        record.reason = decision.reasonCode;
        record.qty = decision.qty;
        if (decision.decision === 'APPROVED') {
          lastSignalAt[signalKey(bar.symbol, strategy.name)] = bar.timestamp;
          const clientOrderId = `${signalId}-bt`;
          const r = exchange.submit(
            {
              clientOrderId,
              symbol: bar.symbol,
              side: intent.side,
              qty: decision.qty,
              type: 'market',
              timeInForce: 'day',
            },
            bar.timestamp,
          );
          if (r.rejection) {
            record.decision = 'REJECTED';
            record.reason = `venue: ${r.rejection.code}`;
          } else {
            orderSignal.set(clientOrderId, signalId);
            if (!isTerminal(r.order.status)) openOrders.add(clientOrderId);
          }
        }
      }
      signals.push(record);
    }

    // 3. Mark to market once per timestamp (after its last bar) and audit.
    const lastOfTs = i === bars.length - 1 || !sameTimestamp(bars, instants, i + 1, i);
    if (!lastOfTs) continue;
    const acct = exchange.account();
    let gross = 0;
    let ledgerPositionValue = 0;
    for (let k = 0; k < ledgerSymbols.length; k++) {
      const sym = ledgerSymbols[k]!;
      const q = ledgerQty.get(sym)!;
      const px = lastClose.get(sym) ?? 0;
      ledgerPositionValue += q * px;
      gross += Math.abs(q * px);
    }
    if (audit) {
      if (Math.abs(acct.cash - ledgerCash) > CENT) auditFailure(bar, `cash ${acct.cash} != ledger cash ${ledgerCash}`);
      if (Math.abs(acct.feesPaid - ledgerFees) > CENT)
        auditFailure(bar, `fees charged ${acct.feesPaid} != Σ fill fees ${ledgerFees}`);
      if (Math.abs(acct.cash + ledgerPositionValue - acct.equity) > CENT) {
        auditFailure(bar, `cash ${acct.cash} + position value ${ledgerPositionValue} != equity ${acct.equity}`);
      }
      for (const sym of symbols) {
        const held = exchange.positionQty(sym);
        if (held !== (ledgerQty.get(sym) ?? 0))
          auditFailure(bar, `${sym}: position ${held} without matching fills (${ledgerQty.get(sym) ?? 0})`);
      }
    }
    timestamps.push(bar.timestamp);
    equity.push(acct.equity);
    cash.push(acct.cash);
    exposure.push(gross);
  }
  opts.onProgress?.(totalTs, totalTs);

  const acct = exchange.account();
  const positions: Record<string, number> = {};
  for (const p of exchange.positions()) positions[p.symbol] = p.qty;
  return {
    strategy: strategyName || (opts.strategy().name ?? ''),
    symbols,
    startingCash,
    bars: bars.length,
    timestamps,
    equity,
    cash,
    exposure,
    trades,
    signals,
    metrics: computeMetrics({ timestamps, equity, exposure, trades, startingCash }),
    final: { cash: acct.cash, equity: acct.equity, positions, feesPaid: acct.feesPaid, slippage: slippageTotal },
  };
}

/** A bar as the risk engine's window holds it: its own fields and its instant (VolatilityBar.timeMs). */
type TimedBar = OhlcvBar & { timeMs: number };

function timedBar(b: OhlcvBar, timeMs: number): TimedBar {
  return {
    symbol: b.symbol,
    timestamp: b.timestamp,
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volume: b.volume,
    timeMs,
  };
}

/** The audit's verdict on a bar (a function, not a closure per timestamp: the audit runs on every one). */
function auditFailure(bar: OhlcvBar, what: string): never {
  throw new AccountingError(`${bar.timestamp}: ${what}`);
}

function countTimestamps(bars: readonly OhlcvBar[], instants: Float64Array): number {
  let n = 0;
  for (let i = 0; i < bars.length; i++) if (i === 0 || !sameTimestamp(bars, instants, i, i - 1)) n++;
  return n;
}

/**
 * Do bars i and j carry the same timestamp string? Equal strings have equal instants (or are both unparseable), so
 * different instants answer without comparing the strings: consecutive bars of different times (every bar of a
 * single series) differ in a character near the end of two 24-character strings.
 */
function sameTimestamp(bars: readonly OhlcvBar[], instants: Float64Array, i: number, j: number): boolean {
  const a = instants[i]!;
  const b = instants[j]!;
  if (a === b || (a !== a && b !== b)) return bars[i]!.timestamp === bars[j]!.timestamp;
  return false;
}

/** The simulated account as the risk engine sees a ledger account. */
function snapshot(
  exchange: SimulatedExchange,
  symbols: readonly string[],
  openOrders: ReadonlySet<string>,
  dayStartEquity: number,
  lastSignalAt: Record<string, string>,
  asOf: string,
): PortfolioSnapshot {
  const positions: PortfolioSnapshot['positions'] = {};
  for (const sym of symbols) {
    const p = exchange.position(sym);
    if (p)
      (positions as Record<string, unknown>)[sym] = { qty: p.qty, avgCost: p.avgEntryPrice, lastPrice: p.lastPrice };
  }
  const reservations: PortfolioSnapshot['reservations'][number][] = [];
  for (const id of openOrders) {
    const o = exchange.getOrder(id);
    if (!o || isTerminal(o.status)) continue;
    const remaining = o.qty - o.filledQty;
    reservations.push({
      symbol: o.symbol,
      side: o.side,
      qty: remaining,
      notional: remaining * (o.limitPrice ?? exchange.lastBar(o.symbol)?.close ?? 0),
    });
  }
  return {
    cash: exchange.account().cash,
    positions,
    reservations,
    dayStartEquity,
    tradingState: 'ACTIVE',
    lastSignalAt,
    asOf,
  };
}
