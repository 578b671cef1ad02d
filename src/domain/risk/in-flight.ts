import { BAR_WAIT_ATTEMPTS } from './bar-lag';
import type { PortfolioSnapshot, RejectionCode, RiskDecision } from './types';

/**
 * A signal races the trades still in flight on its symbol. The venue fills a market order on the bar after its
 * signal, and the quant signals on that same bar: the exit of a long can be decided a few milliseconds before the
 * fill that opened the long is booked. Decided then, the sell finds no shares (short_not_allowed) and the long
 * stays open with its exit lost; the next buy then finds the position full (exposure_limit_breach).
 *
 * Those caps measure held shares plus the worst case of the in-flight trades' reservations, a state about to
 * change. So a signal one of them rejects while other trades of its symbol are in flight waits, boundedly,
 * like the bar-store wait (bar-lag.ts): the evaluation writes nothing and fails with TradesInFlightError, to be
 * retried after waitDelayMs (by the risk activity's retries). After IN_FLIGHT_WAIT_ATTEMPTS it decides on what is
 * there, so an order resting at the broker for days costs a later signal a few seconds, not the decision. Approvals
 * never wait (an approval is not held back, though its size may be capped by the in-flight worst case), and
 * neither do the gates' rejections (the kill switch, the cooldown, confidence, sizing): they do not depend on
 * what is in flight.
 */

/** The attempts that may wait for the symbol's trades in flight; the next decides. The same as the bar's. */
export const IN_FLIGHT_WAIT_ATTEMPTS = BAR_WAIT_ATTEMPTS;

/**
 * The rejections that read the in-flight trades (the exposure model's held shares and reservations): the caps of
 * position, exposure, leverage, buying power, margin and stress, and reduce-only's allowance. The others (the
 * volatility caps, the circuit breaker, max order notional and every gate) would reject the same after a settle.
 */
export const IN_FLIGHT_DEPENDENT: ReadonlySet<RejectionCode> = new Set<RejectionCode>([
  'reduce_only',
  'short_not_allowed',
  'over_position_limit',
  'exposure_limit_breach',
  'leverage_limit_breach',
  'insufficient_buying_power',
  'under_margin_call',
  'stress_test_fail',
]);

export class TradesInFlightError extends Error {
  override readonly name = 'TradesInFlightError';
  constructor(
    readonly symbol: string,
    readonly reasonCode: string,
    /** The trades (workflow ids) whose reservations on the symbol are still held. */
    readonly inFlight: readonly string[],
  ) {
    super(
      `${reasonCode} on ${symbol} while ${inFlight.length} trade(s) of ${symbol} are in flight (${inFlight.join(', ')}): waiting for them to settle`,
    );
  }
}

/**
 * The trades a decision should wait for: the other trades in flight on `symbol` when a check that reads them
 * rejected it, else none.
 */
export function tradesInFlightToAwait(
  decision: RiskDecision,
  portfolio: Pick<PortfolioSnapshot, 'reservations'>,
  symbol: string,
  workflowId: string,
): string[] {
  if (decision.decision !== 'REJECTED' || !IN_FLIGHT_DEPENDENT.has(decision.reasonCode as RejectionCode)) return [];
  const ids: string[] = [];
  for (const r of portfolio.reservations) {
    if (r.symbol === symbol && r.workflowId !== workflowId) ids.push(r.workflowId ?? '(unknown trade)');
  }
  return ids;
}
