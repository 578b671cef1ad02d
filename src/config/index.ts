import { config as loadDotenv } from 'dotenv';
import { z } from 'zod';
import { setDefaultLogLevel } from '../logging';
import { brokerSection, brokerVars, type BrokerConfig } from './broker';
import { dataflowSection, dataflowVars, type DataflowConfig } from './dataflow';
import { ConfigError } from './fields';
import { generalVars, type LogLevel } from './general';
import { ledgerVars } from './ledger';
import { opsSection, opsVars, type OpsConfig } from './ops';
import { quantSection, quantVars, type QuantConfig } from './quant';
import { rabbitmqSection, rabbitmqVars, type RabbitmqConfig } from './rabbitmq';
import { riskSection, riskVars, type RiskConfig } from './risk';
import { simSection, simVars, type SimConfig } from './sim';
import { strategySection, strategyVars, type StrategyConfig } from './strategy';
import { temporalSection, temporalVars, type TemporalConfig } from './temporal';

/**
 * Every setting, read from the environment (and an optional .env file), validated once at start-up.
 * A bad value stops the process with one line naming the variable and what it expects.
 *
 * src/config is the only place that knows variable names: each section file (temporal.ts, rabbitmq.ts, broker.ts,
 * sim.ts, dataflow.ts, risk.ts, strategy.ts, quant.ts, ops.ts, …) owns its variables and maps them to a typed
 * section; every other module receives its section. Every variable is documented in .env.example; keep the two
 * in step (test/unit/env-docs.test.ts).
 */

export { ConfigError } from './fields';
export { childEnv, inheritedEnv, type ChildSettings } from './child-env';
export type { BrokerConfig, BrokerKind, AlpacaConnection } from './broker';
export type { DataflowConfig, MarketDataSource } from './dataflow';
export type { LogLevel } from './general';
export { EPHEMERAL_OPS_ENV, type OpsConfig, type OpsRole } from './ops';
export type { QuantConfig } from './quant';
export type { RabbitmqConfig } from './rabbitmq';
export type { RiskConfig } from './risk';
export type { SimConfig, SimVenueConfig } from './sim';
export { strategyTypes, type StrategyConfig } from './strategy';
export type { TemporalConfig } from './temporal';

/**
 * Environment variable name → schema, the union of the sections' variables. Names are the contract with
 * operators; do not rename. The order is the order of .env.example: the first bad variable is the one reported.
 */
export const envSchema = z.object({
  ...generalVars,
  ...temporalVars,
  ...rabbitmqVars,
  ...ledgerVars,
  ...brokerVars,
  ...simVars,
  ...dataflowVars,
  ...opsVars,
  ...riskVars,
  ...strategyVars,
  ...quantVars,
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  /**
   * The validated variables by name. For src/config and tests only: modules take their typed section below,
   * so a variable's meaning is decided in one place.
   */
  env: Env;
  logLevel: LogLevel;
  temporal: TemporalConfig;
  rabbitmq: RabbitmqConfig;
  /** The ledger (PostgreSQL) and the account traded. */
  databaseUrl: string;
  accountId: string;
  startingCash: number;
  broker: BrokerConfig;
  sim: SimConfig;
  risk: RiskConfig;
  dataflow: DataflowConfig;
  strategy: StrategyConfig;
  quant: QuantConfig;
  /** Where each process serves /metrics, /healthz and /readyz. */
  ops: OpsConfig;
}

/** Settings whose defaults are local development credentials: NODE_ENV=production refuses to default them. */
export const PRODUCTION_REQUIRED = ['RABBITMQ_USER', 'RABBITMQ_PASS', 'DATABASE_URL'] as const;

/** Validate an environment object. Throws ConfigError whose message names the first bad variable. */
export function parseEnv(source: NodeJS.ProcessEnv): Config {
  const r = envSchema.safeParse(source);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const name = String(issue.path[0] ?? '(environment)');
    const got = source[name];
    // Never echo a secret's value back.
    const shown = /PASS|SECRET|KEY|TOKEN|DATABASE_URL/.test(name) || got === undefined ? '' : ` (got "${got}")`;
    throw new ConfigError(`Invalid configuration: ${name} must be ${expectation(issue)}${shown}`);
  }
  const e = r.data;
  // The defaults are the local stack's development credentials: a production process must be given its own.
  if (e.NODE_ENV === 'production') {
    for (const name of PRODUCTION_REQUIRED) {
      if (source[name] === undefined || source[name] === '') {
        throw new ConfigError(`Invalid configuration: ${name} must be set when NODE_ENV=production (no local default)`);
      }
    }
  }
  // Sections that check several variables together run in this order, so the first problem is reported.
  const risk = riskSection(e);
  const sim = simSection(e, { startingCash: e.STARTING_CASH, allowShort: risk.allowShort });
  const broker = brokerSection(e, sim);
  const dataflow = dataflowSection(e);
  const strategy = strategySection(e);
  return {
    env: e,
    logLevel: e.LOG_LEVEL,
    temporal: temporalSection(e),
    rabbitmq: rabbitmqSection(e),
    databaseUrl: e.DATABASE_URL,
    accountId: e.ACCOUNT_ID,
    startingCash: e.STARTING_CASH,
    broker,
    sim,
    risk,
    dataflow,
    strategy,
    quant: quantSection(e),
    ops: opsSection(e),
  };
}

/** What a failed check expected, in words an operator can act on. */
function expectation(issue: z.ZodIssue): string {
  switch (issue.code) {
    case z.ZodIssueCode.too_small:
      return `${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case z.ZodIssueCode.too_big:
      return `${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    case z.ZodIssueCode.invalid_enum_value:
      return `one of ${issue.options.join(', ')}`;
    case z.ZodIssueCode.invalid_type:
      return issue.message.startsWith('Expected') ? `a ${issue.expected}` : issue.message;
    case z.ZodIssueCode.not_finite:
      return 'a finite number';
    default:
      return issue.message;
  }
}

let cached: Config | undefined;

/**
 * Load .env (if present; real environment wins) and validate. On error: one line on stderr, exit 1.
 * LOG_LEVEL becomes the level of every logger the process creates without one.
 */
export function loadConfig(): Config {
  if (cached) return cached;
  loadDotenv({ quiet: true } as never);
  try {
    cached = parseEnv(process.env);
    setDefaultLogLevel(cached.logLevel);
    return cached;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
