import type { OhlcvBar } from '../../contracts/bar';

/**
 * Upstream sanity checks for bars from any source (Polygon REST/WebSocket, replay, synthetic).
 *
 * Impossible data must never reach the strategies or the bar store (risk sizes positions on it): a bar with
 * high < low or a non-positive price would give a negative ATR or an infinite return; a bar from the future or
 * out of order for its symbol would let a strategy act on information it could not have had. Such a bar is
 * rejected with a reason the feed logs and counts; it never crashes the feed.
 *
 * Pure: the clock is passed in, and the per-series memory is the only state.
 */

export type BarRejection =
  | 'non_finite'
  | 'non_positive_price'
  | 'high_below_low'
  | 'high_low_not_bounding'
  | 'negative_volume'
  | 'future_timestamp'
  | 'bad_timestamp'
  | 'out_of_order';

export const BAR_REJECTIONS: readonly BarRejection[] = [
  'non_finite',
  'non_positive_price',
  'high_below_low',
  'high_low_not_bounding',
  'negative_volume',
  'future_timestamp',
  'bad_timestamp',
  'out_of_order',
];

export type BarCheck = { ok: true } | { ok: false; reason: BarRejection; detail: string };

/** Stateless checks of one bar: prices, volume, timestamp against `nowMs` (+ tolerated clock skew). */
export function checkBar(bar: OhlcvBar, nowMs: number, maxClockSkewMs = 60_000): BarCheck {
  const { open, high, low, close, volume } = bar;
  if (![open, high, low, close, volume].every(Number.isFinite)) {
    return { ok: false, reason: 'non_finite', detail: `O=${open} H=${high} L=${low} C=${close} V=${volume}` };
  }
  if (!(open > 0 && high > 0 && low > 0 && close > 0)) {
    return { ok: false, reason: 'non_positive_price', detail: `O=${open} H=${high} L=${low} C=${close}` };
  }
  if (high < low) return { ok: false, reason: 'high_below_low', detail: `H=${high} < L=${low}` };
  if (high < Math.max(open, close) || low > Math.min(open, close)) {
    return {
      ok: false,
      reason: 'high_low_not_bounding',
      detail: `high/low do not bound open/close (O=${open} H=${high} L=${low} C=${close})`,
    };
  }
  if (volume < 0) return { ok: false, reason: 'negative_volume', detail: `V=${volume}` };
  const t = Date.parse(bar.timestamp);
  if (Number.isNaN(t)) return { ok: false, reason: 'bad_timestamp', detail: `timestamp "${bar.timestamp}"` };
  if (t > nowMs + maxClockSkewMs) {
    return {
      ok: false,
      reason: 'future_timestamp',
      detail: `${bar.timestamp} is after now (${new Date(nowMs).toISOString()})`,
    };
  }
  return { ok: true };
}

export interface BarValidatorOptions {
  /** The clock (ms since epoch). Replay passes wall-clock time too: recorded bars are all in the past. */
  now?: () => number;
  /** Tolerated clock skew before a bar counts as from the future. Default 60 s. */
  maxClockSkewMs?: number;
}

/**
 * Stateful validator: the stateless checks plus order per series (symbol + interval). A bar at or before the
 * last accepted bar of its series is rejected as out of order (an exact repeat is the same: consumers
 * de-duplicate by message id, so the feed never needs to send one twice in a row).
 */
export class BarValidator {
  private readonly last = new Map<string, number>();
  private readonly now: () => number;
  private readonly skew: number;
  readonly counts: Record<BarRejection, number> = Object.fromEntries(BAR_REJECTIONS.map((r) => [r, 0])) as Record<
    BarRejection,
    number
  >;
  accepted = 0;

  constructor(opts: BarValidatorOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.skew = opts.maxClockSkewMs ?? 60_000;
  }

  get rejected(): number {
    return BAR_REJECTIONS.reduce((n, r) => n + this.counts[r], 0);
  }

  /** The last accepted bar start (ms) of a series, if any. */
  lastAccepted(symbol: string, interval: string): number | undefined {
    return this.last.get(`${symbol}|${interval}`);
  }

  /** Check a bar; on acceptance it becomes the series' latest. */
  check(bar: OhlcvBar, interval: string): BarCheck {
    const r = checkBar(bar, this.now(), this.skew);
    if (!r.ok) {
      this.counts[r.reason]++;
      return r;
    }
    const key = `${bar.symbol}|${interval}`;
    const t = Date.parse(bar.timestamp);
    const prev = this.last.get(key);
    if (prev !== undefined && t <= prev) {
      this.counts.out_of_order++;
      return {
        ok: false,
        reason: 'out_of_order',
        detail: `${bar.timestamp} is not after ${new Date(prev).toISOString()} for ${bar.symbol} ${interval}`,
      };
    }
    this.last.set(key, t);
    this.accepted++;
    return { ok: true };
  }
}
