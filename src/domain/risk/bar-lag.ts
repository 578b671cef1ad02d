import { barIntervalMs } from '../../contracts/bar';

/**
 * Risk sizes a trade on the bar store (the ATR stop, realised volatility), while the signal comes from the quant,
 * which reads the same bars off RabbitMQ. The two race: the quant can signal on a bar before the store's writer
 * has committed it, and a decision taken then sizes on the bar before. That decision is still recorded with the
 * bar it used (`sizing.barsThrough`), but it is not the bar the strategy saw.
 *
 * So risk waits for the signal's own bar, boundedly: when the store holds the symbol's bars up to a few bars
 * before the signal's but not that one, the store is behind and the evaluation fails with BarStoreBehindError
 * (nothing is written), to be retried after waitDelayMs (by the risk activity's retries, no sleep of ours). After
 * BAR_WAIT_ATTEMPTS it decides on what the store has. A signal far from any stored bar (a trade started by hand,
 * a symbol the feed does not carry) is not waited for: that bar is not on its way.
 */

/** A signal's bar more than this many bar intervals after the store's newest is not "a bar behind". */
export const BAR_STORE_BEHIND_MAX_BARS = 5;

/**
 * The attempts that wait for the signal's bar; the next decides with what the store holds. The waits between them
 * are designed, not failures: waitDelayMs's schedule, not risk's retry policy.
 */
export const BAR_WAIT_ATTEMPTS = 6;

/**
 * The delay after a waiting attempt `attempt` (1-based) before the next: 50 ms, doubling (50, 100, 200, 400, 800,
 * 1600: 3.15 s over the six waits, far more than the store's writer needs to commit a bar it has received). It
 * starts short because a bar's wait is usually a few milliseconds, and because the next bar of the symbol may
 * already be on its way (npm start replays a symbol's bars ~100 ms apart): a long first wait lets the next
 * signal be decided first, and the two then decide on each other's out-of-order state.
 */
export function waitDelayMs(attempt: number): number {
  return 50 * 2 ** Math.min(Math.max(attempt, 1) - 1, 10);
}

export class BarStoreBehindError extends Error {
  override readonly name = 'BarStoreBehindError';
  constructor(
    readonly symbol: string,
    readonly signalBar: string,
    readonly storedThrough: string,
  ) {
    super(`the bar store has ${symbol} through ${storedThrough}, not yet the signal's bar ${signalBar}`);
  }
}

/**
 * Whether the store is behind the signal: its newest bar of the symbol (in `interval`) is before the signal's bar
 * by no more than BAR_STORE_BEHIND_MAX_BARS intervals.
 */
export function barStoreBehind(storedThrough: string | null, interval: string | null, signalBar: string): boolean {
  if (storedThrough === null || interval === null) return false;
  const step = barIntervalMs(interval);
  const gap = Date.parse(signalBar) - Date.parse(storedThrough);
  return step !== null && Number.isFinite(gap) && gap > 0 && gap <= BAR_STORE_BEHIND_MAX_BARS * step;
}
