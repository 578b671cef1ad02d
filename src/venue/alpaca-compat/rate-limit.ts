/**
 * Alpaca's request budget: a fixed one-minute window per account, advertised on every answer in
 * X-Ratelimit-Limit / -Remaining / -Reset (epoch seconds of the window's end), as Alpaca does. The client
 * adapter waits out a 429 until X-Ratelimit-Reset (adapters/brokers/alpaca/rest.ts); enforcing the budget
 * (429 once spent) is opt-in, for tests of that back-off — a paper venue has no reason to throttle.
 */
export class RateLimitWindow {
  private windowStart = 0;
  private windowCount = 0;

  constructor(
    private readonly limitPerMinute: number,
    private readonly enforce: boolean,
  ) {}

  /** Count one request (every request, whoever answers it) and return the headers for its answer. */
  admit(nowMs: number): Record<string, string> {
    if (nowMs - this.windowStart >= 60_000) {
      this.windowStart = nowMs;
      this.windowCount = 0;
    }
    this.windowCount++;
    return {
      'X-Ratelimit-Limit': String(this.limitPerMinute),
      'X-Ratelimit-Remaining': String(Math.max(0, this.limitPerMinute - this.windowCount)),
      'X-Ratelimit-Reset': String(Math.ceil((this.windowStart + 60_000) / 1000)),
    };
  }

  /** Whether the window's budget is overspent and requests must get 429 (never when not enforcing). */
  exceeded(): boolean {
    return this.enforce && this.windowCount > this.limitPerMinute;
  }
}
