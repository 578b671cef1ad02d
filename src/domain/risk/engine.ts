import * as exposureModule from './exposure';
import type { ExposureModel } from './exposure';
import type { RiskLimits } from './limits';
import * as rulesModule from './rules';
import type { Rule, RuleContext } from './rules';
import * as signalModule from './signal';
import type { RiskSignal } from './signal';
import * as sizingModule from './sizing';
import type { SizingProposal } from './sizing';
import type {
  MarketContext,
  PortfolioSnapshot,
  RejectionCode,
  RiskCheck,
  RiskDecision,
  RiskMetrics,
  SizingResult,
} from './types';

// Bound once, at load: run under tsx (as the workers, the backtest CLI and the benchmarks are), an ES module is
// compiled to CommonJS whose exports are getters, and a call through an import binding reads two of them each time
// (four through an index module), which V8 does not inline: esbuild's shared getter does a megamorphic
// `from[key]`. They run per decision (docs/quant.md, "Run under tsx").
const { exposureModel } = exposureModule;
const { drawdown, r6, ruleContext, RULES } = rulesModule;
const { validateRiskSignal } = signalModule;
const { proposeSize } = sizingModule;

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
  const { model, proposal, ctx, caps, finalQty, bindingLimit } = sizeAndCap(s, portfolio, market, limits, true);

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
  ];
  for (const rule of RULES) checks.push(recordedCheck(rule, rule.check(ctx, evalQty)));
  const v = verdict(checks.find((c) => !c.passed)?.code, finalQty, bindingLimit);
  const sizing: SizingResult = { ...proposal, caps, bindingLimit, finalQty };
  return {
    ...v,
    notional: r6(v.qty * s.price),
    checks,
    sizing,
    metrics: metricsFor(portfolio, model, v.qty),
  };
}

/**
 * The verdict of `evaluate` alone: the same validation, sizing, caps and checks in the same order, on the same
 * quantities, so the same decision, reason and quantity (a unit test compares the two on seeded portfolios).
 * What it leaves out is the record: the fifteen checks with their values and formatted details, the sizing
 * record and the metrics, which the trade workflow stores and the backtester, which keeps only the verdict of each
 * signal, never reads (building them was half of a backtest's risk-engine time).
 */
export function decide(
  signal: unknown,
  portfolio: PortfolioSnapshot,
  market: MarketContext,
  limits: RiskLimits,
): RiskVerdict {
  const validation = validateRiskSignal(signal);
  if (!validation.ok) return { decision: 'REJECTED', reasonCode: 'invalid_signal', qty: 0 };
  const { ctx, finalQty, bindingLimit } = sizeAndCap(validation.signal, portfolio, market, limits, false);
  const evalQty = finalQty > 0 ? finalQty : 1;
  return verdict(RULES.find((rule) => !rule.passes(ctx, evalQty))?.code, finalQty, bindingLimit);
}

/** Approved iff no check failed and the caps left at least one share; else the first failing check's code. */
function verdict(failed: RejectionCode | undefined, finalQty: number, bindingLimit: RejectionCode | null): RiskVerdict {
  const approved = failed === undefined && finalQty >= 1;
  return {
    decision: approved ? 'APPROVED' : 'REJECTED',
    // Unreachable fallback: with no failing check the caps left at least one share (see evalQty).
    reasonCode: approved ? 'approved' : (failed ?? bindingLimit ?? 'risk_budget_too_small'),
    qty: approved ? finalQty : 0,
  };
}

export interface RiskVerdict {
  decision: RiskDecision['decision'];
  reasonCode: RiskDecision['reasonCode'];
  qty: number;
}

/** Size, then cap: each capping check's largest passing quantity, measured independently against the proposal. */
function sizeAndCap(
  s: RiskSignal,
  portfolio: PortfolioSnapshot,
  market: MarketContext,
  limits: RiskLimits,
  recordCaps: boolean,
): {
  model: ExposureModel;
  proposal: SizingProposal;
  ctx: RuleContext;
  caps: Partial<Record<RejectionCode, number>>;
  finalQty: number;
  bindingLimit: RejectionCode | null;
} {
  const model = exposureModel(portfolio, s, limits);
  const proposal = proposeSize(s, model.equity, market.recentBars, limits);
  const ctx = ruleContext(s, portfolio, market, limits, model, proposal);
  const caps: Partial<Record<RejectionCode, number>> = {};
  let finalQty = proposal.proposedQty;
  let bindingLimit: RejectionCode | null = null;
  for (const rule of RULES) {
    if (rule.kind !== 'cap') continue;
    const cap = largestPassingQty(rule, ctx, proposal.proposedQty);
    if (recordCaps && cap < proposal.proposedQty) caps[rule.code] = Math.min(cap, caps[rule.code] ?? cap); // two volatility checks share a code
    if (cap < finalQty) {
      finalQty = cap;
      bindingLimit = rule.code;
    }
  }
  return { model, proposal, ctx, caps, finalQty, bindingLimit };
}

/**
 * The check as recorded: name and code first, then the rule's fields; JSON drops undefined anyway, and dropping
 * empty details here keeps stored and returned decisions identical.
 */
function recordedCheck(rule: Rule, r: Omit<RiskCheck, 'name' | 'code'>): RiskCheck {
  const check: RiskCheck = {
    name: rule.name,
    code: rule.code,
    passed: r.passed,
    value: r.value,
    limit: r.limit,
    rule: r.rule,
  };
  if (r.detail !== undefined && r.detail !== '') check.detail = r.detail;
  return check;
}

/** Largest q in [0, max] for which the (monotone) rule passes. Binary search: O(log max) evaluations. */
function largestPassingQty(rule: Rule, c: RuleContext, max: number): number {
  if (max <= 0 || rule.passes(c, max)) return Math.max(0, max);
  let lo = 0; // passes by contract
  let hi = max; // fails
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (rule.passes(c, mid)) lo = mid;
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
