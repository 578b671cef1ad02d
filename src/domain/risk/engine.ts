import { realizedVolatility } from '../indicators/realized-volatility';
import { exposureModel, type ExposureModel } from './exposure';
import type { RiskLimits } from './limits';
import { validateRiskSignal, type RiskSignal } from './signal';
import { proposeSize, type SizingProposal } from './sizing';
import {
  signalKey,
  type MarketContext,
  type PortfolioSnapshot,
  type RejectionCode,
  type RiskCheck,
  type RiskDecision,
  type RiskMetrics,
  type SizingResult,
} from './types';

/**
 * The pre-trade risk engine. Pure: no clock, no I/O, no randomness. The trade worker calls it inside a
 * locked ledger transaction (src/adapters/postgres/risk-store.ts); the backtester calls it directly.
 *
 * Order of work (docs/risk.md):
 * 1. Validate the signal (invalid_signal stops here: nothing else can be measured).
 * 2. Size: fixed-fractional proposal, cut by the quantity hint (sizing.ts).
 * 3. Cap: every quantity-dependent check allows the largest quantity that passes it; the final quantity is
 *    the smallest of those caps. Caps never raise a quantity.
 * 4. Check: every check is evaluated, in the documented order, on the final quantity (or on 1 share when
 *    the caps left nothing, so the binding limit shows the breach of even the smallest order).
 * 5. Decide: approved iff every check passes; otherwise the first failing check's code is the reason.
 *
 * Gates that guard against ADDING risk (volatility, circuit breaker, margin call) never block a trade that
 * only shrinks an existing position: blocking an exit makes the risk worse. They act as reduce-only caps.
 */

/** A check as the engine runs it. Capping checks must pass at quantity 0 and fail monotonically as it grows. */
interface Rule {
  name: string;
  code: RejectionCode;
  /** gate: independent of quantity. cap: passes for every quantity up to some maximum. */
  kind: 'gate' | 'cap';
  evaluate(qty: number): Omit<RiskCheck, 'name' | 'code'>;
}

/** Relative tolerance for comparisons of floating-point money: exactly-at-limit must pass (or trip) reliably. */
const EPS = 1e-9;
const leq = (value: number, limit: number) => value <= limit + EPS * Math.max(1, Math.abs(limit));
const geq = (value: number, limit: number) => value >= limit - EPS * Math.max(1, Math.abs(limit));
/** Display rounding for recorded values (comparisons use the unrounded numbers). */
const r6 = (n: number) => Math.round(n * 1e6) / 1e6;
const usd = (n: number) => `$${n.toFixed(2)}`;
const pct = (n: number) => `${(n * 100).toFixed(2)}%`;

export function evaluate(
  signal: unknown,
  portfolio: PortfolioSnapshot,
  market: MarketContext,
  limits: RiskLimits,
): RiskDecision {
  const validation = validateRiskSignal(signal);
  if (!validation.ok) {
    return {
      decision: 'REJECTED',
      reasonCode: 'invalid_signal',
      qty: 0,
      notional: 0,
      checks: [
        {
          name: 'invalid_signal',
          code: 'invalid_signal',
          passed: false,
          value: null,
          limit: null,
          rule: 'signal is well-formed',
          detail: validation.problems.join('; '),
        },
      ],
    };
  }
  const s = validation.signal;
  const model = exposureModel(portfolio, s, limits);
  const proposal = proposeSize(s, model.equity, market.recentBars, limits);
  const rules = buildRules(s, portfolio, market, limits, model, proposal);

  // Cap: each capping check's largest passing quantity, measured independently against the proposal.
  const caps: Partial<Record<RejectionCode, number>> = {};
  let finalQty = proposal.proposedQty;
  let bindingLimit: RejectionCode | null = null;
  for (const rule of rules) {
    if (rule.kind !== 'cap') continue;
    const cap = largestPassingQty(rule, proposal.proposedQty);
    if (cap < proposal.proposedQty) caps[rule.code] = Math.min(cap, caps[rule.code] ?? cap); // two volatility checks share a code
    if (cap < finalQty) {
      finalQty = cap;
      bindingLimit = rule.code;
    }
  }

  // Check on the final quantity; with nothing left, on one share, so the binding check records its breach.
  const evalQty = finalQty > 0 ? finalQty : 1;
  const checks: RiskCheck[] = [
    {
      name: 'invalid_signal',
      code: 'invalid_signal',
      passed: true,
      value: null,
      limit: null,
      rule: 'signal is well-formed',
    },
    ...rules.map((rule) => withoutEmptyDetail({ name: rule.name, code: rule.code, ...rule.evaluate(evalQty) })),
  ];
  const failed = checks.find((c) => !c.passed);
  const approved = failed === undefined && finalQty >= 1;
  const qty = approved ? finalQty : 0;
  const sizing: SizingResult = { ...proposal, caps, bindingLimit, finalQty };
  return {
    decision: approved ? 'APPROVED' : 'REJECTED',
    // Unreachable fallback: with no failing check the caps left at least one share (see evalQty).
    reasonCode: approved ? 'approved' : (failed?.code ?? bindingLimit ?? 'risk_budget_too_small'),
    qty,
    notional: r6(qty * s.price),
    checks,
    sizing,
    metrics: metricsFor(portfolio, model, qty),
  };
}

