import { describe, expect, it } from 'vitest';
import { TRADE_WORKFLOW_TASK_SLOTS, workflowTaskSlots } from '../../src/workers/workflow-task-slots';

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
