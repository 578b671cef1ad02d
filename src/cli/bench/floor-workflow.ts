/**
 * The engine's floor for `npm run bench:trades` (issue 12): one durable workflow with one activity, the least
 * a trade can cost with one workflow per signal and the order placed by an activity. Bench-only; not part of
 * the product's workflow bundle.
 */
import { proxyActivities } from '@temporalio/workflow';

export interface FloorActivities {
  floorStep(n: number): Promise<number>;
}

const { floorStep } = proxyActivities<FloorActivities>({ startToCloseTimeout: '30 seconds' });

export async function oneActivityWorkflow(n: number): Promise<number> {
  return floorStep(n);
}
