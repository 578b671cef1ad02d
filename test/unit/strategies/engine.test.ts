import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBarsCsvSync } from '../../../src/adapters/marketdata/csv';
import { BarSchema, type Bar, type OhlcvBar } from '../../../src/contracts/bar';
import { barMessageId } from '../../../src/contracts/ids';
import { mergeSeries } from '../../../src/domain/backtest';
import {
  SMA_CROSS,
  STRATEGY_NAMES,
  SignalEngine,
  SignalEngineSet,
  strategyFactory,
  strategySet,
  type EngineOutcome,
  type EnsembleStrategy,
} from '../../../src/domain/strategies';

const toBar = (b: OhlcvBar, interval = '1d'): Bar => {
  const message_id = barMessageId('replay', b.symbol, interval, b.timestamp);
  return BarSchema.parse({ ...b, interval, message_id, source: 'replay', correlation_id: `corr-${message_id}` });
};
const bars = readBarsCsvSync(resolve(__dirname, '../../fixtures/bars/quant-nvda-2013-09-03_2013-10-31.csv'), {
  symbol: 'NVDA',
}).map((b) => toBar(b));
const engine = () => new SignalEngine(strategyFactory(SMA_CROSS), { outcomeCacheSize: 1000 });

describe('SignalEngine (quant core)', () => {
  it('emits the strategy signals as valid TradeSignals carrying the bar correlation id', () => {
    const e = engine();
    const out = bars.map((b) => e.process(b));
    const signals = out.flatMap((o) => (o.kind === 'signal' ? [o.signal] : []));
    expect(signals.map((s) => [s.created_at.slice(0, 10), s.side])).toEqual([
      ['2013-09-20', 'sell'],
      ['2013-10-07', 'buy'],
      ['2013-10-09', 'sell'],
      ['2013-10-14', 'buy'],
      ['2013-10-23', 'sell'],
    ]);
    const b = bars.find((x) => x.timestamp.startsWith('2013-09-20'))!;
    expect(signals[0]).toMatchObject({
      correlation_id: b.correlation_id,
      price: b.close,
      strategy: SMA_CROSS,
      symbol: 'NVDA',
    });
  });

  it('a redelivered bar is not fed to the strategy again; its remembered signal comes back with the same id', () => {
    const e = engine();
    const first = bars.map((b) => e.process(b));
    const again = bars.map((b) => e.process(b));
    expect(again.every((o) => o.kind === 'duplicate')).toBe(true);
    const ids = (xs: typeof first) =>
      xs.flatMap((o) => ((o.kind === 'signal' || o.kind === 'duplicate') && o.signal ? [o.signal.signal_id] : []));
    expect(ids(again)).toEqual(ids(first));
    // and the series state was not disturbed: the next new bar behaves as if no duplicates had arrived
    const next = toBar({ ...bars.at(-1)!, timestamp: '2013-11-01T00:00:00.000Z' });
    const ref = engine();
    bars.forEach((b) => ref.process(b));
    expect(e.process(next)).toEqual(ref.process(next));
  });

  it('older bars beyond the remembered window are stale; partial bars are skipped; series are independent', () => {
    const e = new SignalEngine(strategyFactory(SMA_CROSS), { outcomeCacheSize: 3 });
    bars.slice(0, 10).forEach((b) => e.process(b));
    expect(e.process(bars[0]!)).toEqual({ kind: 'stale' });
    expect(e.process(bars[9]!).kind).toBe('duplicate');
    expect(e.process({ ...bars[10]!, is_partial: true })).toEqual({ kind: 'partial' });
    const orcl = bars.map((b) => ({ ...b, symbol: 'ORCL' }));
    expect(e.process(orcl[0]!)).toEqual({ kind: 'none' });
    expect(e.process(toBar(bars[0]!, '1m')).kind).toBe('none');
    expect(e.seriesCount).toBe(3);
  });

  it('a bar that cannot make a valid signal is reported invalid (the worker dead-letters it)', () => {
    const e = engine();
    const out = bars.map((b) => e.process({ ...b, symbol: 'nvda' }));
    const invalid = out.filter((o) => o.kind === 'invalid');
    expect(invalid).toHaveLength(5);
    expect(invalid[0]).toMatchObject({ reason: expect.stringMatching(/symbol/) });
    // Redelivered (its dead-letter copy was not confirmed, so the worker requeued it): refused again, same reason;
    // never "seen before, no signal", which the worker would ack, losing the bar.
    const again = bars.map((b) => e.process({ ...b, symbol: 'nvda' }));
    expect(again.filter((o) => o.kind === 'invalid')).toEqual(invalid);
    expect(again.filter((o) => o.kind !== 'invalid').every((o) => o.kind === 'duplicate')).toBe(true);
  });
});

