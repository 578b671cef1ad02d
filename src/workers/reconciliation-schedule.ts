import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptionsAction,
  type ScheduleSpec,
} from '@temporalio/client';
import type { Logger } from '../logging';

/**
 * The Temporal schedule that runs `reconciliationWorkflow` (src/workflows/reconciliation.ts) every
 * RECONCILE_EVERY_MINUTES on the trade worker's task queue. One per account: every worker of the account keeps
 * the same schedule (creating it, or updating it to its settings), so more workers never mean more runs.
 * `temporal schedule describe --schedule-id reconcile-<ACCOUNT_ID>` shows it; so does the Web UI's Schedules page.
 */

export const reconciliationScheduleId = (accountId: string) => `reconcile-${accountId}`;

export interface ReconciliationScheduleSettings {
  accountId: string;
  taskQueue: string;
  /** 0: no schedule (the account's schedule is deleted if it runs on this task queue). */
  everyMinutes: number;
}

export type ScheduleOutcome = 'created' | 'updated' | 'deleted' | 'none';

export async function keepReconciliationSchedule(
  client: Client,
  s: ReconciliationScheduleSettings,
  log: Logger,
): Promise<ScheduleOutcome> {
  const scheduleId = reconciliationScheduleId(s.accountId);
  const handle = client.schedule.getHandle(scheduleId);
  if (s.everyMinutes === 0) {
    // Turned off: delete the account's schedule if it starts its runs on this worker's task queue (a worker of
    // another deployment sharing the server, e.g. a test on a task queue of its own, leaves it alone).
    try {
      const current = await handle.describe();
      if (current.action.taskQueue !== s.taskQueue) return 'none';
      await handle.delete();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return 'none';
      throw err;
    }
    log.info({ schedule_id: scheduleId }, 'reconciliation schedule deleted (RECONCILE_EVERY_MINUTES=0)');
    return 'deleted';
  }

  const spec: ScheduleSpec = { intervals: [{ every: `${s.everyMinutes} minutes` }] };
  const action: ScheduleOptionsAction = {
    type: 'startWorkflow',
    workflowType: 'reconciliationWorkflow',
    taskQueue: s.taskQueue,
    workflowId: scheduleId,
    // A run no worker picks up (every worker stopped) is gone before the next one starts, so a stopped
    // deployment does not collect runs waiting for a worker.
    workflowExecutionTimeout: `${s.everyMinutes} minutes`,
  };
  // Overlap SKIP: runs of one account serialise anyway (an advisory lock), so a run still going when the next
  // is due makes the next one redundant. Catch-up 1 minute: after the server was down, one run, not a backlog.
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' } as const;
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies,
      state: { note: `ledger vs broker for account ${s.accountId}, every ${s.everyMinutes} min (trade worker)` },
    });
    log.info({ schedule_id: scheduleId, every_minutes: s.everyMinutes }, 'reconciliation schedule created');
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await handle.update((prev) => ({ ...prev, spec, action, policies }));
  log.info({ schedule_id: scheduleId, every_minutes: s.everyMinutes }, 'reconciliation schedule updated');
  return 'updated';
}
