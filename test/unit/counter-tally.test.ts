import { afterEach, describe, expect, it, vi } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { CounterTally } from '../../src/metrics/tally';

function counter() {
  return new Counter({
    name: 'test_bars_total',
    help: 'test',
    labelNames: ['source', 'symbol'] as const,
    registers: [new Registry()],
  });
}
const valueOf = async (c: Counter<'source' | 'symbol'>, symbol: string) =>
  (await c.get()).values.find((v) => v.labels.symbol === symbol)?.value ?? 0;
const labelsOf = (key: string) => ({ source: 'replay', symbol: key });

afterEach(() => {
  vi.useRealTimers();
});

describe('CounterTally: per-message counts handed to a labelled counter in bulk', () => {
  it('hands the counts over every maxPending of them, per series', async () => {
    const c = counter();
    const t = new CounterTally(c, labelsOf, 4, 60_000);
    for (const s of ['NVDA', 'ORCL', 'NVDA']) t.add(s);
    expect(await valueOf(c, 'NVDA')).toBe(0);
    t.add('ORCL');
    expect(await valueOf(c, 'NVDA')).toBe(2);
    expect(await valueOf(c, 'ORCL')).toBe(2);
    t.flush();
  });

  it('hands them over maxDelayMs after the first pending one, so a scrape during a slow replay sees them', async () => {
    vi.useFakeTimers();
    const c = counter();
    const t = new CounterTally(c, labelsOf, 1024, 200);
    t.add('NVDA');
    vi.advanceTimersByTime(150);
    t.add('NVDA');
    expect(await valueOf(c, 'NVDA')).toBe(0);
    vi.advanceTimersByTime(50);
    expect(await valueOf(c, 'NVDA')).toBe(2);
    t.add('NVDA');
    t.flush();
    expect(await valueOf(c, 'NVDA')).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps series of a two-part key (source, symbol) apart, each counted under its own labels', async () => {
    const c = counter();
    const t = new CounterTally(c, (source: string, symbol: string) => ({ source, symbol }), 1024, 60_000);
    for (const [source, symbol] of [
      ['polygon-ws', 'NVDA'],
      ['replay', 'NVDA'],
      ['polygon-ws', 'ORCL'],
      ['polygon-ws', 'NVDA'],
    ] as const)
      t.add(source, symbol);
    t.flush();
    const values = (await c.get()).values.map((v) => [v.labels.source, v.labels.symbol, v.value]);
    expect(values).toEqual(
      expect.arrayContaining([
        ['polygon-ws', 'NVDA', 2],
        ['replay', 'NVDA', 1],
        ['polygon-ws', 'ORCL', 1],
      ]),
    );
    expect(values).toHaveLength(3);
  });
});
