/**
 * One trade's path from its workflow history: server-side times of each stage (workflow tasks, evaluateRisk,
 * submitOrder), and counts that do not depend on the machine (workflow tasks, matching dispatches, events).
 */
import type { Client } from '@temporalio/client';

/** Temporal event types used here (temporal.api.enums.v1.EventType). */
export const EV = {
  WF_STARTED: 1,
  WF_COMPLETED: 2,
  WFT_SCHEDULED: 5,
  WFT_STARTED: 6,
  WFT_COMPLETED: 7,
  ACT_SCHEDULED: 10,
  ACT_STARTED: 11,
  ACT_COMPLETED: 12,
  MARKER_RECORDED: 25,
} as const;

export interface TsLike {
  seconds?: number | { toNumber(): number } | null;
  nanos?: number | null;
}
export const tsMs = (t: TsLike | null | undefined): number => {
  if (!t) return NaN;
  const s = t.seconds;
  const sec = s === null || s === undefined ? 0 : typeof s === 'number' ? s : s.toNumber();
  return sec * 1000 + (t.nanos ?? 0) / 1e6;
};

/** Server-side times (ms since the epoch) of one trade's path. NaN when the history lacks the event. */
export interface TradeTimes {
  wfStarted: number;
  wft1Started: number;
  wft1Completed: number;
  riskScheduled: number;
  riskStarted: number;
  riskCompleted: number;
  wft2Started: number;
  wft2Completed: number;
  submitScheduled: number;
  submitStarted: number;
  submitCompleted: number;
  wfCompleted: number;
  events: number;
  /** Workflow tasks completed over the whole trade. */
  wfts: number;
  /** Workflow tasks completed up to the one that scheduled submitOrder (inclusive). */
  wftsToOrder: number;
  /**
   * Tasks (workflow and activity) dispatched through matching up to submitOrder's start (inclusive). A task
   * handed over eagerly (eager workflow start, eager activity execution) starts in the same server request
   * that scheduled it; one dispatched through matching waits for a poll: schedule-to-start ≥ 1 ms.
   */
  dispatchesToOrder: number;
  /** Risk ran as a local activity (a marker in the first workflow task), not as an activity task. */
  riskLocal: boolean;
}

/** Below this schedule-to-start a task was handed over eagerly, not through matching (see dispatchesToOrder). */
const EAGER_MAX_MS = 1;

export interface HistoryEventLike {
  eventId?: number | { toNumber(): number } | null;
  eventTime?: TsLike | null;
  eventType?: number | null;
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null } | null;
  activityTaskStartedEventAttributes?: { scheduledEventId?: number | { toNumber(): number } | null } | null;
  activityTaskCompletedEventAttributes?: { scheduledEventId?: number | { toNumber(): number } | null } | null;
  markerRecordedEventAttributes?: { markerName?: string | null } | null;
}

const idNum = (v: number | { toNumber(): number } | null | undefined): number =>
  v === null || v === undefined ? NaN : typeof v === 'number' ? v : v.toNumber();

