import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RISK_LIMITS,
  decide,
  evaluate,
  type AssetClass,
  type PortfolioSnapshot,
  type PositionSnapshot,
  type ReservationSnapshot,
  type RiskDecision,
  type RiskLimits,
} from '../../../src/domain/risk';
import { T0, flatBars, measure } from './helpers';

/**
 * Property tests over random portfolios. The post-trade state is recomputed by an independent
 * implementation (helpers.measure), never by the engine's own exposure code.
 */

const SYMBOLS = ['AAPL', 'MSFT', 'ES', 'BTC'] as const;
const CLASSES: AssetClass[] = ['equity', 'options', 'futures', 'crypto'];
const price = fc.integer({ min: 100, max: 100_000 }).map((cents) => cents / 100); // $1 .. $1000

const position: fc.Arbitrary<PositionSnapshot> = fc.record({
  qty: fc.integer({ min: -2000, max: 2000 }),
  avgCost: price,
  lastPrice: fc.option(price, { nil: null }),
  assetClass: fc.constantFrom(...CLASSES),
});

const reservation: fc.Arbitrary<ReservationSnapshot> = fc
  .record({
    symbol: fc.constantFrom(...SYMBOLS),
    side: fc.constantFrom('buy' as const, 'sell' as const),
    qty: fc.integer({ min: 1, max: 50 }),
    px: price,
  })
  .map(({ px, ...r }) => ({ ...r, notional: r.qty * px }));

/**
 * Cash is either random, or chosen so gross exposure / equity lands in [0.2, 3]: the band where the margin,
 * buying-power, leverage and stress limits bind, which uniformly random cash would rarely hit.
 */
const cashArb = fc.oneof(
  fc.integer({ min: -200_000, max: 400_000 }).map((cash) => () => cash),
  fc
    .double({ min: 0.2, max: 3, noNaN: true })
    .map((targetLeverage) => (positions: Record<string, PositionSnapshot>) => {
      let gross = 0;
      let marked = 0;
      for (const x of Object.values(positions)) {
        gross += Math.abs(x.qty) * (x.lastPrice ?? x.avgCost);
        marked += x.qty * (x.lastPrice ?? x.avgCost);
      }
      return gross > 0 ? gross / targetLeverage - marked : 100_000;
    }),
  // Available margin / equity in [0.05, 0.35]: around the margin-call buffer, where buying power binds.
  fc
    .double({ min: 0.05, max: 0.35, noNaN: true })
    .map((availablePct) => (positions: Record<string, PositionSnapshot>) => {
      let marginUsed = 0;
      let marked = 0;
      for (const x of Object.values(positions)) {
        const mark = x.lastPrice ?? x.avgCost;
        marginUsed +=
          (Math.abs(x.qty) * mark) / DEFAULT_RISK_LIMITS.assetClasses[x.assetClass ?? 'equity'].leverageLimit;
        marked += x.qty * mark;
      }
      return marginUsed > 0 ? marginUsed / (1 - availablePct) - marked : 100_000;
    }),
);

const portfolioArb: fc.Arbitrary<PortfolioSnapshot> = fc
  .record({
    cashFor: cashArb,
    positions: fc.dictionary(fc.constantFrom(...SYMBOLS), position, { maxKeys: 4 }),
    reservations: fc.array(reservation, { maxLength: 3 }),
    dayStartDelta: fc.double({ min: -0.06, max: 0.06, noNaN: true }),
    tradingState: fc.constantFrom('ACTIVE', 'ACTIVE', 'ACTIVE', 'ACTIVE', 'REDUCING', 'HALTED') as fc.Arbitrary<
      PortfolioSnapshot['tradingState']
    >,
    lastSecondsAgo: fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }),
  })
  .map(({ dayStartDelta, lastSecondsAgo, cashFor, ...p }) => {
    const cash = cashFor(p.positions);
    const equity = cash + Object.values(p.positions).reduce((a, x) => a + x.qty * (x.lastPrice ?? x.avgCost), 0);
    return {
      ...p,
      cash,
      dayStartEquity: Math.max(1, equity * (1 + dayStartDelta)),
      lastSignalAt: (lastSecondsAgo === undefined
        ? {}
        : { 'AAPL|s': new Date(Date.parse(T0) - lastSecondsAgo * 1000).toISOString() }) as Record<string, string>,
      asOf: T0,
    };
  });

