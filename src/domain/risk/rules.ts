import * as realizedVolatilityModule from '../indicators/realized-volatility';
import * as instantsModule from '../../contracts/instants';
import type { ExposureModel } from './exposure';
import type { RiskLimits } from './limits';
import type { RiskSignal } from './signal';
import type { SizingProposal } from './sizing';
import * as typesModule from './types';
import type { MarketContext, PortfolioSnapshot, RejectionCode, RiskCheck } from './types';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. They run per decision (docs/quant.md, "Run under tsx").
const { realizedVolatility } = realizedVolatilityModule;
const { instantMs } = instantsModule;
const { barsOfSymbol, signalKey } = typesModule;

/**
 * The engine's checks (docs/risk.md), in their documented order, and the per-decision context they measure.
 * engine.ts runs them: caps by binary search on `passes`, then every check recorded on the final quantity.
 */
/**
 * A check as the engine runs it. Capping checks must pass at quantity 0 and fail monotonically as it grows.
 *
 * `passes` is the verdict alone; `check` is the recorded check (value, limit, rule, detail), whose `passed` is
 * `passes` itself. The caps' binary search asks only `passes` (~15 quantities per cap per signal), so the
 * detail strings are formatted once per check, on the final quantity. The rules are module constants over a
 * per-decision context: building ~15 closures per decision (each named at run time under tsx) was most of the
 * engine's cost in a backtest.
 */
export interface Rule {
  name: string;
  code: RejectionCode;
  /** gate: independent of quantity. cap: passes for every quantity up to some maximum. */
  kind: 'gate' | 'cap';
  passes(c: RuleContext, qty: number): boolean;
  check(c: RuleContext, qty: number): Omit<RiskCheck, 'name' | 'code'>;
}

/** Relative tolerance for comparisons of floating-point money: exactly-at-limit must pass (or trip) reliably. */
const EPS = 1e-9;
const leq = (value: number, limit: number) => value <= limit + EPS * Math.max(1, Math.abs(limit));
const geq = (value: number, limit: number) => value >= limit - EPS * Math.max(1, Math.abs(limit));
/** Display rounding for recorded values (comparisons use the unrounded numbers). */
export const r6 = (n: number) => Math.round(n * 1e6) / 1e6;
const usd = (n: number) => `$${n.toFixed(2)}`;
const pct = (n: number) => `${(n * 100).toFixed(2)}%`;

/** The day's drawdown as a fraction of day-start equity; a non-positive start counts as fully drawn down. */
export function drawdown(dayStartEquity: number, equity: number): number {
  if (dayStartEquity > 0) return (dayStartEquity - equity) / dayStartEquity;
  return equity > 0 ? 0 : 1;
}

function toEpochMs(t: string | number | null | undefined): number | null {
  if (t === null || t === undefined) return null;
  const ms = typeof t === 'number' ? t : instantMs(t);
  return Number.isFinite(ms) ? ms : null;
}

/** Everything the rules measure, computed once per decision. */
export interface RuleContext {
  s: RiskSignal;
  portfolio: PortfolioSnapshot;
  limits: RiskLimits;
  m: ExposureModel;
  proposal: SizingProposal;
  cls: RiskLimits['assetClasses'][RiskSignal['assetClass']];
  equity: number;
  reducible: number;
  worstBefore: number;
  grossBefore: number;
  availableMarginBefore: number;
  marginBuffer: number;
  nowMs: number | null;
  sinceLast: number | null;
  vix: unknown;
  vixKnown: boolean;
  vixValid: boolean;
  vixOk: boolean;
  vol: number | null;
  volOk: boolean;
  dd: number;
  breakerTripped: boolean;
  marginCalled: boolean;
  maxPositionNotional: number;
  buyingPower: number;
  stressLimit: number;
}

