import { BrokerRateLimitedError } from './broker';

/**
 * The process's broker request budget: one token bucket that every HTTP call to the broker draws from,
 * with priorities and a whole-bucket pause after a 429.
 *
 * Why our own class and not a library: the needs are (1) strict priority between submits/cancels and
 * reads/polls, (2) pausing every caller until the broker's X-Ratelimit-Reset, (3) an AbortSignal or
 * deadline per queued caller, and (4) an injectable clock so the tests count grants instead of timing
 * them. `bottleneck` (last release 2019) has priorities but no per-job abort while queued and only
 * timer-driven reservoirs; `limiter` has neither priorities nor pause; `p-queue` is ESM-only (this
 * project is CommonJS) and rate-limits in fixed windows with no clock injection. The class below is
 * ~150 lines with unit tests (test/unit/broker-request-budget.test.ts).
 *
 * Budget arithmetic: capacity `burst`, refilled continuously at (limit − burst) per minute, so that in ANY
 * 60 s window at most `limit` requests are granted (burst + refill·60 s = limit). Alpaca counts
 * 200/min per account: with the default burst (10 %), 20 can go at once and 180/min are sustained.
 * One budget per process; other processes on the same key (a manual `npm run reconcile`) share Alpaca's
 * limit without sharing this bucket, and their 429s are then waited out here.
 */

/**
 * Who goes first when tokens are scarce. `trade`: submits, cancels and the lookups that resolve them
 * (money is moving). `read`: on-demand reads (order lookups, account, positions, executions). `poll`:
 * the background poller's re-reads, which can always wait.
 */
export type BrokerCallPriority = 'trade' | 'read' | 'poll';
const RANK: Record<BrokerCallPriority, number> = { trade: 0, read: 1, poll: 2 };

export interface RequestBudgetOptions {
  /** Requests per minute. 0 = unlimited (a local venue); 429 pauses still apply. */
  limitPerMinute: number;
  /** Bucket capacity. Default max(1, floor(limit / 10)). Must be < limit. */
  burst?: number;
  now?: () => number;
}

export interface AcquireOptions {
  signal?: AbortSignal;
  /** Epoch ms. If a token cannot be had before it, fail now with BrokerRateLimitedError. */
  deadlineMs?: number;
}

interface Waiter {
  rank: number;
  resolve: () => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

export class RequestBudget {
  readonly limitPerMinute: number;
  readonly burst: number;
  /** Tokens per ms. Infinity when unlimited. */
  private readonly rate: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;
  private pausedUntilMs = 0;
  private readonly queues: Waiter[][] = [[], [], []];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  /** Tokens handed out (requests allowed to go), per priority. */
  readonly granted: Record<BrokerCallPriority, number> = { trade: 0, read: 0, poll: 0 };
  /** 429 pauses applied. */
  pauses = 0;

  constructor(opts: RequestBudgetOptions) {
    const limit = opts.limitPerMinute;
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError('limitPerMinute must be an integer >= 0');
    this.limitPerMinute = limit;
    this.now = opts.now ?? Date.now;
    if (limit === 0) {
      this.burst = Number.POSITIVE_INFINITY;
      this.rate = Number.POSITIVE_INFINITY;
    } else {
      const burst = opts.burst ?? Math.max(1, Math.floor(limit / 10));
      if (!Number.isInteger(burst) || burst < 1 || (limit > 1 && burst >= limit))
        throw new RangeError('burst must be an integer in [1, limitPerMinute)');
      this.burst = burst;
      // A limit of 1/min with burst 1 would refill at 0: keep at least one request per minute.
      this.rate = Math.max(1, limit - burst) / 60_000;
    }
    this.tokens = this.burst;
    this.last = this.now();
  }

  get unlimited(): boolean {
    return this.limitPerMinute === 0;
  }

  /** Epoch ms until which nothing is granted (a broker 429's reset), 0 if not paused. */
  get pausedUntil(): number {
    return this.pausedUntilMs > this.now() ? this.pausedUntilMs : 0;
  }

  /** Callers waiting for a token. */
  get waiting(): number {
    return this.queues.reduce((n, q) => n + q.length, 0);
  }

