import { describe, expect, it } from 'vitest';
import { instantMs, isCanonicalInstant, isoInstant } from '../../src/contracts/instants';

// A seeded LCG: the same sample on every run.
function sampler(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
}

describe('instants: the built-ins, exactly', () => {
  it('isoInstant formats as Date.prototype.toISOString (leap years, month ends, the fast range edges and beyond)', () => {
    const edges = [
      0,
      1,
      999,
      Date.UTC(2000, 1, 29, 23, 59, 59, 999),
      Date.UTC(2100, 1, 28, 12),
      Date.UTC(2100, 2, 1),
      Date.UTC(1999, 11, 31, 23, 59, 59, 999),
      Date.UTC(2024, 11, 31),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(10000, 0, 1), // beyond 9999: toISOString's six-digit form
      -1, // before 1970: the built-in
      Date.UTC(1969, 6, 20, 20, 17),
      0.5, // not an integer: the built-in
    ];
    const next = sampler(12345);
    const random = Array.from({ length: 20000 }, () => Math.floor(next() * Date.UTC(2200, 0, 1)));
    for (const ms of [...edges, ...random]) expect(isoInstant(ms)).toBe(new Date(ms).toISOString());
  });

  it('instantMs parses as Date.parse: canonical forms, roll-over days, bad fields and other forms', () => {
    const strings = [
      '1970-01-01T00:00:00.000Z',
      '1970-01-01T00:00:00Z',
      '2013-10-07T00:00:00.000Z',
      '2006-01-03T14:31:00Z',
      '2000-02-29T12:00:00.000Z',
      '2024-02-30T00:00:00.000Z', // no such day: whatever Date.parse says
      '2023-02-29T00:00:00Z',
      '2024-04-31T00:00:00.000Z',
      '2024-13-01T00:00:00.000Z',
      '2024-00-10T00:00:00.000Z',
      '2024-01-00T00:00:00.000Z',
      '2024-01-10T24:00:00.000Z',
      '2024-01-10T23:60:00.000Z',
      '2024-01-10T23:59:60.000Z',
      '2024-01-10T23:59:59.99Z',
      '2024-01-10T23:59:59.9999Z',
      '2024-01-10T23:59:59.000+02:00',
      '2024-01-10 23:59:59.000Z',
      '2024-01-10T23:59:59.00aZ',
      '1969-12-31T23:59:59.999Z',
      '0999-01-01T00:00:00.000Z',
      '2024-01-10',
      'yesterday',
      '',
      '+002024-01-10T00:00:00.000Z',
    ];
    const next = sampler(777);
    for (let i = 0; i < 20000; i++) {
      const ms = Math.floor(next() * Date.UTC(2200, 0, 1));
      const iso = new Date(ms).toISOString();
      strings.push(iso, `${iso.slice(0, 19)}Z`);
    }
    for (const s of strings) expect([s, instantMs(s)]).toEqual([s, Date.parse(s)]);
  });

  it('month ends (days 28-31 of every month, leap and century years): instantMs is Date.parse, canonical only if the day exists', () => {
    for (const year of [1970, 1999, 2000, 2004, 2006, 2023, 2024, 2100, 2400]) {
      for (let month = 1; month <= 12; month++) {
        for (let day = 28; day <= 31; day++) {
          const date = `${year}-${String(month).padStart(2, '0')}-${day}`;
          const exists = new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day;
          for (const s of [`${date}T23:59:59.999Z`, `${date}T00:00:00Z`]) {
            expect([s, instantMs(s)]).toEqual([s, Date.parse(s)]);
            if (exists) expect(isoInstant(instantMs(s)).slice(0, 10)).toBe(date);
          }
          expect([date, isCanonicalInstant(`${date}T23:59:59.999Z`)]).toEqual([date, exists]);
        }
      }
    }
  });

  it('isCanonicalInstant: a timestamp it accepts is exactly isoInstant of its instant (the signal reuses it)', () => {
    const next = sampler(777);
    const random = Array.from({ length: 20000 }, () => Math.floor(next() * Date.UTC(2200, 0, 1)));
    let accepted = 0;
    for (const ms of random) {
      const iso = isoInstant(ms);
      for (const s of [iso, `${iso.slice(0, 19)}Z`, iso.replace('Z', '+00:00'), iso.toLowerCase()]) {
        if (!isCanonicalInstant(s)) continue;
        accepted++;
        expect(isoInstant(instantMs(s))).toBe(s);
      }
    }
    expect(accepted).toBeGreaterThan(15000);
    for (const s of [
      '2024-02-30T00:00:00.000Z',
      '2024-01-01T24:00:00.000Z',
      '2024-01-01T00:00:00Z',
      '1969-12-31T23:59:59.999Z',
    ])
      expect(isCanonicalInstant(s)).toBe(false);
  });
});
