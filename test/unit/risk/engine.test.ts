import { describe, expect, it } from 'vitest';
import { evaluate, type PortfolioSnapshot, type RiskDecision, type RiskLimits } from '../../../src/domain/risk';
import { realizedVolatility } from '../../../src/domain/indicators/realized-volatility';
import { T0, choppyBars, flatBars, limits, portfolio, signal } from './helpers';

const run = (
  sig: Record<string, unknown> = {},
  pf: Partial<PortfolioSnapshot> = {},
  market: Parameters<typeof evaluate>[2] = {},
  lim: Partial<RiskLimits> = {},
): RiskDecision => evaluate(signal(sig), portfolio(pf), market, limits(lim));

const check = (d: RiskDecision, name: string) => {
  const c = d.checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name}`);
  return c;
};

/** Portfolio holding `qty` of `symbol` at `price`, with cash set so equity stays `equity`. */
const holding = (
  symbol: string,
  qty: number,
  price: number,
  extra: Partial<PortfolioSnapshot> = {},
  equity = 100_000,
): Partial<PortfolioSnapshot> => ({
  cash: equity - qty * price,
  positions: { [symbol]: { qty, avgCost: price, lastPrice: price } },
  ...extra,
});

const expectApproved = (d: RiskDecision, qty: number) => {
  expect(d.decision, JSON.stringify(d.checks.filter((c) => !c.passed))).toBe('APPROVED');
  expect(d.reasonCode).toBe('approved');
  expect(d.qty).toBe(qty);
};
const expectRejected = (d: RiskDecision, code: string) => {
  expect(d.decision).toBe('REJECTED');
  expect(d.reasonCode).toBe(code);
  expect(d.qty).toBe(0);
  expect(d.notional).toBe(0);
  // The reason is always the first failing check in the documented order.
  expect(d.checks.find((c) => !c.passed)?.code).toBe(code);
};

describe('risk engine: documented check order', () => {
  it('records every check, in order, with value, limit and rule', () => {
    const d = run();
    expect(d.checks.map((c) => c.name)).toEqual([
      'invalid_signal',
      'trading_halted',
      'reduce_only',
      'duplicate_signal',
      'extreme_volatility.vix',
      'extreme_volatility.realized',
      'low_confidence',
      'circuit_breaker',
      'under_margin_call',
      'position_sizing',
      'short_not_allowed',
      'over_position_limit',
      'exposure_limit_breach',
      'leverage_limit_breach',
      'insufficient_buying_power',
      'max_order_notional',
      'stress_test_fail',
    ]);
    for (const c of d.checks) {
      expect(c).toHaveProperty('value');
      expect(c).toHaveProperty('limit');
      expect(typeof c.rule).toBe('string');
    }
  });

  it('a default $100 buy on a flat $100k account: risk sizes 200, the 10% exposure limit caps to 100, exactly at the limit', () => {
    const d = run();
    expectApproved(d, 100);
    expect(d.notional).toBe(10_000);
    expect(d.sizing).toMatchObject({
      method: 'fallback_pct',
      riskBudget: 1000,
      stopDistance: 5,
      riskQty: 200,
      proposedQty: 200,
      finalQty: 100,
      bindingLimit: 'exposure_limit_breach',
    });
    expect(check(d, 'exposure_limit_breach')).toMatchObject({ passed: true, value: 10_000, limit: 10_000 });
    expect(d.metrics).toMatchObject({
      equity: 100_000,
      grossExposureBefore: 0,
      grossExposureAfter: 10_000,
      positionAfter: 100,
    });
  });

  it('when several checks fail, the first in order is the reason', () => {
    const d = run({ confidence: 0.1 }, { tradingState: 'HALTED' }, { vix: 99 });
    expectRejected(d, 'trading_halted');
    expect(check(d, 'low_confidence').passed).toBe(false);
    expect(check(d, 'extreme_volatility.vix').passed).toBe(false);
  });

  it('is deterministic and never reads a clock', () => {
    expect(run({}, {}, { vix: 20 })).toEqual(run({}, {}, { vix: 20 }));
  });
});

describe('invalid_signal: the engine defends itself', () => {
  it.each<[string, unknown]>([
    ['null', null],
    ['a string', 'AAPL buy'],
    ['an array', []],
    ['missing symbol', signal({ symbol: undefined })],
    ['empty symbol', signal({ symbol: '' })],
    ['blank symbol', signal({ symbol: '   ' })],
    ['numeric symbol', signal({ symbol: 42 })],
    ['missing price', signal({ price: undefined })],
    ['price NaN', signal({ price: Number.NaN })],
    ['price Infinity', signal({ price: Number.POSITIVE_INFINITY })],
    ['price 0', signal({ price: 0 })],
    ['negative price (the original approved −150)', signal({ price: -150 })],
    ['price as a string', signal({ price: '150' })],
    ['side BUY (not the contract vocabulary)', signal({ side: 'BUY' })],
    ['side hold', signal({ side: 'hold' })],
    ['missing side', signal({ side: undefined })],
    ['confidence > 1', signal({ confidence: 1.01 })],
    ['confidence < 0', signal({ confidence: -0.01 })],
    ['confidence NaN', signal({ confidence: Number.NaN })],
    ['missing confidence', signal({ confidence: undefined })],
    ['missing strategy', signal({ strategy: undefined })],
    ['unknown asset class', signal({ asset_class: 'bonds' })],
    ['quantity_hint 0', signal({ order: { quantity_hint: 0 } })],
    ['fractional quantity_hint', signal({ order: { quantity_hint: 1.5 } })],
    ['negative quantity_hint', signal({ order: { quantity_hint: -5 } })],
    ['order not an object', signal({ order: 'market' })],
    [
      'buy stop-loss above the price',
      signal({ order: { stop_loss: { stop_price: 101 }, take_profit: { limit_price: 110 } } }),
    ],
    [
      'stop-loss at the price (zero stop distance)',
      signal({ order: { stop_loss: { stop_price: 100 }, take_profit: { limit_price: 110 } } }),
    ],
    [
      'sell stop-loss below the price',
      signal({ side: 'sell', order: { stop_loss: { stop_price: 99 }, take_profit: { limit_price: 90 } } }),
    ],
    ['stop-loss price NaN', signal({ order: { stop_loss: { stop_price: Number.NaN } } })],
  ])('%s', (_label, sig) => {
    const d = evaluate(sig, portfolio(), {}, limits());
    expectRejected(d, 'invalid_signal');
    expect(d.checks).toHaveLength(1);
    expect(d.checks[0]!.detail).toBeTruthy();
  });

  it('accepts a missing asset_class as equity (the contract default)', () => {
    expectApproved(run({ asset_class: undefined }), 100);
  });
});

describe('trading_halted and reduce_only (kill switch)', () => {
  it('HALTED rejects a buy', () => expectRejected(run({}, { tradingState: 'HALTED' }), 'trading_halted'));
  it('HALTED rejects even a reducing sell', () =>
    expectRejected(run({ side: 'sell' }, holding('AAPL', 50, 100, { tradingState: 'HALTED' })), 'trading_halted'));
  it('REDUCING rejects a buy that opens a position', () =>
    expectRejected(run({}, { tradingState: 'REDUCING' }), 'reduce_only'));
  it('REDUCING rejects a buy that adds to a long', () =>
    expectRejected(run({}, holding('AAPL', 50, 100, { tradingState: 'REDUCING' })), 'reduce_only'));
  it('REDUCING rejects a sell when flat (it would open a short), before short_not_allowed', () =>
    expectRejected(run({ side: 'sell' }, { tradingState: 'REDUCING' }, {}, { allowShort: true }), 'reduce_only'));
  it('REDUCING approves a sell that shrinks a long, capped at the holding', () => {
    const d = run(
      { side: 'sell', order: { quantity_hint: 80 } },
      holding('AAPL', 50, 100, { tradingState: 'REDUCING' }),
    );
    expectApproved(d, 50);
    expect(d.sizing?.bindingLimit).toBe('reduce_only');
    expect(check(d, 'reduce_only')).toMatchObject({ passed: true, value: 50, limit: 50 });
  });
  it('REDUCING approves a buy that covers a short', () => {
    const d = run(
      { order: { quantity_hint: 30 } },
      holding('AAPL', -50, 100, { tradingState: 'REDUCING' }),
      {},
      { allowShort: true },
    );
    expectApproved(d, 30);
  });
  it('REDUCING does not let two in-flight sells sell the same shares', () => {
    const d = run(
      { side: 'sell', order: { quantity_hint: 80 } },
      holding('AAPL', 50, 100, {
        tradingState: 'REDUCING',
        reservations: [{ symbol: 'AAPL', side: 'sell', qty: 30, notional: 3000 }],
      }),
    );
    expectApproved(d, 20);
  });
  it('ACTIVE: reduce_only passes with no limit', () =>
    expect(check(run(), 'reduce_only')).toMatchObject({ passed: true, limit: null }));
});

describe('duplicate_signal (cooldown per symbol + strategy)', () => {
  const at = (secondsAgo: number) => new Date(Date.parse(T0) - secondsAgo * 1000).toISOString();
  it('exactly the cooldown (60 s) after the last approval passes', () =>
    expectApproved(run({}, { lastSignalAt: { 'AAPL|ma_cross': at(60) } }), 100));
  it('59.999 s after rejects', () => {
    const d = run({}, { lastSignalAt: { 'AAPL|ma_cross': at(59.999) } });
    expectRejected(d, 'duplicate_signal');
    expect(check(d, 'duplicate_signal')).toMatchObject({ value: 59.999, limit: 60 });
  });
  it('another strategy on the same symbol is not a duplicate', () =>
    expectApproved(run({}, { lastSignalAt: { 'AAPL|rsi': at(1) } }), 100));
  it('epoch-ms times work too', () =>
    expectRejected(run({}, { lastSignalAt: { 'AAPL|ma_cross': Date.parse(T0) - 1000 } }), 'duplicate_signal'));
  it('cooldown 0 disables the check', () =>
    expectApproved(run({}, { lastSignalAt: { 'AAPL|ma_cross': at(0) } }, {}, { duplicateCooldownSec: 0 }), 100));
  it('the clock is the signal created_at (market time), not the decision time: a fast replay is not a burst', () => {
    // Decided a minute of wall time apart but an hour of market time apart: not a duplicate.
    const replayed = run(
      { created_at: '2025-01-02T16:00:00.000Z' },
      { asOf: at(-1), lastSignalAt: { 'AAPL|ma_cross': T0 } },
    );
    expectApproved(replayed, 100);
    // Same bar time, decided long after: still a duplicate.
    expectRejected(run({}, { asOf: at(-3600), lastSignalAt: { 'AAPL|ma_cross': at(10) } }), 'duplicate_signal');
  });
  it('without a signal created_at the decision time (asOf) is the clock', () =>
    expectRejected(run({ created_at: undefined }, { lastSignalAt: { 'AAPL|ma_cross': at(10) } }), 'duplicate_signal'));
});

describe('extreme_volatility', () => {
  it.each([
    [30, 'APPROVED'],
    [30.01, 'REJECTED'],
    [undefined, 'APPROVED'],
    [Number.NaN, 'REJECTED'],
    [-1, 'REJECTED'],
  ])('VIX %s → %s', (vix, outcome) => {
    const d = run({}, {}, vix === undefined ? {} : { vix });
    expect(d.decision).toBe(outcome);
    if (outcome === 'REJECTED') expectRejected(d, 'extreme_volatility');
  });

  it('choppy bars: realised volatility above RISK_MAX_REALIZED_VOL rejects', () => {
    const d = run({}, {}, { recentBars: choppyBars(30) });
    expectRejected(d, 'extreme_volatility');
    expect(check(d, 'extreme_volatility.realized').value as number).toBeGreaterThan(1.5);
  });

  it('realised volatility exactly at the limit passes; just above rejects', () => {
    const bars = choppyBars(30, 100, 101);
    const vol = realizedVolatility(bars, 20, { session: 'equity', minReturns: 10 })!;
    expect(run({}, {}, { recentBars: bars }, { maxRealizedVol: vol }).decision).toBe('APPROVED');
    expectRejected(run({}, {}, { recentBars: bars }, { maxRealizedVol: vol * (1 - 1e-6) }), 'extreme_volatility');
  });

  it('too few bars: not applied', () =>
    expect(check(run({}, {}, { recentBars: choppyBars(5) }), 'extreme_volatility.realized')).toMatchObject({
      passed: true,
      value: null,
    }));
  it('bars of another symbol are ignored', () =>
    expectApproved(run({}, {}, { recentBars: choppyBars(30, 100, 120, 'MSFT') }), 100));

  it('a sell that reduces a long is still allowed in extreme volatility', () => {
    const d = run({ side: 'sell', order: { quantity_hint: 40 } }, holding('AAPL', 50, 100), { vix: 45 });
    expectApproved(d, 40);
    expect(check(d, 'extreme_volatility.vix').detail).toMatch(/only reduces/);
  });
});

describe('low_confidence (CONFIDENCE_THRESH 0.75)', () => {
  it.each([
    [0.75, 'APPROVED'],
    [0.7499, 'REJECTED'],
    [1, 'APPROVED'],
    [0, 'REJECTED'],
  ])('confidence %s → %s', (confidence, outcome) => {
    const d = run({ confidence });
    expect(d.decision).toBe(outcome);
    if (outcome === 'REJECTED') expectRejected(d, 'low_confidence');
  });
  it('applies to sells too', () =>
    expectRejected(run({ side: 'sell', confidence: 0.5 }, holding('AAPL', 50, 100)), 'low_confidence'));
});

describe('circuit_breaker (daily drawdown ≥ 5% of day-start equity)', () => {
  it('drawdown exactly 5% trips', () => {
    const d = run({}, { cash: 95_000 });
    expectRejected(d, 'circuit_breaker');
    expect(check(d, 'circuit_breaker')).toMatchObject({ value: 0.05, limit: 0.05 });
  });
  it('drawdown 4.999% does not', () => expect(run({}, { cash: 95_001 }).decision).toBe('APPROVED'));
  it('marks the signal symbol at the signal price: a $100 holding quoted at $50 is a 5% loss', () =>
    expectRejected(run({ price: 50 }, holding('AAPL', 100, 100)), 'circuit_breaker'));
  it('an up day is a negative drawdown', () =>
    expect(check(run({}, { cash: 110_000 }), 'circuit_breaker').value).toBeCloseTo(-0.1));
  it('a sell that reduces a long is allowed while tripped', () => {
    const d = run({ side: 'sell', price: 50 }, holding('AAPL', 100, 100));
    expect(d.decision).toBe('APPROVED');
    expect(d.qty).toBeLessThanOrEqual(100);
  });
});

describe('under_margin_call (available margin = equity − gross/leverage < 10% of equity)', () => {
  // MSFT n @ $100 with equity held at $100k: margin used = 100·n/2, available = 100k − 50·n.
  const msft = (n: number) => holding('MSFT', n, 100);
  it('available margin exactly 10% passes the margin check (buying power is then zero)', () => {
    const d = run({}, msft(1800), {}, { stressThresholdPct: 1 });
    expect(check(d, 'under_margin_call')).toMatchObject({ passed: true, value: 10_000, limit: 10_000 });
    expectRejected(d, 'insufficient_buying_power');
  });
  it('just below 10% rejects', () => {
    const d = run({}, msft(1801), {}, { stressThresholdPct: 1 });
    expectRejected(d, 'under_margin_call');
    expect(check(d, 'under_margin_call')).toMatchObject({ value: 9_950, limit: 10_000 });
  });
  it('a sell that reduces the position is allowed under a margin call', () =>
    expectApproved(
      run({ symbol: 'MSFT', side: 'sell', order: { quantity_hint: 100 } }, msft(1801), {}, { stressThresholdPct: 1 }),
      100,
    ));
  it('margin uses each class leverage: $300k futures (margin $60k) leave $40k available', () => {
    const d = run(
      {},
      {
        cash: 100_000 - 300_000,
        positions: { ES: { qty: 1, avgCost: 300_000, lastPrice: 300_000, assetClass: 'futures' } },
      },
      {},
      { stressThresholdPct: 10 },
    );
    expect(check(d, 'under_margin_call')).toMatchObject({ passed: true, value: 40_000 });
  });
});

describe('over_position_limit (1000 shares per symbol after the trade, long and short)', () => {
  const lim = { stressThresholdPct: 1 };
  it('999 held + 1 = exactly 1000 passes; the hint of 5 is capped to 1', () => {
    const d = run({ price: 1, order: { quantity_hint: 5 } }, holding('AAPL', 999, 1), {}, lim);
    expectApproved(d, 1);
    expect(d.sizing?.bindingLimit).toBe('over_position_limit');
    expect(check(d, 'over_position_limit')).toMatchObject({ value: 1000, limit: 1000 });
  });
  it('1000 held: one more share rejects', () => {
    const d = run({ price: 1, order: { quantity_hint: 5 } }, holding('AAPL', 1000, 1), {}, lim);
    expectRejected(d, 'over_position_limit');
    expect(check(d, 'over_position_limit').value).toBe(1001);
  });
  it('short side: −1000 held, one more share short rejects', () =>
    expectRejected(
      run(
        { side: 'sell', price: 1, order: { quantity_hint: 1 } },
        holding('AAPL', -1000, 1),
        {},
        { ...lim, allowShort: true },
      ),
      'over_position_limit',
    ));
  it('short side: a buy that covers passes', () =>
    expectApproved(
      run({ price: 1, order: { quantity_hint: 5 } }, holding('AAPL', -1000, 1), {}, { ...lim, allowShort: true }),
      5,
    ));
  it('in-flight buys count: 500 held + 500 reserved leaves nothing', () =>
    expectRejected(
      run(
        { price: 1, order: { quantity_hint: 1 } },
        holding('AAPL', 500, 1, { reservations: [{ symbol: 'AAPL', side: 'buy', qty: 500, notional: 500 }] }),
        {},
        lim,
      ),
      'over_position_limit',
    ));
});

describe('exposure_limit_breach (position notional ≤ equity × class max exposure)', () => {
  it('99 held at $100 + 1 = exactly $10,000 passes; capped from 5', () => {
    const d = run({ order: { quantity_hint: 5 } }, holding('AAPL', 99, 100));
    expectApproved(d, 1);
    expect(check(d, 'exposure_limit_breach')).toMatchObject({ value: 10_000, limit: 10_000 });
  });
  it('100 held: one more share rejects', () => {
    const d = run({ order: { quantity_hint: 5 } }, holding('AAPL', 100, 100));
    expectRejected(d, 'exposure_limit_breach');
    expect(check(d, 'exposure_limit_breach')).toMatchObject({ value: 10_100, limit: 10_000 });
  });
  it('in-flight reservations count', () =>
    expectRejected(
      run({}, { reservations: [{ symbol: 'AAPL', side: 'buy', qty: 100, notional: 10_000 }] }),
      'exposure_limit_breach',
    ));
  it('a sell that reduces an over-limit long is not rejected for exposure', () => {
    const d = run({ side: 'sell', order: { quantity_hint: 50 } }, holding('AAPL', 200, 100));
    expectApproved(d, 50);
    expect(check(d, 'exposure_limit_breach').passed).toBe(true);
  });
  it('a sell with no hint on a long larger than the risk size sells the risk size', () =>
    expectApproved(run({ side: 'sell' }, holding('AAPL', 300, 100)), 200));

  it.each([
    ['equity', 0.1],
    ['options', 0.15],
    ['futures', 0.2],
    ['crypto', 0.1],
  ])('%s: max exposure %s of equity caps the size, and a position at the limit rejects more', (assetClass, pct) => {
    const wide = { riskPerTradePct: 1, maxOrderNotional: 1e9, stressThresholdPct: 1 };
    const capped = run({ asset_class: assetClass, order: { quantity_hint: 1000 } }, {}, {}, wide);
    expectApproved(capped, Math.round((pct * 100_000) / 100));
    expect(capped.sizing?.bindingLimit).toBe('exposure_limit_breach');
    const full = holding('X', (pct * 100_000) / 100, 100);
    const d = run(
      { symbol: 'X', asset_class: assetClass, order: { quantity_hint: 1 } },
      { ...full, positions: { X: { ...full.positions!.X!, assetClass: assetClass as 'equity' } } },
      {},
      wide,
    );
    expectRejected(d, 'exposure_limit_breach');
  });
});

describe('leverage_limit_breach (gross exposure / equity ≤ class leverage): enforced', () => {
  // Futures (leverage 5) use little margin, so an equity/options/crypto buy can reach its own gross limit.
  const withFutures = (notional: number): Partial<PortfolioSnapshot> => ({
    cash: 100_000 - notional,
    positions: { ES: { qty: 1, avgCost: notional, lastPrice: notional, assetClass: 'futures' } },
  });
  it.each([
    ['equity', 2.0],
    ['options', 1.5],
    ['crypto', 2.5],
  ])('%s: gross exactly %sx equity passes, one share more rejects', (assetClass, lev) => {
    const lim = { stressThresholdPct: 1 };
    const atLimit = run(
      { asset_class: assetClass, order: { quantity_hint: 5 } },
      withFutures(lev * 100_000 - 100),
      {},
      lim,
    );
    expectApproved(atLimit, 1);
    expect(atLimit.sizing?.bindingLimit).toBe('leverage_limit_breach');
    expect(check(atLimit, 'leverage_limit_breach')).toMatchObject({ value: lev, limit: lev });
    const over = run(
      { asset_class: assetClass, order: { quantity_hint: 1 } },
      withFutures(lev * 100_000 - 50),
      {},
      lim,
    );
    expectRejected(over, 'leverage_limit_breach');
  });
  it('futures: the limit is 5x', () =>
    expect(check(run({ asset_class: 'futures' }), 'leverage_limit_breach')).toMatchObject({ passed: true, limit: 5 }));
  it('a sell that reduces a position passes even when gross is over the limit', () =>
    expectApproved(
      run(
        { symbol: 'ES', asset_class: 'futures', side: 'sell', price: 250_000, order: { quantity_hint: 1 } },
        withFutures(250_000),
        {},
        { stressThresholdPct: 10, maxOrderNotional: 1e9, riskPerTradePct: 1 },
      ),
      1,
    ));
});

describe('insufficient_buying_power ((available margin − margin-call buffer) × leverage)', () => {
  it('buying power exactly one share passes; capped from 5', () => {
    const d = run({ order: { quantity_hint: 5 } }, holding('MSFT', 1799, 100), {}, { stressThresholdPct: 1 });
    expectApproved(d, 1);
    expect(d.sizing?.bindingLimit).toBe('insufficient_buying_power');
    expect(check(d, 'insufficient_buying_power')).toMatchObject({ value: 100, limit: 100 });
  });
  it('zero buying power rejects', () =>
    expectRejected(
      run({ order: { quantity_hint: 1 } }, holding('MSFT', 1800, 100), {}, { stressThresholdPct: 1 }),
      'insufficient_buying_power',
    ));
  it('a reducing sell needs no buying power', () =>
    expectApproved(
      run(
        { symbol: 'MSFT', side: 'sell', order: { quantity_hint: 10 } },
        holding('MSFT', 1800, 100),
        {},
        { stressThresholdPct: 1 },
      ),
      10,
    ));
});

describe('max_order_notional', () => {
  const lim = { maxOrderNotional: 5_000 };
  it('exactly the limit passes', () =>
    expectApproved(run({ price: 1000, order: { quantity_hint: 5 } }, {}, {}, lim), 5));
  it('a larger hint is capped', () => {
    const d = run({ price: 1000, order: { quantity_hint: 6 } }, {}, {}, lim);
    expectApproved(d, 5);
    expect(d.sizing?.bindingLimit).toBe('max_order_notional');
  });
  it('one share above the limit rejects', () =>
    expectRejected(run({ price: 5_001, order: { quantity_hint: 1 } }, {}, {}, lim), 'max_order_notional'));
  it('applies to reducing sells too (fat-finger limit)', () =>
    expectApproved(
      run({ side: 'sell', price: 1000, order: { quantity_hint: 9 } }, holding('AAPL', 9, 1000), {}, lim),
      5,
    ));
});

describe('stress_test_fail (loss under a 10% shock of gross exposure ≤ 5% of equity): reachable with defaults', () => {
  it('gross $50,000 + one $100 share breaches: $5,010 > $5,000', () => {
    const d = run({ order: { quantity_hint: 1 } }, holding('MSFT', 500, 100));
    expectRejected(d, 'stress_test_fail');
    expect(check(d, 'stress_test_fail')).toMatchObject({ value: 5_010, limit: 5_000 });
  });
  it('exactly $5,000 passes; capped from 5', () => {
    const d = run({ order: { quantity_hint: 5 } }, holding('MSFT', 499, 100));
    expectApproved(d, 1);
    expect(d.sizing?.bindingLimit).toBe('stress_test_fail');
  });
  it('a reducing sell passes the stress test', () =>
    expectApproved(run({ symbol: 'MSFT', side: 'sell', order: { quantity_hint: 10 } }, holding('MSFT', 600, 100)), 10));
});

describe('short_not_allowed (RISK_ALLOW_SHORT=false)', () => {
  it('a sell when flat rejects', () => expectRejected(run({ side: 'sell' }), 'short_not_allowed'));
  it('a sell larger than the holding is capped to the holding', () => {
    const d = run({ side: 'sell', order: { quantity_hint: 80 } }, holding('AAPL', 50, 100));
    expectApproved(d, 50);
    expect(d.sizing?.bindingLimit).toBe('short_not_allowed');
    expect(check(d, 'short_not_allowed')).toMatchObject({ value: 0, limit: 0 });
  });
  it('shares already claimed by an in-flight sell cannot be sold again', () =>
    expectRejected(
      run(
        { side: 'sell' },
        holding('AAPL', 50, 100, { reservations: [{ symbol: 'AAPL', side: 'sell', qty: 50, notional: 5000 }] }),
      ),
      'short_not_allowed',
    ));
  it('with shorting allowed a sell opens a short, limited like a long', () => {
    const d = run({ side: 'sell' }, {}, {}, { allowShort: true });
    expectApproved(d, 100);
    expect(d.sizing?.bindingLimit).toBe('exposure_limit_breach');
  });
  it('a buy that covers a legacy short passes', () =>
    expectApproved(run({ order: { quantity_hint: 10 } }, holding('AAPL', -50, 100)), 10));
});

describe('position sizing (fixed fractional)', () => {
  it('fallback stop: 5% of price when there are too few bars for an ATR', () => {
    const d = run({ order: { quantity_hint: 1000 } }, {}, { recentBars: flatBars(14) });
    expect(d.sizing).toMatchObject({ method: 'fallback_pct', stopDistance: 5, riskQty: 200, atr: null });
  });
  it('ATR stop: ATR(14) × 2 with period + 1 bars', () => {
    const d = run({ order: { quantity_hint: 1000 } }, {}, { recentBars: flatBars(15, 100, 1) });
    expect(d.sizing).toMatchObject({ method: 'atr', atr: 2, stopDistance: 4, riskQty: 250 });
  });
  it('a stop-loss on the signal overrides the ATR: |price − stop|', () => {
    const d = run(
      { order: { quantity_hint: 1000, stop_loss: { stop_price: 98 }, take_profit: { limit_price: 110 } } },
      {},
      { recentBars: flatBars(15) },
      { riskPerTradePct: 0.001 },
    );
    expect(d.sizing).toMatchObject({ method: 'stop_loss', stopDistance: 2, riskBudget: 100, riskQty: 50 });
    expectApproved(d, 50);
  });
  it('sell stop-loss above the price', () => {
    const d = run(
      { side: 'sell', order: { stop_loss: { stop_price: 104 }, take_profit: { limit_price: 90 } } },
      {},
      {},
      { allowShort: true, riskPerTradePct: 0.001 },
    );
    expect(d.sizing).toMatchObject({ method: 'stop_loss', stopDistance: 4, riskQty: 25 });
    expectApproved(d, 25);
  });
  it('a hint cuts the size', () => {
    const d = run({ order: { quantity_hint: 10 } });
    expectApproved(d, 10);
    expect(d.sizing).toMatchObject({ hint: 10, proposedQty: 10, bindingLimit: null });
  });
  it('a hint never raises the size', () => {
    const d = run(
      { order: { quantity_hint: 150 } },
      {},
      {},
      {
        maxOrderNotional: 1e9,
        stressThresholdPct: 1,
        assetClasses: { ...limits().assetClasses, equity: { leverageLimit: 2, maxExposurePct: 1 } },
      },
    );
    expectApproved(d, 150);
    const d2 = run(
      { order: { quantity_hint: 1000 } },
      {},
      {},
      {
        maxOrderNotional: 1e9,
        stressThresholdPct: 1,
        assetClasses: { ...limits().assetClasses, equity: { leverageLimit: 2, maxExposurePct: 1 } },
      },
    );
    expectApproved(d2, 200); // riskQty, not the hint
  });
  it('risk budget smaller than one share rejects risk_budget_too_small', () => {
    const d = run({ price: 100_000 });
    expectRejected(d, 'risk_budget_too_small');
    expect(check(d, 'position_sizing')).toMatchObject({ value: 0, limit: 1 });
  });
  it('sizes on equity, not cash: a long position adds to the risk budget', () => {
    const d = run(
      { symbol: 'MSFT', order: { quantity_hint: 1 } },
      { cash: 50_000, positions: { AAPL: { qty: 500, avgCost: 100, lastPrice: 100 } } },
    );
    expect(d.sizing?.riskBudget).toBe(1000);
  });
  it('quantities are whole shares', () => {
    const d = run({ price: 33.33 });
    expect(Number.isInteger(d.qty)).toBe(true);
    expect(d.qty * 33.33).toBeLessThanOrEqual(10_000);
  });
});
