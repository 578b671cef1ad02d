import {
  ActivityFailure,
  ApplicationFailure,
  proxyActivities,
  proxyLocalActivities,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';

/**
 * How the trade workflow calls its activities: the named option classes (Temporal retry policies replace
 * all hand-written backoff), one proxy, and what an activity failure means to the trade.
 */

// One proxy; every call states its option class and a readable summary (shown in the Web UI history).
const activities = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds' });

/** Named option sets per activity class. */
export const ACTIVITY_OPTIONS = {
  // Fast DB-bound risk check. A trade that cannot be evaluated within two minutes is stale: it fails
  // rather than trading on an old signal.
  risk: {
    startToCloseTimeout: '10 seconds',
    scheduleToCloseTimeout: '2 minutes',
    retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '10 seconds' },
  },
  // Broker submission. Each retry re-sends the same client order id and looks it up first, so retrying
  // an ambiguous timeout cannot create a second order. A broker's "no" is final. There is no attempt cap:
  // while the order may exist at the broker the submit is never abandoned (429s and outages are waited
  // out, a 429's reset time arriving as the retry's next delay); the workflow bounds it by the
  // time-in-force deadline instead (scheduleToCloseTimeout per call), then resolves the order by id.
  // A submit heartbeats while it runs (src/activities/execution.ts), so one whose worker died is retried on another
  // within 10 s, not 30. Activity options are not part of the command sequence: old histories replay as before.
  submit: {
    startToCloseTimeout: '30 seconds',
    heartbeatTimeout: '10 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      nonRetryableErrorTypes: ['BrokerRejected'],
    },
  },
  // Following is read-only and heartbeats: a dead worker is noticed within the heartbeat timeout and the
  // follow resumes on another worker from what the workflow already knows.
  follow: {
    startToCloseTimeout: '90 seconds',
    heartbeatTimeout: '10 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '15 seconds',
      nonRetryableErrorTypes: ['OrderNotFound'],
    },
  },
  // Ledger writes and cancels must eventually happen, whatever the outage: no attempt cap. They heartbeat while they
  // run, like the submit, so one whose worker died is retried within 10 s.
  bookkeeping: {
    startToCloseTimeout: '30 seconds',
    heartbeatTimeout: '10 seconds',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      nonRetryableErrorTypes: ['BrokerRejected'],
    },
  },
} satisfies Record<string, ActivityOptions>;

/**
 * Risk as a local activity (the trade-path-lean patch): the worker that runs the workflow task runs the
 * check and retries it by this policy, with no activity task, no matching and no extra workflow task. The
 * decision is still recorded (a marker in the history) before anything is sent to the broker.
 */
export const LOCAL_RISK_OPTIONS: LocalActivityOptions = {
  // No start-to-close timeout, only the schedule-to-close. Temporal's Core (sdk-core in @temporalio 1.24) leaks
  // the start-to-close timer of every attempt it retries in the worker (TimeoutBag::mark_started replaces the
  // previous attempt's timer without aborting it: sdk-rust issue #1454). The leaked timer fires later: against a
  // later attempt still running it is a spurious timeout, and once the worker has shut down it panics ("receive
  // half not dropped"), the backtrace a user saw at the end of `npm start`. Without a start-to-close there is no
  // such timer. A hung attempt is bounded by the two minutes; the per-attempt timeout bought nothing anyway, since
  // an abandoned attempt's transaction keeps the account's lock until PostgreSQL ends it.
  scheduleToCloseTimeout: ACTIVITY_OPTIONS.risk.scheduleToCloseTimeout,
  // The same backoff, plus an attempt cap: the worker measures a local activity's schedule-to-close by its
  // own clock, the cap bounds the retries in workflow time too (backoffs 0.5, 1, 2, 4, 8, then 10 s: the
  // 17th attempt starts about two minutes after the first). Risk's designed waits (the bar store a bar behind,
  // the symbol's trades in flight) set their own shorter delays (domain/risk/bar-lag.ts, waitDelayMs).
  retry: { ...ACTIVITY_OPTIONS.risk.retry, maximumAttempts: 17 },
  // Retries after a backoff of up to a second run in the worker: on the dev server a 50 ms durable timer took a
  // second to fire (measured in npm start's logs), twenty times the designed waits' first delay. A longer backoff
  // (the ledger is down) waits on a durable timer instead, so an outage costs a few timers rather than a workflow
  // task held open.
  localRetryThreshold: '1 second',
};
export const localActivities = proxyLocalActivities<Activities>(LOCAL_RISK_OPTIONS);

/** Schedule activity `name` with an option class and a summary for the Web UI history. */
export function call<K extends keyof Activities>(
  name: K,
  optionSet: keyof typeof ACTIVITY_OPTIONS,
  summary: string,
  ...args: Parameters<Activities[K]>
): Promise<Awaited<ReturnType<Activities[K]>>> {
  return callWith(name, ACTIVITY_OPTIONS[optionSet], summary, ...args);
}

/** Schedule activity `name` with options of its own (e.g. an option class with a per-trade bound). */
export function callWith<K extends keyof Activities>(
  name: K,
  options: ActivityOptions,
  summary: string,
  ...args: Parameters<Activities[K]>
): Promise<Awaited<ReturnType<Activities[K]>>> {
  const fn = activities[name] as unknown as {
    executeWithOptions(o: ActivityOptions, a: unknown[]): Promise<Awaited<ReturnType<Activities[K]>>>;
  };
  return fn.executeWithOptions({ ...options, summary }, args);
}

/** What an activity failure says, for the trade's reason. */
export function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure) return err.cause?.message ?? err.message;
  return err instanceof Error ? err.message : String(err);
}

/** The broker no longer knows the order (activity failure type `OrderNotFound`): nothing more can fill. */
export function isOrderNotFound(err: unknown): err is ActivityFailure {
  return (
    err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'OrderNotFound'
  );
}

/** The broker's "no" (activity failure type `BrokerRejected`): its message, else null. */
export function brokerRejection(err: unknown): string | null {
  if (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === 'BrokerRejected'
  ) {
    return err.cause.message;
  }
  return null;
}
