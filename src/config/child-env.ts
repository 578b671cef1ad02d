import type { LogLevel } from './general';

/**
 * Settings a parent process (`npm start`, the benchmark) hands to the service processes it starts. The children
 * read them as environment variables like any process does; this is the one place that knows their names, so
 * the parent deals in settings, not variable names.
 */
export interface ChildSettings {
  logLevel?: LogLevel;
  /** The ledger account the children trade for. */
  accountId?: string;
  /** The quant warms its series up from the bar store on start. */
  quantWarmup?: boolean;
  /** The quant's strategies, as STRATEGY_TYPE's value (check it first with strategyTypes()). */
  strategyTypes?: string;
}

/** The environment for a child process: `base` (default: this process's own) with the given settings on top. */
export function childEnv(settings: ChildSettings, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  if (settings.logLevel !== undefined) env.LOG_LEVEL = settings.logLevel;
  if (settings.accountId !== undefined) env.ACCOUNT_ID = settings.accountId;
  if (settings.quantWarmup !== undefined) env.QUANT_WARMUP = String(settings.quantWarmup);
  if (settings.strategyTypes !== undefined) env.STRATEGY_TYPE = settings.strategyTypes;
  return env;
}

/** This process's own environment, as child processes inherit it (the base of childEnv). */
export function inheritedEnv(): NodeJS.ProcessEnv {
  return process.env;
}