interface SignalSpec {
  symbol: string;
  side: 'buy' | 'sell';
  price: number;
  confidence: number;
  asset_class: AssetClass;
  hint: number | undefined;
  stopPct: number | undefined;
}

const signalArb: fc.Arbitrary<SignalSpec> = fc.record({
  symbol: fc.constantFrom(...SYMBOLS),
  side: fc.constantFrom('buy' as const, 'sell' as const),
  price,
  confidence: fc.double({ min: 0.7, max: 1, noNaN: true }),
  asset_class: fc.constantFrom(...CLASSES),
  hint: fc.option(fc.integer({ min: 1, max: 5000 }), { nil: undefined }),
  stopPct: fc.option(fc.double({ min: 0.001, max: 0.3, noNaN: true }), { nil: undefined }),
});

/** A portfolio and a signal; half the time the signal is quoted at the position's own mark (no re-marking jump). */
const scenarioArb = fc.tuple(portfolioArb, signalArb, fc.boolean()).map(([pf, s, atMark]) => {
  const pos = pf.positions[s.symbol];
  return { pf, s: atMark && pos ? { ...s, price: pos.lastPrice ?? pos.avgCost } : s };
});

const limitsArb: fc.Arbitrary<RiskLimits> = fc
  .record({
    allowShort: fc.boolean(),
    // The default, anything up to 100 %, or effectively off (so the margin and leverage limits get to bind).
    stressThresholdPct: fc.oneof(fc.constant(0.05), fc.double({ min: 0.01, max: 1, noNaN: true }), fc.constant(10)),
    maxPositionShares: fc.integer({ min: 50, max: 3000 }),
    maxOrderNotional: fc.integer({ min: 1_000, max: 1_000_000 }),
    riskPerTradePct: fc.double({ min: 0.001, max: 0.05, noNaN: true }),
  })
  .map((o) => ({ ...DEFAULT_RISK_LIMITS, ...o }));

const marketArb = fc.record({
  vix: fc.option(fc.double({ min: 10, max: 35, noNaN: true }), { nil: undefined }),
  bars: fc.boolean(),
});

function toSignal(s: SignalSpec): Record<string, unknown> {
  const order: Record<string, unknown> = {};
  if (s.hint !== undefined) order.quantity_hint = s.hint;
  if (s.stopPct !== undefined) {
    const stop = s.side === 'buy' ? s.price * (1 - s.stopPct) : s.price * (1 + s.stopPct);
    order.stop_loss = { stop_price: stop };
    order.take_profit = { limit_price: s.side === 'buy' ? s.price * 2 : s.price / 2 };
  }
  return {
    signal_id: 'sig',
    correlation_id: 'c',
    symbol: s.symbol,
    side: s.side,
    price: s.price,
    confidence: s.confidence,
    strategy: 's',
    created_at: T0,
    asset_class: s.asset_class,
    ...(Object.keys(order).length ? { order } : {}),
  };
}

const tol = (x: number) => 1e-6 * Math.max(1, Math.abs(x));
const le = (a: number, b: number) => a <= b + tol(b);

/**
 * Re-check an approved decision from outside: apply it as one more in-flight trade and recompute every
 * limit. A trade that adds risk must leave every measure within its limit; a trade that adds none must
 * leave every exposure measure unchanged.
 */
