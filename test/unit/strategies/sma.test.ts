import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StreamingSma, sma } from '../../../src/domain/indicators/sma';

describe('SMA', () => {
  it('warms up after `period` values', () => {
    expect(sma([1, 2, 3, 4], 3)).toEqual([undefined, undefined, 2, 3]);
  });

  it('streaming equals a naive window mean exactly (no drift), for any input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 1e6, noNaN: true }), { maxLength: 300 }),
        fc.integer({ min: 1, max: 20 }),
        (xs, n) => {
          const got = sma(xs, n);
          xs.forEach((_, i) => {
            if (i < n - 1) expect(got[i]).toBeUndefined();
            else {
              let sum = 0;
              for (let j = i - n + 1; j <= i; j++) sum += xs[j]!;
              expect(got[i]).toBe(sum / n);
            }
          });
        },
      ),
    );
  });

  it('rejects bad periods and non-finite inputs; reset forgets', () => {
    expect(() => new StreamingSma(0)).toThrow();
    expect(() => new StreamingSma(1.5)).toThrow();
    const s = new StreamingSma(2);
    expect(() => s.update(Number.NaN)).toThrow();
    s.update(1);
    s.update(3);
    expect(s.value).toBe(2);
    s.reset();
    expect(s.ready).toBe(false);
    expect(s.update(5)).toBeUndefined();
  });
});
