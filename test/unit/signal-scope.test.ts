import { describe, expect, it } from 'vitest';
import { BarSchema } from '../../src/contracts/bar';
import { barMessageId, signalIdFor } from '../../src/contracts/ids';
import { MAX_SIGNAL_ID } from '../../src/contracts/trade-ids';
import { SMA_CROSS, SignalEngine, strategyFactory } from '../../src/domain/strategies';

/** A run of closes that makes the 2/5 SMA crossover fire: down, then sharply up. */
const closes = [20, 19, 18, 17, 16, 15, 16, 18, 21, 25, 30];
const bars = closes.map((close, i) => {
  const timestamp = new Date(Date.UTC(2013, 0, 2 + i)).toISOString();
  return BarSchema.parse({
    message_id: barMessageId('replay', 'NVDA', '1d', timestamp),
    symbol: 'NVDA',
    interval: '1d',
    timestamp,
    open: close,
    high: close * 1.01,
    low: close * 0.99,
    close,
    volume: 1_000_000,
    source: 'replay',
    correlation_id: `corr-${i}`,
  });
});

function signals(scope?: string) {
  const engine = new SignalEngine(
    strategyFactory(SMA_CROSS, { smaCross: { fast: 2, slow: 5 } }),
    scope === undefined ? {} : { signalScope: scope },
  );
  return bars.flatMap((b) => {
    const out = engine.process(b);
    return out.kind === 'signal' ? [out.signal] : [];
  });
}
const signalIds = (scope?: string) => signals(scope).map((s) => s.signal_id);

describe('signal ids scoped to the account they trade for', () => {
  it('are deterministic within a scope: the same bars give the same ids (a replay starts no second trade)', () => {
    const a = signalIds('paper-20260101T000000');
    expect(a.length).toBeGreaterThan(0);
    expect(signalIds('paper-20260101T000000')).toEqual(a);
  });

  it('differ between scopes: a fresh paper account trades the same bars again', () => {
    const a = signalIds('paper-run-1');
    const b = signalIds('paper-run-2');
    expect(b).toHaveLength(a.length);
    for (const id of b) expect(a).not.toContain(id);
  });

  it('keep the unscoped ids unchanged and within the contract length', () => {
    const unscoped = signals();
    for (const s of unscoped) expect(s.signal_id).toBe(signalIdFor(SMA_CROSS, 'NVDA', s.created_at));
    for (const id of [...unscoped.map((s) => s.signal_id), ...signalIds('a-long-account-name-'.repeat(5))]) {
      expect(id.length).toBeLessThanOrEqual(MAX_SIGNAL_ID);
    }
  });
});
