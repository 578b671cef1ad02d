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