/** JSON drops undefined anyway; dropping empty details here keeps stored and returned decisions identical. */
function withoutEmptyDetail(check: RiskCheck): RiskCheck {
  if (check.detail !== undefined && check.detail !== '') return check;
  const { detail: _detail, ...rest } = check;
  return rest;
}

/** Largest q in [0, max] for which the (monotone) rule passes. Binary search: O(log max) evaluations. */
function largestPassingQty(rule: Rule, max: number): number {
  if (max <= 0 || rule.evaluate(max).passed) return Math.max(0, max);
  let lo = 0; // passes by contract
  let hi = max; // fails
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (rule.evaluate(mid).passed) lo = mid;
    else hi = mid;
  }
  return lo;
}

function metricsFor(portfolio: PortfolioSnapshot, m: ExposureModel, qty: number): RiskMetrics {
  const dayStart = portfolio.dayStartEquity;
  return {
    equity: r6(m.equity),
    dayStartEquity: r6(dayStart),
    drawdownPct: r6(drawdown(dayStart, m.equity)),
    grossExposureBefore: r6(m.grossAfter(0)),
    grossExposureAfter: r6(m.grossAfter(qty)),
    availableMarginBefore: r6(m.availableMarginAfter(0)),
    availableMarginAfter: r6(m.availableMarginAfter(qty)),
    positionBefore: r6(m.worstAfter(0)),
    positionAfter: r6(m.worstAfter(qty)),
  };
}

/** The day's drawdown as a fraction of day-start equity; a non-positive start counts as fully drawn down. */
function drawdown(dayStartEquity: number, equity: number): number {
  if (dayStartEquity > 0) return (dayStartEquity - equity) / dayStartEquity;
  return equity > 0 ? 0 : 1;
}

