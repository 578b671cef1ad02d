/**
 * Exponential backoff with "equal jitter": half fixed, half random, capped at `maxMs`, so clients that
 * lost the same server at the same moment do not reconnect in step. `attempt` counts from 0.
 * The one backoff for hand-written reconnect and redelivery loops (RabbitMQ, the Alpaca stream, the
 * workers); Temporal activities use their retry policies instead.
 */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
