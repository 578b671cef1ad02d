import { describe, expect, it } from 'vitest';
import type { OhlcvBar } from '../../../src/contracts/bar';
import type { OrderUpdate } from '../../../src/contracts/order';
import { SimulatedExchange, type SimulatedExchangeOptions } from '../../../src/domain/exchange';
import { SeededRandom } from '../../../src/domain/random';
import { nvda2013 } from './support';

/**
 * A scripted session over 40 real NVDA bars: every bar submits a market order with jitter-able slippage, a limit at
 * exactly the previous bar's low (a likely "touch"), and a trailing stop, alternating sides.
 */
function session(opts: SimulatedExchangeOptions, bars: OhlcvBar[]): OrderUpdate[] {
  const ex = new SimulatedExchange({ startingCash: 10_000_000, allowShort: true, ...opts });
  const events: OrderUpdate[] = [];
  ex.onUpdate((u) => events.push(u));
  bars.forEach((b, i) => {
    ex.onBar(b);
    const side = i % 2 === 0 ? 'buy' : 'sell';
    ex.submit(
      { clientOrderId: `m${i}`, symbol: 'NVDA', side, qty: 100, type: 'market', timeInForce: 'day' },
      b.timestamp,
    );
    ex.submit(
      {
        clientOrderId: `l${i}`,
        symbol: 'NVDA',
        side: 'buy',
        qty: 50,
        type: 'limit',
        limitPrice: b.low,
        timeInForce: 'gtc',
      },
      b.timestamp,
    );
    if (i % 5 === 0) {
      ex.submit(
        {
          clientOrderId: `t${i}`,
          symbol: 'NVDA',
          side: 'sell',
          qty: 50,
          type: 'trailing_stop',
          trailPercent: 2,
          timeInForce: 'gtc',
        },
        b.timestamp,
      );
    }
  });
  return events;
}

describe('determinism', () => {
  const bars = nvda2013();
  const noisy = { slippageJitterBps: 20, limitTouchFillProbability: 0.5, seed: 7 };

  it('same bars + same orders + same seed → identical event stream', () => {
    const a = session(noisy, bars);
    const b = session(noisy, bars);
    expect(a.length).toBeGreaterThan(100);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('a different seed changes the noisy fills (and only the seed differs)', () => {
    const a = session(noisy, bars);
    const b = session({ ...noisy, seed: 8 }, bars);
    expect(JSON.stringify(b)).not.toBe(JSON.stringify(a));
  });

  it('with no random knobs on, the seed is irrelevant (no hidden randomness)', () => {
    expect(JSON.stringify(session({ seed: 1 }, bars))).toBe(JSON.stringify(session({ seed: 2 }, bars)));
  });

  it('jitter adds 0-20 bps on top of the 5 bps, always adverse (then one tick at most, against the trader)', () => {
    const events = session(noisy, bars).filter((u) => u.fill && u.order.type === 'market');
    expect(events.length).toBeGreaterThan(30);
    for (const u of events) {
      const bar = bars.find((b) => b.timestamp === u.fill!.timestamp)!;
      const p = u.fill!.price;
      if (u.fill!.side === 'buy') {
        expect(p).toBeGreaterThanOrEqual(Math.min(bar.open * 1.0005, bar.high) - 1e-12);
        expect(p).toBeLessThanOrEqual(Math.min(bar.open * 1.0025, bar.high) + 0.01 + 1e-12);
      } else {
        expect(p).toBeLessThanOrEqual(Math.max(bar.open * 0.9995, bar.low) + 1e-12);
        expect(p).toBeGreaterThanOrEqual(Math.max(bar.open * 0.9975, bar.low) - 0.01 - 1e-12);
      }
      // On the tick: whole cents at or above $1.
      expect(Math.abs(p * 100 - Math.round(p * 100))).toBeLessThan(1e-6);
    }
  });

  it('execution ids are unique across the whole session', () => {
    const ids = session(noisy, bars).flatMap((u) => (u.fill ? [u.fill.executionId] : []));
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('SeededRandom', () => {
  it('is a fixed sequence per seed (mulberry32)', () => {
    const r = new SeededRandom(42);
    const xs = [r.next(), r.next(), r.next()];
    const again = new SeededRandom(42);
    expect([again.next(), again.next(), again.next()]).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new SeededRandom(43).next()).not.toBe(xs[0]);
  });

  it('chance(1) and chance(0) consume no draws', () => {
    const a = new SeededRandom(5);
    const b = new SeededRandom(5);
    expect(a.chance(1)).toBe(true);
    expect(a.chance(0)).toBe(false);
    expect(a.next()).toBe(b.next());
  });

  it('nextInt stays in range', () => {
    const r = new SeededRandom(9);
    for (let i = 0; i < 1000; i++) {
      const n = r.nextInt(3, 7);
      expect(n).toBeGreaterThanOrEqual(3);
      expect(n).toBeLessThanOrEqual(7);
    }
  });
});