function toEpochMs(t: string | number | null | undefined): number | null {
  if (t === null || t === undefined) return null;
  const ms = typeof t === 'number' ? t : Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

function buildRules(
  s: RiskSignal,
  portfolio: PortfolioSnapshot,
  market: MarketContext,
  limits: RiskLimits,
  m: ExposureModel,
  proposal: SizingProposal,
): Rule[] {
  const cls = limits.assetClasses[s.assetClass];
  const equity = m.equity;
  const reducible = m.reducibleQty;
  /** Does trading `qty` only shrink an existing position? (qty 0 trivially does.) */
  const reduces = (qty: number) => qty <= reducible;
  const reducingNote = (qty: number, breached: boolean) =>
    breached && qty > 0
      ? `; allowed: the trade only reduces the ${m.symbol.held > 0 ? 'long' : 'short'} position (${reducible} shares reducible)`
      : '';
  const worstBefore = m.worstAfter(0);
  const grossBefore = m.grossAfter(0);
  const availableMarginBefore = m.availableMarginAfter(0);
  const marginBuffer = limits.marginCallPct * equity;

  const rules: Rule[] = [];

  // --- Who may trade at all -------------------------------------------------------------------------
  rules.push({
    name: 'trading_halted',
    code: 'trading_halted',
    kind: 'gate',
    evaluate: () => ({
      passed: portfolio.tradingState !== 'HALTED',
      value: portfolio.tradingState,
      limit: 'HALTED',
      rule: 'value != limit',
      detail: portfolio.tradingState === 'HALTED' ? 'kill switch: trading is HALTED for this account' : undefined,
    }),
  });

  rules.push({
    name: 'reduce_only',
    code: 'reduce_only',
    kind: 'cap',
    evaluate: (qty) => {
      if (portfolio.tradingState !== 'REDUCING') {
        return {
          passed: true,
          value: qty,
          limit: null,
          rule: 'value <= limit (only in REDUCING)',
          detail: `trading state ${portfolio.tradingState}`,
        };
      }
      return {
        passed: reduces(qty),
        value: qty,
        limit: reducible,
        rule: 'value <= limit (only in REDUCING)',
        detail: `trading state REDUCING: only trades that shrink an existing position (held ${m.symbol.held}, ${reducible} shares reducible by a ${s.side})`,
      };
    },
  });

  // The cooldown runs on market time: the signal's own timestamp (its bar), so a fast replay of daily bars is
  // not a burst of duplicates. The decision time is the fallback for a signal without one.
  const nowMs = toEpochMs(s.createdAt ?? portfolio.asOf);
  const lastMs = toEpochMs(portfolio.lastSignalAt[signalKey(s.symbol, s.strategy)]);
  const sinceLast = nowMs !== null && lastMs !== null ? (nowMs - lastMs) / 1000 : null;
  rules.push({
    name: 'duplicate_signal',
    code: 'duplicate_signal',
    kind: 'gate',
    evaluate: () => ({
      passed: limits.duplicateCooldownSec <= 0 || sinceLast === null || sinceLast >= limits.duplicateCooldownSec,
      value: sinceLast === null ? null : r6(sinceLast),
      limit: limits.duplicateCooldownSec,
      rule: 'value >= limit (seconds since the last approved signal of this symbol and strategy)',
      detail:
        sinceLast === null
          ? nowMs === null
            ? 'no signal or decision time known: cooldown not applied'
            : 'no earlier approved signal'
          : undefined,
    }),
  });

  // --- Market conditions (reduce-only when breached) -------------------------------------------------
  const vix = market.vix;
  const vixKnown = vix !== undefined && vix !== null;
  const vixValid = vixKnown && typeof vix === 'number' && Number.isFinite(vix) && vix >= 0;
  const vixOk = !vixKnown || (vixValid && leq(vix, limits.maxVix));
  rules.push({
    name: 'extreme_volatility.vix',
    code: 'extreme_volatility',
    kind: 'cap',
    evaluate: (qty) => ({
      passed: vixOk || reduces(qty),
      value: vixKnown ? (vixValid ? vix : String(vix)) : null,
      limit: limits.maxVix,
      rule: 'value <= limit',
      detail: !vixKnown
        ? 'VIX unknown: not applied'
        : !vixValid
          ? 'VIX present but not a finite number >= 0: treated as extreme'
          : reducingNote(qty, !vixOk),
    }),
  });

  const vol = realizedVolatility(
    (market.recentBars ?? []).filter((b) => b.symbol === undefined || b.symbol === s.symbol),
    limits.realizedVolWindow,
    { session: s.assetClass, minReturns: limits.realizedVolMinReturns },
  );
  const volOk = vol === null || leq(vol, limits.maxRealizedVol);
  rules.push({
    name: 'extreme_volatility.realized',
    code: 'extreme_volatility',
    kind: 'cap',
    evaluate: (qty) => ({
      passed: volOk || reduces(qty),
      value: vol === null ? null : r6(vol),
      limit: limits.maxRealizedVol,
      rule: 'value <= limit (annualised realised volatility)',
      detail:
        vol === null ? `fewer than ${limits.realizedVolMinReturns} returns: not applied` : reducingNote(qty, !volOk),
    }),
  });

  // --- Signal quality ---------------------------------------------------------------------------------
  rules.push({
    name: 'low_confidence',
    code: 'low_confidence',
    kind: 'gate',
    evaluate: () => ({
      passed: geq(s.confidence, limits.confidenceThreshold),
      value: s.confidence,
      limit: limits.confidenceThreshold,
      rule: 'value >= limit',
    }),
  });

  // --- Account health (reduce-only when breached) -----------------------------------------------------
  const dd = drawdown(portfolio.dayStartEquity, equity);
  const breakerTripped = geq(dd, limits.circuitBreakerPct);
  rules.push({
    name: 'circuit_breaker',
    code: 'circuit_breaker',
    kind: 'cap',
    evaluate: (qty) => ({
      passed: !breakerTripped || reduces(qty),
      value: r6(dd),
      limit: limits.circuitBreakerPct,
      rule: 'value < limit (daily drawdown vs day-start equity)',
      detail: `equity ${usd(equity)} vs day start ${usd(portfolio.dayStartEquity)}${reducingNote(qty, breakerTripped)}`,
    }),
  });

  const marginCalled = !geq(availableMarginBefore, marginBuffer) || equity <= 0;
  rules.push({
    name: 'under_margin_call',
    code: 'under_margin_call',
    kind: 'cap',
    evaluate: (qty) => ({
      passed: !marginCalled || reduces(qty),
      value: r6(availableMarginBefore),
      limit: r6(marginBuffer),
      rule: 'value >= limit (available margin = equity − gross exposure / leverage limit, vs margin-call % of equity)',
      detail: `equity ${usd(equity)}, margin used ${usd(m.marginUsedAfter(0))}${reducingNote(qty, marginCalled)}`,
    }),
  });

  // --- Size --------------------------------------------------------------------------------------------
  rules.push({
    name: 'position_sizing',
    code: 'risk_budget_too_small',
    kind: 'gate',
    evaluate: () => ({
      passed: proposal.proposedQty >= 1,
      value: proposal.proposedQty,
      limit: 1,
      rule: 'value >= limit (shares the risk budget buys)',
      detail: `risk budget ${usd(proposal.riskBudget)} / stop distance ${usd(proposal.stopDistance)} (${proposal.method})${proposal.hint !== null ? `, hint ${proposal.hint}` : ''}`,
    }),
  });

  // --- Limits (caps; a trade that does not increase the measure always passes) -------------------------
  rules.push({
    name: 'short_not_allowed',
    code: 'short_not_allowed',
    kind: 'cap',
    evaluate: (qty) => {
      const lowest = m.lowestAfter(qty);
      if (limits.allowShort)
        return {
          passed: true,
          value: r6(lowest),
          limit: null,
          rule: 'shorting allowed',
          detail: 'RISK_ALLOW_SHORT=true',
        };
      return {
        passed: qty === 0 || s.side === 'buy' || geq(lowest, 0),
        value: r6(lowest),
        limit: 0,
        rule: 'value >= limit (lowest position after every in-flight sell and this one)',
        detail: `held ${m.symbol.held}, in-flight sells ${m.symbol.reservedSell}`,
      };
    },
  });

  rules.push({
    name: 'over_position_limit',
    code: 'over_position_limit',
    kind: 'cap',
    evaluate: (qty) => {
      const after = m.worstAfter(qty);
      return {
        passed: leq(after, limits.maxPositionShares) || leq(after, worstBefore),
        value: r6(after),
        limit: limits.maxPositionShares,
        rule: 'value <= limit (worst-case |shares| after the trade, long or short)',
      };
    },
  });

  const maxPositionNotional = Math.max(0, equity) * cls.maxExposurePct;
  rules.push({
    name: 'exposure_limit_breach',
    code: 'exposure_limit_breach',
    kind: 'cap',
    evaluate: (qty) => {
      const after = m.worstAfter(qty) * s.price;
      return {
        passed: leq(after, maxPositionNotional) || leq(after, worstBefore * s.price),
        value: r6(after),
        limit: r6(maxPositionNotional),
        rule: `value <= limit (position notional vs ${pct(cls.maxExposurePct)} of equity for ${s.assetClass})`,
      };
    },
  });

  rules.push({
    name: 'leverage_limit_breach',
    code: 'leverage_limit_breach',
    kind: 'cap',
    evaluate: (qty) => {
      const gross = m.grossAfter(qty);
      return {
        passed: leq(gross, cls.leverageLimit * Math.max(0, equity)) || leq(gross, grossBefore),
        value: equity > 0 ? r6(gross / equity) : null,
        limit: cls.leverageLimit,
        rule: `value <= limit (gross exposure / equity, ${s.assetClass} leverage limit)`,
        detail: `gross exposure ${usd(gross)}, equity ${usd(equity)}`,
      };
    },
  });

  // Buying power: the margin the trade adds must leave available margin at or above the margin-call buffer.
  const buyingPower = Math.max(0, availableMarginBefore - marginBuffer) * cls.leverageLimit;
  rules.push({
    name: 'insufficient_buying_power',
    code: 'insufficient_buying_power',
    kind: 'cap',
    evaluate: (qty) => {
      const added = (m.worstAfter(qty) - worstBefore) * s.price;
      return {
        passed: leq(added, buyingPower),
        value: r6(added),
        limit: r6(buyingPower),
        rule: 'value <= limit (exposure the trade adds vs (available margin − margin-call buffer) × leverage)',
      };
    },
  });

  rules.push({
    name: 'max_order_notional',
    code: 'max_order_notional',
    kind: 'cap',
    evaluate: (qty) => ({
      passed: leq(qty * s.price, limits.maxOrderNotional),
      value: r6(qty * s.price),
      limit: limits.maxOrderNotional,
      rule: 'value <= limit (qty × price)',
    }),
  });

  const stressLimit = limits.stressThresholdPct * Math.max(0, equity);
  rules.push({
    name: 'stress_test_fail',
    code: 'stress_test_fail',
    kind: 'cap',
    evaluate: (qty) => {
      const gross = m.grossAfter(qty);
      const loss = limits.stressDropPct * gross;
      return {
        passed: leq(loss, stressLimit) || leq(gross, grossBefore),
        value: r6(loss),
        limit: r6(stressLimit),
        rule: `value <= limit (loss if every position moves ${pct(limits.stressDropPct)} against us vs ${pct(limits.stressThresholdPct)} of equity)`,
      };
    },
  });

  return rules;
}
