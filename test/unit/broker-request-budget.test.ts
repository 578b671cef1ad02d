import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BrokerRateLimitedError } from '../../src/adapters/brokers/broker';
import { RequestBudget, type BrokerCallPriority } from '../../src/adapters/brokers/request-budget';

/**
 * The broker request budget on a fake clock (vitest fake timers drive both Date.now and setTimeout):
 * every assertion counts grants at a given simulated instant; nothing depends on real time.
 */

beforeEach(() => {
  vi.useFakeTimers({ now: 1_714_573_800_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Queue `n` acquires of a priority and record the order in which they are granted. */
function queue(b: RequestBudget, priority: BrokerCallPriority, n: number, log: string[], signal?: AbortSignal): void {
  for (let i = 0; i < n; i++) {
    void b.acquire(priority, { signal }).then(
      () => void log.push(`${priority}${i}`),
      (err: unknown) => void log.push(`${priority}${i}:${(err as Error).name}`),
    );
  }
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe('RequestBudget', () => {
  it('grants the burst at once, then one token per refill interval', async () => {
    // 60/min, burst 6: refill 54/min = one token every 1111.1 ms.
    const b = new RequestBudget({ limitPerMinute: 60 });
    expect(b.burst).toBe(6);
    const log: string[] = [];
    queue(b, 'read', 8, log);
    await flush();
    expect(log).toHaveLength(6);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(log).toHaveLength(6);
    await vi.advanceTimersByTimeAsync(20);
    expect(log).toHaveLength(7);
    await vi.advanceTimersByTimeAsync(1_112);
    expect(log).toHaveLength(8);
  });

  it('never grants more than the limit in any 60 s window, however many callers wait', async () => {
    const b = new RequestBudget({ limitPerMinute: 200 });
    const log: string[] = [];
    queue(b, 'poll', 1_000, log);
    await flush();
    const grantedAt: number[] = [];
    let seen = 0;
    for (let t = 0; t <= 180_000; t += 250) {
      await vi.advanceTimersByTimeAsync(250);
      for (; seen < log.length; seen++) grantedAt.push(t);
    }
    // Sliding windows over the grant times.
    for (let i = 0; i < grantedAt.length; i++) {
      const inWindow = grantedAt.filter((x) => x >= grantedAt[i]! && x < grantedAt[i]! + 60_000).length;
      expect(inWindow).toBeLessThanOrEqual(200);
    }
    // And it does use the budget: burst 20 + 180/min over three minutes.
    expect(log.length).toBeGreaterThanOrEqual(20 + 3 * 180 - 1);
    expect(log.length).toBeLessThanOrEqual(20 + 3 * 180 + 1);
  });

  it('submits and cancels go before reads, reads before polls; first come first served within one', async () => {
    const b = new RequestBudget({ limitPerMinute: 60, burst: 1 });
    await b.acquire('read'); // spend the only token
    const log: string[] = [];
    queue(b, 'poll', 2, log);
    queue(b, 'read', 2, log);
    queue(b, 'trade', 2, log);
    for (let i = 0; i < 6; i++) await vi.advanceTimersByTimeAsync(1_017); // 59/min: one token per ~1017 ms
    expect(log).toEqual(['trade0', 'trade1', 'read0', 'read1', 'poll0', 'poll1']);
    expect(b.granted).toEqual({ trade: 2, read: 3, poll: 2 });
  });

  it('a fresh caller does not overtake a waiting one of equal or higher priority', async () => {
    const b = new RequestBudget({ limitPerMinute: 60, burst: 1 });
    await b.acquire('trade');
    const log: string[] = [];
    queue(b, 'trade', 1, log);
    await vi.advanceTimersByTimeAsync(1_100); // a token is due, but the first waiter takes it
    void b.acquire('read').then(() => log.push('late-read'));
    await vi.advanceTimersByTimeAsync(1_100);
    expect(log).toEqual(['trade0', 'late-read']);
  });

  it("a 429 pauses the whole bucket until the broker's reset, then restarts it empty", async () => {
    const b = new RequestBudget({ limitPerMinute: 600 }); // burst 60: plenty of tokens
    const log: string[] = [];
    b.pauseUntil(Date.now() + 10_000);
    queue(b, 'trade', 3, log);
    queue(b, 'poll', 3, log);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(log).toEqual([]);
    expect(b.pausedUntil).toBeGreaterThan(Date.now());
    await vi.advanceTimersByTimeAsync(2_000); // 540/min refill: ~18 tokens in 2 s after the reset
    expect(log).toEqual(['trade0', 'trade1', 'trade2', 'poll0', 'poll1', 'poll2']);
    expect(b.pauses).toBe(1);
    // A shorter pause does not shorten a longer one.
    b.pauseUntil(Date.now() + 5_000);
    b.pauseUntil(Date.now() + 1_000);
    expect(b.pausedUntil).toBe(Date.now() + 5_000);
  });

  it('an unlimited budget never waits except through a 429 pause', async () => {
    const b = new RequestBudget({ limitPerMinute: 0 });
    const log: string[] = [];
    queue(b, 'poll', 1_000, log);
    await flush();
    expect(log).toHaveLength(1_000);
    b.pauseUntil(Date.now() + 3_000);
    queue(b, 'trade', 2, log);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(log).toHaveLength(1_000);
    await vi.advanceTimersByTimeAsync(2);
    expect(log).toHaveLength(1_002);
  });

  it('a cancelled waiter leaves with BrokerRateLimitedError(retryAfterMs) and frees its place', async () => {
    const b = new RequestBudget({ limitPerMinute: 60, burst: 1 });
    await b.acquire('trade');
    b.pauseUntil(Date.now() + 30_000);
    const ctl = new AbortController();
    const cancelled = b.acquire('trade', { signal: ctl.signal }).catch((e: unknown) => e);
    const log: string[] = [];
    queue(b, 'read', 1, log);
    await vi.advanceTimersByTimeAsync(1_000);
    ctl.abort();
    const err = await cancelled;
    expect(err).toBeInstanceOf(BrokerRateLimitedError);
    expect((err as BrokerRateLimitedError).retryAfterMs).toBeGreaterThanOrEqual(29_000);
    expect(b.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(31_100);
    expect(log).toEqual(['read0']);
  });

  it('a deadline the budget cannot meet fails at once; one it can meet waits', async () => {
    const b = new RequestBudget({ limitPerMinute: 60, burst: 1 });
    await b.acquire('trade');
    b.pauseUntil(Date.now() + 20_000);
    const err = await b.acquire('trade', { deadlineMs: Date.now() + 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerRateLimitedError);
    expect((err as BrokerRateLimitedError).retryAfterMs).toBeGreaterThanOrEqual(20_000);
    let ok = false;
    void b.acquire('trade', { deadlineMs: Date.now() + 25_000 }).then(() => (ok = true));
    await vi.advanceTimersByTimeAsync(21_100);
    expect(ok).toBe(true);
  });

  it('refuses nonsense limits', () => {
    expect(() => new RequestBudget({ limitPerMinute: -1 })).toThrow(RangeError);
    expect(() => new RequestBudget({ limitPerMinute: 1.5 })).toThrow(RangeError);
    expect(() => new RequestBudget({ limitPerMinute: 10, burst: 10 })).toThrow(RangeError);
  });
});