describe('SignalEngineSet (every strategy side by side, as the worker runs them)', () => {
  const DATA = resolve(__dirname, '../../../../shared/data');
  const daily = mergeSeries([
    readBarsCsvSync(resolve(DATA, 'nvda-1999-2014.csv'), { symbol: 'NVDA' }),
    readBarsCsvSync(resolve(DATA, 'orcl-1995-2014.csv'), { symbol: 'ORCL' }),
  ]).map((b) => toBar(b));
  // JSON of an outcome, its reason and indicators read explicitly (they may be getters).
  const key = (o: EngineOutcome) => JSON.stringify(o.kind === 'signal' ? [o.signal, o.reason, o.indicators] : o);

  it('gives exactly the outcomes of one SignalEngine per strategy, redeliveries and stale bars included', () => {
    const factories = STRATEGY_NAMES.map((n) => strategyFactory(n));
    const set = new SignalEngineSet(strategySet(factories), { signalScope: 'acct', outcomeCacheSize: 300 });
    const singles = factories.map((f) => new SignalEngine(f, { signalScope: 'acct', outcomeCacheSize: 300 }));
    expect(set.strategyNames).toEqual([...STRATEGY_NAMES]);
    const kinds = new Map<string, number>();
    const feed = (bar: Bar) => {
      const outs = set.process(bar);
      expect(outs.map(key)).toEqual(singles.map((e) => key(e.process(bar))));
      for (const o of outs) kinds.set(o.kind, (kinds.get(o.kind) ?? 0) + 1);
    };
    daily.forEach((bar, i) => {
      feed(bar);
      if (i % 53 === 0 && i >= 10) feed(daily[i - 7]!); // a redelivery: the remembered signal, rebuilt
      if (i % 997 === 0 && i >= 900) feed(daily[i - 900]!); // beyond the remembered window: stale
    });
    feed({ ...daily[100]!, is_partial: true });
    expect(kinds.get('signal')).toBeGreaterThan(5000);
    expect(kinds.get('duplicate')).toBeGreaterThan(1000);
    expect(kinds.get('stale')).toBeGreaterThan(0);
    expect(kinds.get('partial')).toBe(STRATEGY_NAMES.length);
  });

  it('remembers every strategy outcome of exactly the last outcomeCacheSize bars, through wraps and growth', () => {
    // The remembered signals are a log of their own beside the bars' ring (engine.ts, OutcomeRing): a redelivery of
    // the oldest remembered bar, of the newest and of some in between gives back exactly what the bar first gave,
    // at every step of a series, while both the ring and the log wrap and grow; one bar older is stale.
    const nvda = daily.filter((b) => b.symbol === 'NVDA');
    const cap = 97;
    const set = new SignalEngineSet(strategySet(STRATEGY_NAMES.map((n) => strategyFactory(n))), {
      signalScope: 'acct',
      outcomeCacheSize: cap,
    });
    const asFirst = (o: EngineOutcome) =>
      o.kind === 'signal' || (o.kind === 'duplicate' && o.signal) ? JSON.stringify(o.signal) : 'no signal';
    const first: string[][] = [];
    let signals = 0;
    nvda.forEach((bar, i) => {
      const outs = set.process(bar);
      expect(outs.every((o) => o.kind === 'signal' || o.kind === 'none')).toBe(true);
      first.push(outs.map(asFirst));
      signals += outs.filter((o) => o.kind === 'signal').length;
      for (const back of [0, 1, 37, cap - 1]) {
        if (i - back < 0) continue;
        const again = set.process(nvda[i - back]!);
        expect(again.every((o) => o.kind === 'duplicate')).toBe(true);
        expect(again.map(asFirst)).toEqual(first[i - back]);
      }
      if (i >= cap) expect(set.process(nvda[i - cap]!).every((o) => o.kind === 'stale')).toBe(true);
    });
    expect(signals).toBeGreaterThan(2000);
  });

  it('shares the ensemble members with the same strategies running alone, only with the same parameters', () => {
    const names = (set: ReturnType<ReturnType<typeof strategySet>>) =>
      (set.strategies.find((s) => s.name === 'ensemble') as EnsembleStrategy).members.filter((m) =>
        set.strategies.includes(m),
      ).length;
    const all = strategySet(STRATEGY_NAMES.map((n) => strategyFactory(n)))();
    expect(names(all)).toBe(5); // sma-cross, macd, bollinger, ml, rsi: each computed once
    const otherMl = strategySet([strategyFactory('ensemble'), strategyFactory('ml', { ml: { window: 60 } })])();
    expect(names(otherMl)).toBe(0); // different parameters: a different model, not shared
  });
});
