import type { Pool } from 'pg';
import type { Broker } from '../adapters/brokers/broker';
import type { OrderTracker } from '../adapters/brokers/order-tracker';
import type { Logger } from '../logging';
import type { RiskLimits } from '../domain/risk';
import { createExecutionActivities } from './execution';
import { createReconciliationActivities } from './reconciliation';
import { createRiskActivities } from './risk';

export interface ActivityDeps {
  pool: Pool;
  broker: Broker;
  tracker: OrderTracker;
  accountId: string;
  startingCash: number;
  limits: RiskLimits;
  logger: Logger;
  pollIntervalMs?: number;
}

/**
 * Every activity the trade worker registers, built once over real dependencies (tests pass their own).
 * Activities are thin: domain logic lives in src/domain, I/O in src/adapters.
 */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createRiskActivities({
      pool: deps.pool,
      limits: deps.limits,
      accountId: deps.accountId,
      startingCash: deps.startingCash,
      logger: deps.logger,
    }),
    ...createExecutionActivities(deps),
    ...createReconciliationActivities(deps),
  };
}

/** The activity interface workflows proxy (`import type` only). */
export type Activities = ReturnType<typeof createActivities>;
