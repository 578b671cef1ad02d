import { DefaultLogger, Runtime, makeTelemetryFilterString, type LogLevel } from '@temporalio/worker';
import { BarStoreBehindError, TradesInFlightError } from '../domain/risk';
import type { Logger } from '../logging';

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Activity failures that are waits, not faults: the SDK logs every failed attempt as a warning, but these are
 * retried by policy as designed and the activity logs the wait itself (risk waiting for the signal's bar, or for
 * the symbol's trades in flight).
 * Their "Activity failed" lines go out at debug, so a warning in a worker's log still means something.
 */
export const EXPECTED_WAITS: ReadonlySet<string> = new Set([BarStoreBehindError.name, TradesInFlightError.name]);

/** The pino level of one SDK log line. */
export function sdkLogLevel(level: LogLevel, message: string, meta: Record<string, unknown> | undefined) {
  const error = meta?.['error'] as { name?: unknown; type?: unknown } | null | undefined;
  // The risk activity throws its waits as application failures typed by the wait's name.
  const expectedWait =
    message === 'Activity failed' &&
    typeof error === 'object' &&
    error !== null &&
    (EXPECTED_WAITS.has(String(error.type)) || EXPECTED_WAITS.has(String(error.name)));
  return expectedWait ? 'debug' : PINO_LEVEL[level];
}

/**
 * Route the Temporal SDK's own logs (worker lifecycle, workflow/activity `log`, and Core's Rust logs) into
 * our pino logger, so every line of a process is one JSON format, and serve the SDK's metrics at
 * `metricsBindAddress` (WORKER_SDK_METRICS_PORT). Must run before any Worker or NativeConnection is created.
 */
export function installTemporalRuntime(
  logger: Logger,
  level: LogLevel = 'INFO',
  opts: { metricsBindAddress?: string } = {},
): void {
  const sdk = logger.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      const { meta, message } = entry;
      sdk[sdkLogLevel(entry.level, message, meta)]({ ...(meta ?? {}) }, message);
    }),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }) },
      // The SDK's own metrics (task slots, poll latencies, workflow/activity outcomes, sticky cache) from its
      // Prometheus exporter: Prometheus conventions (_total, seconds) so they sit beside ours in Grafana.
      ...(opts.metricsBindAddress
        ? {
            metrics: {
              prometheus: {
                bindAddress: opts.metricsBindAddress,
                countersTotalSuffix: true,
                unitSuffix: true,
                useSecondsForDurations: true,
              },
            },
          }
        : {}),
    },
  });
}
