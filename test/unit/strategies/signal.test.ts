import { describe, expect, it } from 'vitest';
import { BarSchema, type Bar } from '../../../src/contracts/bar';
import { barMessageId, signalIdFor } from '../../../src/contracts/ids';
import { TradeSignalSchema } from '../../../src/contracts/signal';
import { SMA_CROSS, toTradeSignal } from '../../../src/domain/strategies';

const ts = '2013-10-07T00:00:00.000Z';
const bar: Bar = BarSchema.parse({
  message_id: barMessageId('replay', 'NVDA', '1d', ts),
  symbol: 'NVDA',
  interval: '1d',
  timestamp: ts,
  open: 15.5,
  high: 15.7,
  low: 15.4,
  close: 15.62,
  volume: 1000,
  source: 'replay',
  correlation_id: 'corr-abc',
});

describe('toTradeSignal', () => {
  it('builds a valid, deterministic signal from bar + intent', () => {
    const r = toTradeSignal(SMA_CROSS, bar, { side: 'buy', confidence: 0.8, reason: 'x', indicators: {} });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toEqual({
      schema_version: 1,
      signal_id: signalIdFor(SMA_CROSS, 'NVDA', ts),
      correlation_id: 'corr-abc',
      symbol: 'NVDA',
      side: 'buy',
      price: 15.62,
      confidence: 0.8,
      strategy: SMA_CROSS,
      created_at: ts,
      asset_class: 'equity',
    });
    expect(TradeSignalSchema.parse(r.value)).toEqual(r.value);
    // Same bar again (a replay) → the very same message.
    expect(toTradeSignal(SMA_CROSS, bar, { side: 'buy', confidence: 0.8, reason: 'y', indicators: {} })).toEqual(r);
  });

  it('normalises created_at to ISO UTC with Z', () => {
    const r = toTradeSignal(
      SMA_CROSS,
      { ...bar, timestamp: '2013-10-07T02:00:00+02:00' },
      { side: 'sell', confidence: 1, reason: '', indicators: {} },
    );
    expect(r.ok && r.value.created_at).toBe('2013-10-07T00:00:00.000Z');
  });

  it('reports, rather than throws, when the bar cannot make a valid signal', () => {
    const lower = toTradeSignal(
      SMA_CROSS,
      { ...bar, symbol: 'nvda' },
      { side: 'buy', confidence: 0.8, reason: '', indicators: {} },
    );
    expect(lower).toMatchObject({ ok: false, reason: expect.stringMatching(/symbol/) });
    const badTs = toTradeSignal(
      SMA_CROSS,
      { ...bar, timestamp: 'yesterday' },
      { side: 'buy', confidence: 0.8, reason: '', indicators: {} },
    );
    expect(badTs).toMatchObject({ ok: false, reason: expect.stringMatching(/ISO-8601/) });
  });

  it('keeps the recorded ids: signal and bar ids are the first 20 hex digits of SHA-256 of the parts', () => {
    // Dedupe keys of recorded data: a faster hash call must give these exact strings.
    expect(signalIdFor(SMA_CROSS, 'NVDA', ts)).toBe('sig-3c5e66b0dacbdb39c0e6');
    expect(signalIdFor(SMA_CROSS, 'NVDA', ts, 'acct-1')).toBe('sig-5c998873d9906c78a336');
    expect(barMessageId('replay', 'NVDA', '1d', ts)).toBe('bar-140cccdc2bfe05201404');
  });
});
