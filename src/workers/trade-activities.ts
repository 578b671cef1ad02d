import type { Pool } from 'pg';
import { createActivities } from '../activities';
import type { Broker } from '../adapters/brokers/broker';
import type { OrderTracker } from '../adapters/brokers/order-tracker';
import type { Config } from '../config';
import { riskLimits } from '../domain/risk';
import type { Logger } from '../logging';

/**
 * The trade worker's activities for a configuration: the one place that turns the config into their settings, so
 * the worker process and the test rigs that run its activities in-process (test/support/adversarial-broker.ts)
 * cannot drift apart.
 */
export function tradeActivities(
  cfg: Config,
  deps: { pool: Pool; broker: Broker; tracker: OrderTracker; logger: Logger },
): ReturnType<typeof createActivities> {
  return createActivities({
    ...deps,
    accountId: cfg.accountId,
    startingCash: cfg.startingCash,
    limits: riskLimits(cfg.risk),
    // How often a waiting followOrder re-checks the tracker and heartbeats (no HTTP: the broker's own
    // poller covers stream outages within the request budget). Well inside the 10 s heartbeat timeout.
    pollIntervalMs: cfg.broker.kind === 'alpaca' ? 5000 : 250,
  });
}
