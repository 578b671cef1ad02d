import { DefaultLogger, Runtime, makeTelemetryFilterString, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../logging';

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Route the Temporal SDK's own logs (worker lifecycle, workflow/activity `log`, and Core's Rust logs) into
 * our pino logger, so every line of a process is one JSON format. Must run before any Worker or
 * NativeConnection is created.
 */
export function installTemporalRuntime(logger: Logger, level: LogLevel = 'INFO'): void {
  const sdk = logger.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      const { meta, message } = entry;
      sdk[PINO_LEVEL[entry.level]]({ ...(meta ?? {}) }, message);
    }),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }) },
    },
  });
}
