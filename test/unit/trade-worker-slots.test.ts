import { describe, expect, it } from 'vitest';
import {
  ON_THEIR_WAY_TTL_MS,
  reportingRiskBegun,
  TRADE_WORKFLOW_TASK_SLOTS,
  TRADES_IN_RISK_MAX,
  tradeAdmission,
  TradesOnTheirWayToRisk,
  workflowTaskSlots,
} from '../../src/workers/workflow-task-slots';

/**
 * The trade worker's workflow-task slots: an eager start (intake inside the worker) holds a slot from before its
 * StartWorkflowExecution call until its first task is done, so the trades' own tasks keep theirs only if the
 * starts in flight (at most SIGNAL_PREFETCH) get slots on top.
 */
describe('trade worker: workflow-task slots', () => {
  it('the starts in flight get slots on top of the trades’ own when the intake runs in the worker', () => {
    expect(workflowTaskSlots(true, 32)).toBe(TRADE_WORKFLOW_TASK_SLOTS + 32);
    expect(workflowTaskSlots(true, 1)).toBe(TRADE_WORKFLOW_TASK_SLOTS + 1);
  });
  it('no intake in the worker: only the trades’ own', () => {
    expect(workflowTaskSlots(false, 32)).toBe(TRADE_WORKFLOW_TASK_SLOTS);
  });
});

describe('trade worker: admission counts a started trade until its risk evaluation begins', () => {
  const idle = { getStatus: () => ({ numInFlightLocalActivities: 0, numInFlightWorkflowActivations: 0 }) };

  it('a trade is counted from its start to its evaluation, then by the worker', async () => {
    const onTheirWay = new TradesOnTheirWayToRisk();
    const admission = tradeAdmission(idle, onTheirWay);
    for (let i = 0; i < TRADES_IN_RISK_MAX - 1; i++) admission.started(`trade-${i}`);
    expect(admission.busy(0)).toBe(false);
    expect(admission.busy(1)).toBe(true); // one start in flight fills the bound
    admission.started(`trade-${TRADES_IN_RISK_MAX - 1}`);
    expect(admission.busy(0)).toBe(true);
    // The evaluation's first moment hands the trade to the worker's own count (a local activity in flight).
    const evaluated: string[] = [];
    const acts = reportingRiskBegun(
      {
        evaluateRisk: (input: { workflowId: string; signal: unknown }) => {
          evaluated.push(input.workflowId);
          return Promise.resolve('decided');
        },
      },
      onTheirWay,
    );
    await expect(acts.evaluateRisk({ workflowId: 'trade-0', signal: {} })).resolves.toBe('decided');
    expect(evaluated).toEqual(['trade-0']);
    expect(onTheirWay.count()).toBe(TRADES_IN_RISK_MAX - 1);
    expect(admission.busy(0)).toBe(false);
  });

  it('forgets a trade that never reaches risk after ON_THEIR_WAY_TTL_MS', () => {
    const onTheirWay = new TradesOnTheirWayToRisk();
    onTheirWay.started('trade-old', 1_000);
    onTheirWay.started('trade-new', 1_000 + ON_THEIR_WAY_TTL_MS);
    expect(onTheirWay.count(1_000 + ON_THEIR_WAY_TTL_MS)).toBe(2);
    expect(onTheirWay.count(1_001 + ON_THEIR_WAY_TTL_MS)).toBe(1);
    expect(onTheirWay.count(1_001 + 2 * ON_THEIR_WAY_TTL_MS)).toBe(0);
  });
});