export function ruleContext(
  s: RiskSignal,
  portfolio: PortfolioSnapshot,
  market: MarketContext,
  limits: RiskLimits,
  m: ExposureModel,
  proposal: SizingProposal,
): RuleContext {
  const equity = m.equity;
  const availableMarginBefore = m.availableMarginAfter(0);
  const marginBuffer = limits.marginCallPct * equity;
  // The cooldown runs on market time: the signal's own timestamp (its bar), so a fast replay of daily bars is
  // not a burst of duplicates. The decision time is the fallback for a signal without one.
  const nowMs = toEpochMs(s.createdAt ?? portfolio.asOf);
  const lastMs = toEpochMs(portfolio.lastSignalAt[signalKey(s.symbol, s.strategy)]);
  const vix = market.vix;
  const vixKnown = vix !== undefined && vix !== null;
  const vixValid = vixKnown && typeof vix === 'number' && Number.isFinite(vix) && vix >= 0;
  const vol = realizedVolatility(barsOfSymbol(market.recentBars, s.symbol), limits.realizedVolWindow, {
    session: s.assetClass,
    minReturns: limits.realizedVolMinReturns,
  });
  const dd = drawdown(portfolio.dayStartEquity, equity);
  const cls = limits.assetClasses[s.assetClass];
  return {
    s,
    portfolio,
    limits,
    m,
    proposal,
    cls,
    equity,
    reducible: m.reducibleQty,
    worstBefore: m.worstAfter(0),
    grossBefore: m.grossAfter(0),
    availableMarginBefore,
    marginBuffer,
    nowMs,
    sinceLast: nowMs !== null && lastMs !== null ? (nowMs - lastMs) / 1000 : null,
    vix,
    vixKnown,
    vixValid,
    vixOk: !vixKnown || (vixValid && leq(vix, limits.maxVix)),
    vol,
    volOk: vol === null || leq(vol, limits.maxRealizedVol),
    dd,
    breakerTripped: geq(dd, limits.circuitBreakerPct),
    marginCalled: !geq(availableMarginBefore, marginBuffer) || equity <= 0,
    maxPositionNotional: Math.max(0, equity) * cls.maxExposurePct,
    // Buying power: the margin the trade adds must leave available margin at or above the margin-call buffer.
    buyingPower: Math.max(0, availableMarginBefore - marginBuffer) * cls.leverageLimit,
    stressLimit: limits.stressThresholdPct * Math.max(0, equity),
  };
}

/** Does trading `qty` only shrink an existing position? (qty 0 trivially does.) */
const reduces = (c: RuleContext, qty: number) => qty <= c.reducible;
const reducingNote = (c: RuleContext, qty: number, breached: boolean) =>
  breached && qty > 0
    ? `; allowed: the trade only reduces the ${c.m.symbol.held > 0 ? 'long' : 'short'} position (${c.reducible} shares reducible)`
    : '';

