/** The trade worker's workflow-task slots (src/workers/trade-worker.ts), sized where the reason is written. */

/** Workflow-task slots for the trades' own tasks (and the pollers, which each hold one while they poll). */
export const TRADE_WORKFLOW_TASK_SLOTS = 40;

/**
 * maxConcurrentWorkflowTaskExecutions. With the intake in this process, every start in flight (up to
 * SIGNAL_PREFETCH) holds a workflow-task slot too: an eager start reserves its slot before the
 * StartWorkflowExecution call and keeps it until the first workflow task is done, so the call's whole round trip
 * (seconds when the server is busy) is spent on a slot. With 40 slots in all, a burst's starts took every
 * slot, the pollers stopped (a poller needs a free slot to poll) and the tasks of trades already running waited
 * behind them (docs/benchmarks.md, issue 12: "The bound at saturation"). So the starts get slots of their own.
 */
export function workflowTaskSlots(intakeInWorker: boolean, signalPrefetch: number): number {
  return TRADE_WORKFLOW_TASK_SLOTS + (intakeInWorker ? signalPrefetch : 0);
}

/**
 * Trades of this worker in their risk evaluation (the local activity in flight) or on their way to it (start call
 * or first task's activation in flight; later tasks' activations count too) at most before the intake in the
 * worker waits to start another. Risk evaluations of an account run one at a time under its lock (RiskOps), so
 * more of them at once only wait, each holding its first workflow task's slot, and a PostgreSQL connection while
 * it waits for the lock. Without this bound a burst's eager starts ran the slots out: about a third of a
 * 400-signal burst could not start eagerly, and their first workflow tasks waited 18-23 s in the server's
 * matching backlog (persisted, re-read, their timers firing meanwhile: the server work that grows into the
 * overload spiral of docs/benchmarks.md). With it the burst waits in RabbitMQ, un-acked, and its starts stay eager (0-6 of 400 fell back in the
 * same-run A/B; later tasks holding slots still make a few fall back: docs/benchmarks.md, issue 12).
 * 16 leaves the trades' own 40 slots room for the pollers and the tasks after the order; at 10 signals/s a worker
 * has 1-3 evaluations in flight, so the bound never holds a start there.
 */
export const TRADES_IN_RISK_MAX = 16;

/** How often a held start looks again (a risk evaluation lasts tens of milliseconds when it does not wait). */
export const ADMISSION_POLL_MS = 10;

/** A trade that never reaches risk (an invalid signal ends before it, a cancel) is forgotten after this long. */
export const ON_THEIR_WAY_TTL_MS = 60_000;

/**
 * Trades this worker's intake started whose risk evaluation has not begun yet. The worker's own counts miss a
 * started trade for two moments: its start answered and its first activation not yet taken, then that activation
 * done and its evaluation (a local activity) not yet begun. On a loaded machine those moments lasted long enough
 * for a held burst to be started whole (test/integration/intake-eager-start.test.ts: 27 of 27). Counted here from
 * the start's answer to the evaluation's first moment, a started trade is always counted somewhere (during its
 * first activation twice, which only holds the next start a moment longer).
 */
export class TradesOnTheirWayToRisk {
  /** Workflow id → when its start was answered; a Map keeps insertion order, so the oldest come first. */
  private readonly since = new Map<string, number>();

  started(workflowId: string, now = Date.now()): void {
    this.since.set(workflowId, now);
  }

  riskBegan(workflowId: string): void {
    this.since.delete(workflowId);
  }

  count(now = Date.now()): number {
    for (const [id, at] of this.since) {
      if (now - at <= ON_THEIR_WAY_TTL_MS) break;
      this.since.delete(id);
    }
    return this.since.size;
  }
}

/** The intake's admission for a trade worker (signal-intake.ts, IntakeOptions.admission). */
export function tradeAdmission(
  worker: { getStatus(): { numInFlightLocalActivities: number; numInFlightWorkflowActivations: number } },
  onTheirWay: TradesOnTheirWayToRisk,
): {
  busy: (startsInFlight: number) => boolean;
  started: (workflowId: string) => void;
  pollMs: number;
} {
  return {
    busy: (startsInFlight) => {
      const { numInFlightLocalActivities: inRisk, numInFlightWorkflowActivations: activations } = worker.getStatus();
      // A started trade is on its way to risk until its evaluation begins: its start call in flight, then
      // (onTheirWay) until its evaluation's first moment. Activations count too, so a busy workflow thread also
      // holds the starts: the trades already in flight go first.
      return inRisk + activations + startsInFlight + onTheirWay.count() >= TRADES_IN_RISK_MAX;
    },
    started: (workflowId) => onTheirWay.started(workflowId),
    pollMs: ADMISSION_POLL_MS,
  };
}

/**
 * The activities with risk's first moment reported to the admission (TradesOnTheirWayToRisk.riskBegan): from then
 * on the worker counts the trade itself, as a local activity in flight.
 */
// Method syntax in the constraint: the activities' own input type (with the signal) is accepted for it.
export function reportingRiskBegun<A extends { evaluateRisk(input: { workflowId: string }): Promise<unknown> }>(
  activities: A,
  onTheirWay: TradesOnTheirWayToRisk,
): A {
  const evaluate = activities.evaluateRisk.bind(activities);
  const evaluateRisk: A['evaluateRisk'] = (input: { workflowId: string }) => {
    onTheirWay.riskBegan(input.workflowId);
    return evaluate(input);
  };
  return { ...activities, evaluateRisk };
}
