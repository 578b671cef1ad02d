import { hostPort, int, str, type Parsed } from './fields';

/** The `temporal` section: where the trade workflows run. */
export const temporalVars = {
  TEMPORAL_ADDRESS: hostPort('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: str('default'),
  TEMPORAL_TASK_QUEUE: str('trades'),
  TEMPORAL_UI_PORT: int(8233, 1, 65535),
  TEMPORAL_METRICS_PORT: int(8000, 1, 65535),
  WORKER_SHUTDOWN_GRACE_MS: int(10_000, 0),
  RECONCILE_EVERY_MINUTES: int(0, 0, 1440),
};

export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  uiPort: number;
  /** The dev server's Prometheus endpoint (its --metrics-port; docs/monitoring.md). */
  metricsPort: number;
  /** How long a stopping worker lets in-flight activities finish. */
  shutdownGraceMs: number;
  /**
   * The trade worker keeps a Temporal schedule that reconciles the ledger with the broker this often (minutes);
   * 0 = no schedule (and the worker deletes one it finds), reconciliation only at worker start.
   */
  reconcileEveryMinutes: number;
}

export function temporalSection(e: Parsed<typeof temporalVars>): TemporalConfig {
  return {
    address: e.TEMPORAL_ADDRESS,
    namespace: e.TEMPORAL_NAMESPACE,
    taskQueue: e.TEMPORAL_TASK_QUEUE,
    uiPort: e.TEMPORAL_UI_PORT,
    metricsPort: e.TEMPORAL_METRICS_PORT,
    shutdownGraceMs: e.WORKER_SHUTDOWN_GRACE_MS,
    reconcileEveryMinutes: e.RECONCILE_EVERY_MINUTES,
  };
}
