import { expect } from 'vitest';
import type { OhlcvBar } from '../../src/contracts/bar';
import { atr } from '../../src/domain/indicators/atr';
import { realizedVolatility } from '../../src/domain/indicators/realized-volatility';
import { barsNeeded, type RiskLimits } from '../../src/domain/risk';

/** A `risk_decisions` row sized by the ATR stop, as the tests read it. */
export interface AtrSizedDecision {
  symbol: string;
  signal_at: Date;
  result: { sizing: { atr: number; stopDistance: number; barsThrough: string } };
  checks: Array<{ name: string; value: number | null; detail?: string }>;
}

/**
 * Check an ATR-sized decision against the bars of its symbol (oldest first): RiskOps saw the last barsNeeded of
 * them up to the bar it recorded (`sizing.barsThrough`: the bar store may be a bar behind the quant when it
 * decides), which must be one of them and never after the signal's bar. The recorded ATR, stop distance and
 * realised volatility must be what those bars give. Returns whether the volatility check applied (it does whenever
 * those bars are enough for one).
 */
export function expectSizedFromBars(d: AtrSizedDecision, bars: readonly OhlcvBar[], limits: RiskLimits): boolean {
  const through = Date.parse(d.result.sizing.barsThrough);
  expect(through).toBeLessThanOrEqual(d.signal_at.getTime());
  const upTo = bars.filter((b) => Date.parse(b.timestamp) <= through).slice(-barsNeeded(limits));
  expect(upTo.length).toBeGreaterThan(0);
  expect(Date.parse(upTo.at(-1)!.timestamp)).toBe(through);
  const wantAtr = atr(upTo, limits.atrPeriod);
  expect(wantAtr).not.toBeNull();
  expect(d.result.sizing.atr).toBeCloseTo(wantAtr!, 9);
  expect(d.result.sizing.stopDistance).toBeCloseTo(wantAtr! * limits.atrStopMultiple, 9);
  const vol = realizedVolatility(upTo, limits.realizedVolWindow, {
    session: 'equity',
    minReturns: limits.realizedVolMinReturns,
  });
  const volCheck = d.checks.find((c) => c.name === 'extreme_volatility.realized');
  if (vol === null) {
    expect(volCheck?.detail ?? '').toMatch(/not applied/);
    return false;
  }
  expect(volCheck?.value).toBeCloseTo(vol, 6);
  expect(volCheck?.detail ?? '').not.toMatch(/not applied/);
  return true;
}
