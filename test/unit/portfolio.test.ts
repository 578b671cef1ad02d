import { describe, expect, it } from 'vitest';
import { markOf, portfolioEquity, unrealizedPnl, type MarkedPosition } from '../../src/domain/portfolio';

describe('portfolio marks, equity and unrealised P&L', () => {
  const positions: Record<string, MarkedPosition> = {
    AAPL: { qty: 10, avgCost: 100, lastPrice: 110 },
    // Short: negative qty, its sale proceeds already sit in cash.
    TSLA: { qty: -5, avgCost: 200, lastPrice: 190 },
    // Never marked: valued at its average cost.
    MSFT: { qty: 2, avgCost: 300, lastPrice: null },
  };

  it('marks at the last price, else the average cost, unless the caller has a fresher price for the symbol', () => {
    expect(markOf('AAPL', positions.AAPL!)).toBe(110);
    expect(markOf('MSFT', positions.MSFT!)).toBe(300);
    expect(markOf('AAPL', positions.AAPL!, 'AAPL', 120)).toBe(120);
    expect(markOf('TSLA', positions.TSLA!, 'AAPL', 120)).toBe(190);
    expect(markOf('AAPL', { qty: 1, avgCost: 50 })).toBe(50);
  });

  it('equity = cash + Σ signed qty × mark (a short subtracts its market value)', () => {
    // 1000 + 10×110 − 5×190 + 2×300
    expect(portfolioEquity({ cash: 1000, positions })).toBe(1750);
    // AAPL at the signal's 120 instead of its last 110: +100
    expect(portfolioEquity({ cash: 1000, positions }, 'AAPL', 120)).toBe(1850);
    expect(portfolioEquity({ cash: -250, positions: {} })).toBe(-250);
  });

  it('unrealised P&L = Σ qty × (mark − avg cost), at the same marks as equity', () => {
    // AAPL 10×(110−100) = 100; TSLA −5×(190−200) = +50 (a short gains when the price falls); MSFT 0
    expect(unrealizedPnl({ positions })).toBe(150);
    expect(unrealizedPnl({ positions }, 'TSLA', 210)).toBe(100 - 50);
    expect(unrealizedPnl({ positions: {} })).toBe(0);
  });
});