  /**
   * Wait for a token. Resolves when the request may be sent; rejects with BrokerRateLimitedError when
   * the signal fires or the deadline cannot be met (retryAfterMs = how long the budget expects to need).
   */
  acquire(priority: BrokerCallPriority, opts: AcquireOptions = {}): Promise<void> {
    const rank = RANK[priority];
    this.refill();
    // Fast path: nobody of equal or higher priority is waiting and a token is there.
    if (this.tokens >= 1 && this.queues.slice(0, rank + 1).every((q) => q.length === 0)) {
      this.take(priority);
      return Promise.resolve();
    }
    const early = this.refusal(rank, opts);
    if (early) return Promise.reject(early);
    return new Promise<void>((resolve, reject) => {
      let deadlineTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.remove(waiter);
        reject(this.limited(rank, 'the call was cancelled while waiting for the broker request budget'));
      };
      const waiter: Waiter = {
        rank,
        resolve: () => {
          waiter.cleanup();
          this.take(priority);
          resolve();
        },
        reject,
        cleanup: () => {
          opts.signal?.removeEventListener('abort', onAbort);
          if (deadlineTimer) clearTimeout(deadlineTimer);
        },
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.deadlineMs !== undefined) {
        deadlineTimer = setTimeout(
          () => {
            this.remove(waiter);
            reject(this.limited(rank, 'the broker request budget had no token before the deadline'));
          },
          Math.max(0, opts.deadlineMs - this.now()),
        );
        deadlineTimer.unref();
      }
      this.queues[rank]!.push(waiter);
      this.pump();
    });
  }

  /**
   * The broker answered 429: grant nothing before `untilMs` (epoch), whoever asks, so that waiting
   * callers do not each hammer the broker into more 429s. The bucket restarts empty at the reset.
   */
  pauseUntil(untilMs: number): void {
    if (untilMs <= this.pausedUntilMs) return;
    this.refill();
    this.pausedUntilMs = untilMs;
    this.tokens = 0;
    this.pauses++;
    this.schedule();
  }

  /** Re-read the clock now instead of at the next timer (for an injected clock that jumps). */
  poke(): void {
    this.pump();
  }

  /** Fail every waiter (process shutdown). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const q of this.queues) {
      for (const w of q.splice(0)) {
        w.cleanup();
        w.reject(new BrokerRateLimitedError('broker request budget closed', 0));
      }
    }
  }

  // ---------------------------------------------------------------------------------------------

  private take(priority: BrokerCallPriority): void {
    this.tokens -= 1;
    this.granted[priority]++;
  }

  private refill(): void {
    const t = this.now();
    if (t < this.pausedUntilMs) {
      this.last = t;
      return;
    }
    if (this.rate === Number.POSITIVE_INFINITY) this.tokens = Number.POSITIVE_INFINITY;
    else {
      const from = Math.max(this.last, this.pausedUntilMs);
      this.tokens = Math.min(this.burst, this.tokens + Math.max(0, t - from) * this.rate);
    }
    this.last = t;
  }

  /** Hand out what the bucket holds, highest priority first (FIFO within one), then wait for the next token. */
  private pump(): void {
    this.refill();
    for (;;) {
      const q = this.queues.find((x) => x.length > 0);
      if (!q || this.tokens < 1) break;
      q.shift()!.resolve();
    }
    this.schedule();
  }

  /** When the next token can be granted (epoch ms). */
  private nextTokenAt(): number {
    const t = this.now();
    const from = Math.max(t, this.pausedUntilMs);
    if (this.rate === Number.POSITIVE_INFINITY) return from;
    const have = t < this.pausedUntilMs ? 0 : this.tokens;
    return from + Math.max(0, (1 - have) / this.rate);
  }

  private schedule(): void {
    if (this.waiting === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    const at = this.nextTokenAt();
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Number.POSITIVE_INFINITY;
        this.pump();
      },
      Math.max(1, Math.ceil(at - this.now())),
    );
    this.timer.unref();
  }

  private remove(w: Waiter): void {
    const q = this.queues[w.rank]!;
    const i = q.indexOf(w);
    if (i >= 0) q.splice(i, 1);
    w.cleanup();
    this.schedule();
  }

  /** Estimated wait for a caller of this rank joining now: the pause, plus the queue ahead of it. */
  private expectedWaitMs(rank: number): number {
    const ahead = this.queues.slice(0, rank + 1).reduce((n, q) => n + q.length, 0);
    const t = this.now();
    const start = Math.max(t, this.pausedUntilMs);
    if (this.rate === Number.POSITIVE_INFINITY) return start - t;
    const have = t < this.pausedUntilMs ? 0 : this.tokens;
    return start - t + Math.max(0, (ahead + 1 - have) / this.rate);
  }

  private limited(rank: number, why: string): BrokerRateLimitedError {
    return new BrokerRateLimitedError(why, Math.max(1, Math.ceil(this.expectedWaitMs(rank))));
  }

  private refusal(rank: number, opts: AcquireOptions): BrokerRateLimitedError | undefined {
    if (opts.signal?.aborted)
      return this.limited(rank, 'the call was cancelled while waiting for the broker request budget');
    if (opts.deadlineMs !== undefined && this.now() + this.expectedWaitMs(rank) > opts.deadlineMs)
      return this.limited(rank, 'the broker request budget cannot grant a token before the deadline');
    return undefined;
  }
}
