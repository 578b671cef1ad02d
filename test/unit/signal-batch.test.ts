import { describe, expect, it } from 'vitest';
import { signalBatchRoutingKey } from '../../src/adapters/rabbitmq';
import {
  MAX_SIGNALS_PER_MESSAGE,
  parseSignalMessage,
  parseTradeSignal,
  signalBatchBody,
  type TradeSignalInput,
} from '../../src/contracts/signal';

/** The trade_signals message in both forms: one signal, or a `signal_batch` of them (contracts/signal.ts). */
const signal = (i: number, over: Partial<TradeSignalInput> = {}): TradeSignalInput => ({
  signal_id: `sig-${i.toString().padStart(20, '0')}`,
  correlation_id: `corr-${i}`,
  symbol: 'ES',
  side: i % 2 ? 'sell' : 'buy',
  price: 1300 + i / 4,
  confidence: 0.8,
  strategy: 'macd',
  created_at: '2006-01-03T14:31:00.000Z',
  ...over,
});

describe('parseSignalMessage: a signal or a batch, as its signals', () => {
  it('a single signal (object, string or bytes) is one signal, exactly what parseTradeSignal gives', () => {
    const s = signal(1);
    for (const raw of [s, JSON.stringify(s), Buffer.from(JSON.stringify(s))]) {
      const r = parseSignalMessage(raw);
      const one = parseTradeSignal(raw);
      expect(r.ok && one.ok).toBe(true);
      if (r.ok && one.ok) expect(r.value).toEqual([one.value]);
    }
  });

  it('a batch is its signals in order, each with the defaults a single signal gets', () => {
    const list = [signal(1), signal(2, { symbol: 'NVDA', strategy: 'rsi' }), signal(3)];
    const r = parseSignalMessage(Buffer.from(JSON.stringify(signalBatchBody(list))));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.map((s) => s.signal_id)).toEqual(list.map((s) => s.signal_id));
    for (let i = 0; i < list.length; i++) {
      const single = parseTradeSignal(list[i]);
      expect(single.ok && r.value[i]).toEqual(single.ok && single.value);
    }
    // schema_version may be left out, as in a single signal.
    const bare = parseSignalMessage({ kind: 'signal_batch', signals: list });
    expect(bare.ok && bare.value.length).toBe(3);
  });

  it('refuses a batch whole when one signal breaks the contract, naming its position', () => {
    const r = parseSignalMessage(signalBatchBody([signal(1), signal(2), signal(3, { confidence: 1.5 })]));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/^signals\.2\.confidence: /);
  });

  it('refuses an empty batch, an oversized one, unknown fields, another version and bad JSON', () => {
    const reasons = [
      { kind: 'signal_batch', signals: [] },
      signalBatchBody(Array.from({ length: MAX_SIGNALS_PER_MESSAGE + 1 }, (_, i) => signal(i))),
      { ...signalBatchBody([signal(1)]), extra: 1 },
      { ...signalBatchBody([signal(1)]), schema_version: 2 },
      { kind: 'signal_batch', signals: 'nope' },
      '{"kind": "signal_batch", "signals": [',
    ].map((raw) => {
      const r = parseSignalMessage(raw);
      expect(r.ok, JSON.stringify(raw).slice(0, 80)).toBe(false);
      return r.ok ? '' : r.reason;
    });
    expect(reasons[0]).toMatch(/^signals: /);
    expect(reasons[1]).toMatch(/^signals: /);
    expect(reasons[2]).toMatch(/extra/);
    expect(reasons[3]).toMatch(/^schema_version: /);
    expect(reasons[5]).toMatch(/^invalid JSON: /);
  });

  it('a batch of the largest size is accepted', () => {
    const r = parseSignalMessage(signalBatchBody(Array.from({ length: MAX_SIGNALS_PER_MESSAGE }, (_, i) => signal(i))));
    expect(r.ok && r.value.length).toBe(MAX_SIGNALS_PER_MESSAGE);
  });

  it('a batch is routed under signal.# (by its symbol when it has one)', () => {
    expect(signalBatchRoutingKey('ES')).toBe('signal.batch.ES');
    expect(signalBatchRoutingKey(undefined)).toBe('signal.batch');
  });
});
