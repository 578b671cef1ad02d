/**
 * A circuit breaker per market-data source. Closed: the source is used. After `failureThreshold` consecutive
 * failures it opens: the feed switches to the next source in the chain. Once `probeAfterMs` has passed since it
 * opened, the source may be probed (half-open); a successful probe closes it again (the feed switches back),
 * a failed one re-opens it for another `probeAfterMs`.
 *
 * Pure: the clock is passed in.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  failureThreshold: number;
  probeAfterMs: number;
  now?: () => number;
}

export class CircuitBreaker {
  private _state: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private readonly now: () => number;
  /** Times this breaker opened. */
  opened = 0;

  constructor(private readonly opts: CircuitBreakerOptions) {
    if (!(opts.failureThreshold >= 1)) throw new RangeError('failureThreshold must be >= 1');
    this.now = opts.now ?? Date.now;
  }

  get state(): BreakerState {
    return this._state;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** True while the source should not be used (open and not yet due a probe). */
  get isOpen(): boolean {
    return this._state === 'open';
  }

  recordSuccess(): void {
    this.failures = 0;
    this._state = 'closed';
  }

  /** Count a failure; returns true when this failure opened the breaker. */
  recordFailure(): boolean {
    this.failures++;
    if (this._state === 'half_open' || (this._state === 'closed' && this.failures >= this.opts.failureThreshold)) {
      this._state = 'open';
      this.openedAt = this.now();
      this.opened++;
      return true;
    }
    if (this._state === 'open') this.openedAt = this.now();
    return false;
  }

  /** Open long enough: move to half-open and allow one probe. */
  tryProbe(): boolean {
    if (this._state !== 'open' || this.now() - this.openedAt < this.opts.probeAfterMs) return false;
    this._state = 'half_open';
    return true;
  }
}
