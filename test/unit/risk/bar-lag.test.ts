import { describe, expect, it } from 'vitest';
import { barIntervalMs } from '../../../src/contracts/bar';
import { BAR_STORE_BEHIND_MAX_BARS, barStoreBehind } from '../../../src/domain/risk';

describe('barIntervalMs', () => {
  it('reads every Polygon timespan and multiplier', () => {
    expect(barIntervalMs('1s')).toBe(1_000);
    expect(barIntervalMs('5m')).toBe(300_000);
    expect(barIntervalMs('4h')).toBe(14_400_000);
    expect(barIntervalMs('1d')).toBe(86_400_000);
    expect(barIntervalMs('2w')).toBe(1_209_600_000);
  });
  it('is null for anything else', () => {
    for (const bad of ['', 'd', '0d', '1y', '1D', '1.5m', ' 1m']) expect(barIntervalMs(bad), bad).toBeNull();
  });
});

describe('barStoreBehind', () => {
  const stored = '2024-12-20T00:00:00.000Z';
  it('is true when the signal is a few bars after the newest stored one', () => {
    expect(barStoreBehind(stored, '1d', '2024-12-21T00:00:00Z')).toBe(true);
    // A weekend between them is still "the next bar" for daily bars.
    expect(barStoreBehind(stored, '1d', '2024-12-23T00:00:00Z')).toBe(true);
    expect(barStoreBehind(stored, '1d', `2024-12-${20 + BAR_STORE_BEHIND_MAX_BARS}T00:00:00Z`)).toBe(true);
    expect(barStoreBehind('2024-12-20T15:59:00Z', '1m', '2024-12-20T16:00:00Z')).toBe(true);
  });
  it('is false when the store has the bar, is ahead, is far behind, or has nothing to compare', () => {
    expect(barStoreBehind(stored, '1d', stored)).toBe(false);
    expect(barStoreBehind(stored, '1d', '2024-12-19T00:00:00Z')).toBe(false);
    expect(barStoreBehind(stored, '1d', `2024-12-${21 + BAR_STORE_BEHIND_MAX_BARS}T00:00:00Z`)).toBe(false);
    expect(barStoreBehind('2024-12-20T15:00:00Z', '1m', '2024-12-20T16:00:00Z')).toBe(false);
    expect(barStoreBehind(null, '1d', stored)).toBe(false);
    expect(barStoreBehind(stored, null, '2024-12-21T00:00:00Z')).toBe(false);
    expect(barStoreBehind(stored, 'weekly', '2024-12-21T00:00:00Z')).toBe(false);
    expect(barStoreBehind(stored, '1d', 'not a time')).toBe(false);
  });
});