export function tradeTimes(events: readonly HistoryEventLike[]): TradeTimes {
  const t: TradeTimes = {
    wfStarted: NaN,
    wft1Started: NaN,
    wft1Completed: NaN,
    riskScheduled: NaN,
    riskStarted: NaN,
    riskCompleted: NaN,
    wft2Started: NaN,
    wft2Completed: NaN,
    submitScheduled: NaN,
    submitStarted: NaN,
    submitCompleted: NaN,
    wfCompleted: NaN,
    events: events.length,
    wfts: 0,
    wftsToOrder: NaN,
    dispatchesToOrder: 0,
    riskLocal: false,
  };
  const activityOf = new Map<number, string>();
  const scheduledAt = new Map<number, number>();
  let wftStarts = 0;
  let wftCompletes = 0;
  let wftScheduledAt = NaN;
  let orderStarted = false;
  for (const e of events) {
    const at = tsMs(e.eventTime);
    switch (e.eventType) {
      case EV.WFT_SCHEDULED:
        wftScheduledAt = at;
        break;
      case EV.WF_STARTED:
        t.wfStarted = at;
        break;
      case EV.WF_COMPLETED:
        t.wfCompleted = at;
        break;
      case EV.WFT_STARTED:
        if (!orderStarted && !(at - wftScheduledAt < EAGER_MAX_MS)) t.dispatchesToOrder++;
        wftStarts++;
        if (wftStarts === 1) t.wft1Started = at;
        if (wftStarts === 2) t.wft2Started = at;
        break;
      case EV.WFT_COMPLETED:
        t.wfts++;
        wftCompletes++;
        if (wftCompletes === 1) t.wft1Completed = at;
        if (wftCompletes === 2) t.wft2Completed = at;
        break;
      case EV.ACT_SCHEDULED: {
        const name = e.activityTaskScheduledEventAttributes?.activityType?.name ?? '';
        activityOf.set(idNum(e.eventId), name);
        scheduledAt.set(idNum(e.eventId), at);
        if (name === 'evaluateRisk' && Number.isNaN(t.riskScheduled)) t.riskScheduled = at;
        if (name === 'submitOrder' && Number.isNaN(t.submitScheduled)) {
          t.submitScheduled = at;
          t.wftsToOrder = wftCompletes;
        }
        break;
      }
      case EV.ACT_STARTED: {
        const sched = idNum(e.activityTaskStartedEventAttributes?.scheduledEventId);
        const name = activityOf.get(sched);
        // Activity started events are written at completion, so they are counted here up to the order's own.
        if (!orderStarted && !(at - (scheduledAt.get(sched) ?? NaN) < EAGER_MAX_MS)) t.dispatchesToOrder++;
        if (name === 'submitOrder') orderStarted = true;
        if (name === 'evaluateRisk' && Number.isNaN(t.riskStarted)) t.riskStarted = at;
        if (name === 'submitOrder' && Number.isNaN(t.submitStarted)) t.submitStarted = at;
        break;
      }
      case EV.ACT_COMPLETED: {
        const name = activityOf.get(idNum(e.activityTaskCompletedEventAttributes?.scheduledEventId));
        if (name === 'evaluateRisk') t.riskCompleted = at;
        if (name === 'submitOrder') t.submitCompleted = at;
        break;
      }
      case EV.MARKER_RECORDED:
        if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity' && wftCompletes <= 1) {
          t.riskLocal = true;
        }
        break;
      default:
    }
  }
  if (t.riskLocal && Number.isNaN(t.riskScheduled)) {
    // Risk ran inside workflow task 1 (its run is in that stage): the activity stages are empty.
    t.riskScheduled = t.riskStarted = t.riskCompleted = t.wft1Completed;
  }
  return t;
}

/**
 * The path of one trade split into stages (ms). Their sum is signal → submitOrder completed (Temporal's
 * ActivityTaskCompleted), which is "order submitted" only for code whose submitOrder ends at the broker's
 * acceptance; the headline "order submitted" is the venue's own stream (venue-observer.ts).
 */
export const STAGES: Array<{ key: string; label: string; of: (pub: number, t: TradeTimes) => number }> = [
  {
    key: 'intake',
    label: 'publish → workflow started (RabbitMQ, intake, StartWorkflowExecution)',
    of: (p, t) => t.wfStarted - p,
  },
  { key: 'wft1Queue', label: 'workflow task 1 schedule-to-start', of: (_p, t) => t.wft1Started - t.wfStarted },
  {
    key: 'wft1Run',
    label: 'workflow task 1 run + respond (with risk if local)',
    of: (_p, t) => t.wft1Completed - t.wft1Started,
  },
  { key: 'riskQueue', label: 'evaluateRisk schedule-to-start', of: (_p, t) => t.riskStarted - t.riskScheduled },
  { key: 'riskRun', label: 'evaluateRisk run (PostgreSQL)', of: (_p, t) => t.riskCompleted - t.riskStarted },
  {
    key: 'wft2',
    label: 'risk done → submitOrder scheduled (workflow task 2)',
    of: (_p, t) => t.submitScheduled - t.riskCompleted,
  },
  { key: 'submitQueue', label: 'submitOrder schedule-to-start', of: (_p, t) => t.submitStarted - t.submitScheduled },
  {
    key: 'submitRun',
    label: 'submitOrder run (venue HTTP, ledger, and the wait for the fill where the code waits)',
    of: (_p, t) => t.submitCompleted - t.submitStarted,
  },
];

/** Fetch the histories of the given trades (bounded concurrency) and attach their server-side times. */
export async function attachHistories(
  client: Client,
  recs: Array<{ workflowId: string; times?: TradeTimes }>,
  concurrency = 8,
): Promise<number> {
  let next = 0;
  let missing = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < recs.length) {
        const rec = recs[next++]!;
        try {
          const h = await client.workflow.getHandle(rec.workflowId).fetchHistory();
          rec.times = tradeTimes((h.events ?? []) as HistoryEventLike[]);
        } catch {
          missing++;
        }
      }
    }),
  );
  return missing;
}