function assertNoLimitBroken(
  pf: PortfolioSnapshot,
  s: SignalSpec,
  lim: RiskLimits,
  vix: number | undefined,
  d: RiskDecision,
): void {
  const cls = lim.assetClasses[s.asset_class];
  const before = measure(pf, s.symbol, s.price, s.asset_class, lim);
  const after = measure(
    {
      ...pf,
      reservations: [
        ...pf.reservations,
        { symbol: s.symbol, side: s.side, qty: d.qty, notional: d.notional, assetClass: s.asset_class },
      ],
    },
    s.symbol,
    s.price,
    s.asset_class,
    lim,
  );
  const equity = before.equity;
  const grows = after.worst > before.worst + 1e-9; // the trade adds risk
  expect(after.equity).toBeCloseTo(equity, 6);
  expect(pf.tradingState).not.toBe('HALTED');
  expect(s.confidence).toBeGreaterThanOrEqual(lim.confidenceThreshold);
  if (pf.tradingState === 'REDUCING') expect(grows).toBe(false);
  expect(le(d.qty * s.price, lim.maxOrderNotional)).toBe(true);
  if (!lim.allowShort && s.side === 'sell') expect(after.lowest).toBeGreaterThanOrEqual(0);
  if (grows) {
    expect(le(after.worst, lim.maxPositionShares)).toBe(true);
    expect(le(after.worst * s.price, cls.maxExposurePct * equity)).toBe(true);
    expect(le(after.gross, cls.leverageLimit * equity)).toBe(true);
    expect(le(lim.stressDropPct * after.gross, lim.stressThresholdPct * equity)).toBe(true);
    expect(le(lim.marginCallPct * equity, equity - before.marginUsed)).toBe(true); // not already under a margin call
    expect(le(lim.marginCallPct * equity, equity - after.marginUsed)).toBe(true); // and not put under one
    expect((pf.dayStartEquity - equity) / pf.dayStartEquity).toBeLessThan(lim.circuitBreakerPct);
    if (vix !== undefined) expect(vix).toBeLessThanOrEqual(lim.maxVix);
  } else {
    // A trade that adds nothing leaves every exposure measure where it was.
    expect(after.gross).toBeCloseTo(before.gross, 6);
    expect(after.marginUsed).toBeCloseTo(before.marginUsed, 6);
  }
}

/**
 * The margin band: other-symbol positions of mixed classes, cash chosen so available margin is 5–40 % of
 * equity, stress and order-size limits out of the way: where margin call, buying power and leverage bind.
 */
const marginBandArb = fc
  .record({
    positions: fc.dictionary(fc.constantFrom('MSFT', 'ES', 'BTC'), position, { minKeys: 1, maxKeys: 3 }),
    availablePct: fc.double({ min: 0.05, max: 0.4, noNaN: true }),
    s: signalArb,
  })
  .map(({ positions, availablePct, s }) => {
    let marginUsed = 0;
    let marked = 0;
    for (const x of Object.values(positions)) {
      const mark = x.lastPrice ?? x.avgCost;
      marginUsed += (Math.abs(x.qty) * mark) / DEFAULT_RISK_LIMITS.assetClasses[x.assetClass ?? 'equity'].leverageLimit;
      marked += x.qty * mark;
    }
    const equity = marginUsed > 0 ? marginUsed / (1 - availablePct) : 100_000;
    const pf: PortfolioSnapshot = {
      cash: equity - marked,
      positions,
      reservations: [],
      dayStartEquity: equity,
      tradingState: 'ACTIVE',
      lastSignalAt: {},
      asOf: T0,
    };
    return { pf, s: { ...s, symbol: 'AAPL', side: 'buy' as const, hint: undefined, confidence: 0.9 } };
  });

