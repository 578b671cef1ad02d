import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OrderRequest } from '../../../src/contracts/order';
import { isTerminal } from '../../../src/contracts/order';
import { SimulatedExchange, type SimulatedOrder } from '../../../src/domain/exchange';
import { barCapacity } from '../../../src/domain/exchange/fill-model';
import { nvda2008 } from './support';

/**
 * Random order flow over the real NVDA 2008 bars (including the 07-03 gap), checking the engine's invariants after
 * every bar rather than specific numbers.
 */
const bars = nvda2008();

const action = fc.record({
  kind: fc.constantFrom('submit', 'submit', 'submit', 'cancel'),
  side: fc.constantFrom('buy' as const, 'sell' as const),
  type: fc.constantFrom(
    'market' as const,
    'limit' as const,
    'stop' as const,
    'stop_limit' as const,
    'trailing_stop' as const,
  ),
  tif: fc.constantFrom('day' as const, 'gtc' as const, 'ioc' as const, 'fok' as const),
  qty: fc.integer({ min: 1, max: 4000 }),
  offset: fc.double({ min: -0.15, max: 0.15, noNaN: true }),
  bracket: fc.boolean(),
  target: fc.nat(),
});

describe('engine invariants under random order flow', () => {
  it('fills, cash, positions, volume cap, terminal states, no look-ahead', () => {
    const seen = { fills: 0, partial: 0, ocoCancels: 0 };
    fc.assert(
      fc.property(
        fc.array(fc.array(action, { maxLength: 4 }), { minLength: bars.length, maxLength: bars.length }),
        fc.boolean(),
        (perBar, allowShort) => {
          const startingCash = 250_000;
          const maxVolumePct = 0.0001; // ~2000 shares a bar: partial fills are common
          const ex = new SimulatedExchange({
            startingCash,
            maxVolumePct,
            allowShort,
            limitTouchFillProbability: 0.5,
            slippageJitterBps: 5,
          });
          const terminal = new Map<string, string>();
          let n = 0;
          bars.forEach((bar, i) => {
            ex.onBar(bar);
            for (const a of perBar[i]!) {
              if (a.kind === 'cancel') {
                const open = ex.listOrders({ status: 'open' });
                if (open.length > 0) ex.cancel(open[a.target % open.length]!.clientOrderId, bar.timestamp);
                continue;
              }
              const ref = bar.close * (1 + a.offset);
              const px = Math.round(ref * 100) / 100;
              const req: OrderRequest = {
                clientOrderId: `o${n++}`,
                symbol: 'NVDA',
                side: a.side,
                qty: a.qty,
                type: a.type,
                timeInForce: a.tif,
              };
              if (a.type === 'limit' || a.type === 'stop_limit') req.limitPrice = px;
              if (a.type === 'stop' || a.type === 'stop_limit') req.stopPrice = px;
              if (a.type === 'trailing_stop') req.trailPercent = Math.abs(a.offset) * 100 + 1;
              if (a.bracket) {
                req.orderClass = 'bracket';
                const up = Math.round(bar.close * 1.1 * 100) / 100;
                const down = Math.round(bar.close * 0.9 * 100) / 100;
                req.takeProfit = { limitPrice: a.side === 'buy' ? up : down };
                req.stopLoss = { stopPrice: a.side === 'buy' ? down : up };
              }
              ex.submit(req, bar.timestamp);
            }

            // --- invariants after this bar and its submissions
            const fills = ex.fills();
            const ids = new Set(fills.map((f) => f.executionId));
            expect(ids.size).toBe(fills.length);
            const atBar = fills.filter((f) => f.timestamp === bar.timestamp).reduce((s, f) => s + f.qty, 0);
            expect(atBar).toBeLessThanOrEqual(barCapacity(bar, maxVolumePct));

            let cash = startingCash;
            let pos = 0;
            for (const f of fills) {
              cash += (f.side === 'buy' ? -1 : 1) * f.qty * f.price - f.fee;
              pos += f.side === 'buy' ? f.qty : -f.qty;
            }
            const acct = ex.account();
            expect(acct.cash).toBeCloseTo(cash, 6);
            expect(acct.cash).toBeGreaterThanOrEqual(-1e-6);
            expect(ex.position('NVDA')?.qty ?? 0).toBe(pos);
            if (!allowShort) expect(pos).toBeGreaterThanOrEqual(0);
            expect(acct.equity).toBeCloseTo(cash + pos * bar.close, 6);

            for (const o of ex.listOrders()) {
              const own = fills.filter((f) => f.clientOrderId === o.clientOrderId);
              const q = own.reduce((s, f) => s + f.qty, 0);
              expect(o.filledQty).toBe(q);
              expect(o.filledQty).toBeLessThanOrEqual(o.qty);
              if (q > 0) expect(o.filledAvgPrice!).toBeCloseTo(own.reduce((s, f) => s + f.qty * f.price, 0) / q, 9);
              for (const f of own) expect(f.timestamp > o.createdAt).toBe(true); // never on a bar known at submit
              if (o.status === 'filled') expect(o.filledQty).toBe(o.qty);
              const key = JSON.stringify(strip(o));
              if (terminal.has(o.clientOrderId)) expect(key).toBe(terminal.get(o.clientOrderId));
              else if (isTerminal(o.status)) terminal.set(o.clientOrderId, key);
              if (o.legs) {
                const [tp, sl] = o.legs;
                expect(tp!.filledQty > 0 && sl!.filledQty > 0).toBe(false); // OCO: never both
              }
            }
          });
          seen.fills += ex.fills().length;
          seen.partial += ex.listOrders().filter((o) => o.filledQty > 0 && o.filledQty < o.qty).length;
          seen.ocoCancels += ex.listOrders().filter((o) => o.reason?.startsWith('oco:')).length;
        },
      ),
      { numRuns: 60, seed: 20240601 },
    );
    // The flow must actually exercise the engine, not just get rejected.
    expect(seen.fills).toBeGreaterThan(300);
    expect(seen.partial).toBeGreaterThan(20);
    expect(seen.ocoCancels).toBeGreaterThan(5);
  });
});

/** A terminal order's own fields (legs change independently of the entry). */
function strip(o: SimulatedOrder): Omit<SimulatedOrder, 'legs'> {
  const { legs: _legs, ...rest } = o;
  return rest;
}
