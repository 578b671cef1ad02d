import { describe, expect, it } from 'vitest';
import { BarValidator } from '../../../src/domain/marketdata/validation';
import { gbmBars, intervalMs } from '../../../src/domain/marketdata/synthetic';
import { logReturns, sampleStdDev } from '../../../src/domain/indicators/realized-volatility';

const base = {
  symbol: 'SYN',
  seed: 7,
  startPrice: 100,
  drift: 0.05,
  volatility: 0.3,
  startMs: Date.parse('2024-01-01T00:00:00Z'),
  stepMs: 86_400_000,
  count: 5000,
};

describe('synthetic GBM bars', () => {
  it('is deterministic per seed and different across seeds', () => {
    expect(gbmBars({ ...base, count: 50 })).toEqual(gbmBars({ ...base, count: 50 }));
    expect(gbmBars({ ...base, count: 50, seed: 8 })).not.toEqual(gbmBars({ ...base, count: 50 }));
  });

  it('produces only valid, ordered bars', () => {
    const v = new BarValidator({ now: () => Date.parse('2100-01-01T00:00:00Z') });
    for (const b of gbmBars(base)) expect(v.check(b, '1d')).toEqual({ ok: true });
  });

  it('has the volatility it was asked for (log returns: sd ≈ σ·√dt)', () => {
    const closes = gbmBars(base).map((b) => b.close);
    const sd = sampleStdDev(logReturns(closes))!;
    const want = 0.3 * Math.sqrt(86_400_000 / (365.25 * 86_400_000));
    expect(sd / want).toBeGreaterThan(0.95);
    expect(sd / want).toBeLessThan(1.05);
  });

  it('knows interval lengths', () => {
    expect(intervalMs('1m')).toBe(60_000);
    expect(intervalMs('1d')).toBe(86_400_000);
    expect(() => intervalMs('x')).toThrow();
  });
});