describe('risk engine properties', () => {
  it('an approved trade never breaks a limit afterwards (or only shrinks what already did)', () => {
    let approvals = 0;
    fc.assert(
      fc.property(scenarioArb, limitsArb, marketArb, ({ pf, s }, lim, mkt) => {
        const market = {
          ...(mkt.vix !== undefined ? { vix: mkt.vix } : {}),
          ...(mkt.bars ? { recentBars: flatBars(20, s.price, s.price * 0.01, s.symbol) } : {}),
        };
        const d = evaluate(toSignal(s), pf, market, lim);
        if (d.decision !== 'APPROVED') return;
        approvals++;
        assertNoLimitBroken(pf, s, lim, mkt.vix, d);
      }),
      { numRuns: 4000 },
    );
    expect(approvals).toBeGreaterThan(400); // the property was actually exercised
  });

  it('in the margin band, approved buys never leave the account under a margin call or over leverage', () => {
    const binding = new Map<string, number>();
    const lim: RiskLimits = {
      ...DEFAULT_RISK_LIMITS,
      stressThresholdPct: 10,
      maxOrderNotional: 1e9,
      riskPerTradePct: 0.05,
    };
    fc.assert(
      fc.property(marginBandArb, ({ pf, s }) => {
        const d = evaluate(toSignal(s), pf, {}, lim);
        if (d.decision === 'APPROVED') assertNoLimitBroken(pf, s, lim, undefined, d);
        const key = d.decision === 'APPROVED' ? String(d.sizing!.bindingLimit) : d.reasonCode;
        binding.set(key, (binding.get(key) ?? 0) + 1);
      }),
      { numRuns: 2000 },
    );
    // The generator reaches the limits under test, both as caps and as rejections.
    expect(binding.get('insufficient_buying_power') ?? 0).toBeGreaterThan(20);
    expect(binding.get('under_margin_call') ?? 0).toBeGreaterThan(20);
  });

  it('quantities: whole shares, never negative, never above the hint or the risk size; rejections trade nothing', () => {
    fc.assert(
      fc.property(scenarioArb, limitsArb, ({ pf, s }, lim) => {
        const d = evaluate(toSignal(s), pf, {}, lim);
        expect(Number.isInteger(d.qty)).toBe(true);
        expect(d.qty).toBeGreaterThanOrEqual(0);
        if (s.hint !== undefined) expect(d.qty).toBeLessThanOrEqual(s.hint);
        expect(d.qty).toBeLessThanOrEqual(d.sizing!.riskQty);
        expect(d.qty).toBeLessThanOrEqual(d.sizing!.proposedQty);
        if (d.decision === 'APPROVED') {
          expect(d.qty).toBeGreaterThanOrEqual(1);
          expect(d.qty).toBe(d.sizing!.finalQty);
          expect(d.checks.every((c) => c.passed)).toBe(true);
        } else {
          expect(d.qty).toBe(0);
          expect(d.notional).toBe(0);
          expect(d.checks.find((c) => !c.passed)?.code).toBe(d.reasonCode);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('the caps are consistent: re-submitting the approved quantity as the hint approves the same quantity', () => {
    fc.assert(
      fc.property(scenarioArb, limitsArb, ({ pf, s }, lim) => {
        const d = evaluate(toSignal(s), pf, {}, lim);
        if (d.decision !== 'APPROVED') return;
        const again = evaluate(toSignal({ ...s, hint: d.qty }), pf, {}, lim);
        expect(again.decision).toBe('APPROVED');
        expect(again.qty).toBe(d.qty);
        if (d.qty < d.sizing!.proposedQty) {
          // One more share than the binding cap allowed must fail that check.
          const more = evaluate(toSignal({ ...s, hint: d.qty + 1 }), pf, {}, lim);
          expect(more.qty).toBe(d.qty);
          expect(more.sizing!.bindingLimit).not.toBeNull();
        }
      }),
      { numRuns: 800 },
    );
  });

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.anything(), portfolioArb, (junk, pf) => {
        const d = evaluate(junk, pf, {}, DEFAULT_RISK_LIMITS);
        expect(d.decision).toBe('REJECTED');
        expect(d.reasonCode).toBe('invalid_signal');
      }),
      { numRuns: 300 },
    );
  });

  it("decide (the backtester's verdict without the record) gives exactly evaluate's decision, reason and quantity", () => {
    const reasons = new Set<string>();
    fc.assert(
      fc.property(scenarioArb, limitsArb, marketArb, fc.boolean(), ({ pf, s }, lim, mkt, broken) => {
        const market = {
          ...(mkt.vix !== undefined ? { vix: mkt.vix } : {}),
          ...(mkt.bars ? { recentBars: flatBars(20, s.price, s.price * 0.01, s.symbol) } : {}),
        };
        const signal = broken ? { ...toSignal(s), price: -1 } : toSignal(s);
        const d = evaluate(signal, pf, market, lim);
        reasons.add(d.reasonCode);
        expect(decide(signal, pf, market, lim)).toEqual({ decision: d.decision, reasonCode: d.reasonCode, qty: d.qty });
      }),
      { numRuns: 3000 },
    );
    expect(reasons.size).toBeGreaterThan(5); // approvals and several different rejections were compared
  });
});