export const RULES: readonly Rule[] = [
  // --- Who may trade at all -------------------------------------------------------------------------
  {
    name: 'trading_halted',
    code: 'trading_halted',
    kind: 'gate',
    passes: (c) => c.portfolio.tradingState !== 'HALTED',
    check(c) {
      return {
        passed: this.passes(c, 0),
        value: c.portfolio.tradingState,
        limit: 'HALTED',
        rule: 'value != limit',
        detail: c.portfolio.tradingState === 'HALTED' ? 'kill switch: trading is HALTED for this account' : undefined,
      };
    },
  },
  {
    name: 'reduce_only',
    code: 'reduce_only',
    kind: 'cap',
    passes: (c, qty) => c.portfolio.tradingState !== 'REDUCING' || reduces(c, qty),
    check(c, qty) {
      if (c.portfolio.tradingState !== 'REDUCING') {
        return {
          passed: this.passes(c, qty),
          value: qty,
          limit: null,
          rule: 'value <= limit (only in REDUCING)',
          detail: `trading state ${c.portfolio.tradingState}`,
        };
      }
      return {
        passed: this.passes(c, qty),
        value: qty,
        limit: c.reducible,
        rule: 'value <= limit (only in REDUCING)',
        detail: `trading state REDUCING: only trades that shrink an existing position (held ${c.m.symbol.held}, ${c.reducible} shares reducible by a ${c.s.side})`,
      };
    },
  },
  {
    name: 'duplicate_signal',
    code: 'duplicate_signal',
    kind: 'gate',
    passes: (c) =>
      c.limits.duplicateCooldownSec <= 0 || c.sinceLast === null || c.sinceLast >= c.limits.duplicateCooldownSec,
    check(c) {
      return {
        passed: this.passes(c, 0),
        value: c.sinceLast === null ? null : r6(c.sinceLast),
        limit: c.limits.duplicateCooldownSec,
        rule: 'value >= limit (seconds since the last approved signal of this symbol and strategy)',
        detail:
          c.sinceLast === null
            ? c.nowMs === null
              ? 'no signal or decision time known: cooldown not applied'
              : 'no earlier approved signal'
            : undefined,
      };
    },
  },

  // --- Market conditions (reduce-only when breached) -------------------------------------------------
  {
    name: 'extreme_volatility.vix',
    code: 'extreme_volatility',
    kind: 'cap',
    passes: (c, qty) => c.vixOk || reduces(c, qty),
    check(c, qty) {
      return {
        passed: this.passes(c, qty),
        value: c.vixKnown ? (c.vixValid ? (c.vix as number) : String(c.vix)) : null,
        limit: c.limits.maxVix,
        rule: 'value <= limit',
        detail: !c.vixKnown
          ? 'VIX unknown: not applied'
          : !c.vixValid
            ? 'VIX present but not a finite number >= 0: treated as extreme'
            : reducingNote(c, qty, !c.vixOk),
      };
    },
  },
  {
    name: 'extreme_volatility.realized',
    code: 'extreme_volatility',
    kind: 'cap',
    passes: (c, qty) => c.volOk || reduces(c, qty),
    check(c, qty) {
      return {
        passed: this.passes(c, qty),
        value: c.vol === null ? null : r6(c.vol),
        limit: c.limits.maxRealizedVol,
        rule: 'value <= limit (annualised realised volatility)',
        detail:
          c.vol === null
            ? `fewer than ${c.limits.realizedVolMinReturns} returns: not applied`
            : reducingNote(c, qty, !c.volOk),
      };
    },
  },

  // --- Signal quality ---------------------------------------------------------------------------------
  {
    name: 'low_confidence',
    code: 'low_confidence',
    kind: 'gate',
    passes: (c) => geq(c.s.confidence, c.limits.confidenceThreshold),
    check(c) {
      return {
        passed: this.passes(c, 0),
        value: c.s.confidence,
        limit: c.limits.confidenceThreshold,
        rule: 'value >= limit',
      };
    },
  },

  // --- Account health (reduce-only when breached) -----------------------------------------------------
  {
    name: 'circuit_breaker',
    code: 'circuit_breaker',
    kind: 'cap',
    passes: (c, qty) => !c.breakerTripped || reduces(c, qty),
    check(c, qty) {
      return {
        passed: this.passes(c, qty),
        value: r6(c.dd),
        limit: c.limits.circuitBreakerPct,
        rule: 'value < limit (daily drawdown vs day-start equity)',
        detail: `equity ${usd(c.equity)} vs day start ${usd(c.portfolio.dayStartEquity)}${reducingNote(c, qty, c.breakerTripped)}`,
      };
    },
  },
  {
    name: 'under_margin_call',
    code: 'under_margin_call',
    kind: 'cap',
    passes: (c, qty) => !c.marginCalled || reduces(c, qty),
    check(c, qty) {
      return {
        passed: this.passes(c, qty),
        value: r6(c.availableMarginBefore),
        limit: r6(c.marginBuffer),
        rule: 'value >= limit (available margin = equity − gross exposure / leverage limit, vs margin-call % of equity)',
        detail: `equity ${usd(c.equity)}, margin used ${usd(c.m.marginUsedAfter(0))}${reducingNote(c, qty, c.marginCalled)}`,
      };
    },
  },

  // --- Size --------------------------------------------------------------------------------------------
  {
    name: 'position_sizing',
    code: 'risk_budget_too_small',
    kind: 'gate',
    passes: (c) => c.proposal.proposedQty >= 1,
    check(c) {
      const p = c.proposal;
      return {
        passed: this.passes(c, 0),
        value: p.proposedQty,
        limit: 1,
        rule: 'value >= limit (shares the risk budget buys)',
        detail: `risk budget ${usd(p.riskBudget)} / stop distance ${usd(p.stopDistance)} (${p.method})${p.hint !== null ? `, hint ${p.hint}` : ''}`,
      };
    },
  },

  // --- Limits (caps; a trade that does not increase the measure always passes) -------------------------
  {
    name: 'short_not_allowed',
    code: 'short_not_allowed',
    kind: 'cap',
    passes: (c, qty) => c.limits.allowShort || qty === 0 || c.s.side === 'buy' || geq(c.m.lowestAfter(qty), 0),
    check(c, qty) {
      const lowest = c.m.lowestAfter(qty);
      if (c.limits.allowShort)
        return {
          passed: this.passes(c, qty),
          value: r6(lowest),
          limit: null,
          rule: 'shorting allowed',
          detail: 'RISK_ALLOW_SHORT=true',
        };
      return {
        passed: this.passes(c, qty),
        value: r6(lowest),
        limit: 0,
        rule: 'value >= limit (lowest position after every in-flight sell and this one)',
        detail: `held ${c.m.symbol.held}, in-flight sells ${c.m.symbol.reservedSell}`,
      };
    },
  },
  {
    name: 'over_position_limit',
    code: 'over_position_limit',
    kind: 'cap',
    passes: (c, qty) => {
      const after = c.m.worstAfter(qty);
      return leq(after, c.limits.maxPositionShares) || leq(after, c.worstBefore);
    },
    check(c, qty) {
      return {
        passed: this.passes(c, qty),
        value: r6(c.m.worstAfter(qty)),
        limit: c.limits.maxPositionShares,
        rule: 'value <= limit (worst-case |shares| after the trade, long or short)',
      };
    },
  },
  {
    name: 'exposure_limit_breach',
    code: 'exposure_limit_breach',
    kind: 'cap',
    passes: (c, qty) => {
      const after = c.m.worstAfter(qty) * c.s.price;
      return leq(after, c.maxPositionNotional) || leq(after, c.worstBefore * c.s.price);
    },
    check(c, qty) {
      return {
        passed: this.passes(c, qty),
        value: r6(c.m.worstAfter(qty) * c.s.price),
        limit: r6(c.maxPositionNotional),
        rule: `value <= limit (position notional vs ${pct(c.cls.maxExposurePct)} of equity for ${c.s.assetClass})`,
      };
    },
  },
  {
    name: 'leverage_limit_breach',
    code: 'leverage_limit_breach',
    kind: 'cap',
    passes: (c, qty) => {
      const gross = c.m.grossAfter(qty);
      return leq(gross, c.cls.leverageLimit * Math.max(0, c.equity)) || leq(gross, c.grossBefore);
    },
    check(c, qty) {
      const gross = c.m.grossAfter(qty);
      return {
        passed: this.passes(c, qty),
        value: c.equity > 0 ? r6(gross / c.equity) : null,
        limit: c.cls.leverageLimit,
        rule: `value <= limit (gross exposure / equity, ${c.s.assetClass} leverage limit)`,
        detail: `gross exposure ${usd(gross)}, equity ${usd(c.equity)}`,
      };
    },
  },
  {
    name: 'insufficient_buying_power',
    code: 'insufficient_buying_power',
    kind: 'cap',
    passes: (c, qty) => leq((c.m.worstAfter(qty) - c.worstBefore) * c.s.price, c.buyingPower),
    check(c, qty) {
      return {
        passed: this.passes(c, qty),
        value: r6((c.m.worstAfter(qty) - c.worstBefore) * c.s.price),
        limit: r6(c.buyingPower),
        rule: 'value <= limit (exposure the trade adds vs (available margin − margin-call buffer) × leverage)',
      };
    },
  },
  {
    name: 'max_order_notional',
    code: 'max_order_notional',
    kind: 'cap',
    passes: (c, qty) => leq(qty * c.s.price, c.limits.maxOrderNotional),
    check(c, qty) {
      return {
        passed: this.passes(c, qty),
        value: r6(qty * c.s.price),
        limit: c.limits.maxOrderNotional,
        rule: 'value <= limit (qty × price)',
      };
    },
  },
  {
    name: 'stress_test_fail',
    code: 'stress_test_fail',
    kind: 'cap',
    passes: (c, qty) => {
      const gross = c.m.grossAfter(qty);
      return leq(c.limits.stressDropPct * gross, c.stressLimit) || leq(gross, c.grossBefore);
    },
    check(c, qty) {
      return {
        passed: this.passes(c, qty),
        value: r6(c.limits.stressDropPct * c.m.grossAfter(qty)),
        limit: r6(c.stressLimit),
        rule: `value <= limit (loss if every position moves ${pct(c.limits.stressDropPct)} against us vs ${pct(c.limits.stressThresholdPct)} of equity)`,
      };
    },
  },
];
