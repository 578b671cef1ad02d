import { int, num, str, type Parsed } from './fields';

/**
 * The `sim` section: the local simulated exchange (the paper venue process, src/workers/exchange-sim.ts) — where
 * it listens, where clients reach it, and its fill model.
 */
export const simVars = {
  /** Where the local simulated exchange (the paper venue process) listens. */
  SIM_EXCHANGE_PORT: int(8787, 1, 65535),
  /** Host name the trade worker reaches the venue at (a compose service name, or loopback locally). */
  SIM_EXCHANGE_HOST: str('127.0.0.1'),
  /** Interface the venue binds: loopback locally; 0.0.0.0 in a container so other services can reach it. */
  SIM_EXCHANGE_BIND: str('127.0.0.1'),
  SIM_SLIPPAGE_BPS: num(5, (s) => s.min(0).max(1000)),
  SIM_FEE_PER_SHARE: num(0.005, (s) => s.min(0)),
  SIM_FEE_BPS: num(0, (s) => s.min(0).max(1000)),
  SIM_MAX_VOLUME_PCT: num(0.1, (s) => s.gt(0).max(1)),
  SIM_LATENCY_MS: int(0, 0, 60_000),
  /** Broker requests per minute for this process when BROKER=simulated; 0 = unlimited (the venue is local). */
  SIM_RATE_LIMIT_PER_MIN: int(0, 0, 100_000),
  SIM_SEED: int(42),
};

/** The venue's account and fill model (the options of SimulatedBroker / SimulatedExchange). */
export interface SimVenueConfig {
  /** The venue account's cash: the ledger's STARTING_CASH, so both books start equal. */
  startingCash: number;
  /** May a sell take the venue position below zero: RiskOps' RISK_ALLOW_SHORT, so venue and risk agree. */
  allowShort: boolean;
  slippageBps: number;
  feePerShare: number;
  feeBps: number;
  maxVolumePct: number;
  /** Wall-clock delay before a submit or cancel reaches the book. */
  latencyMs: number;
  seed: number;
}

export interface SimConfig {
  /** The interface and port the venue process binds. */
  listen: { host: string; port: number };
  /** Where clients (the trade worker's broker adapter) reach the venue. */
  connect: { host: string; port: number };
  /** A client's broker request budget against the venue (requests per minute; 0 = unlimited). */
  rateLimitPerMin: number;
  venue: SimVenueConfig;
}

export function simSection(
  e: Parsed<typeof simVars>,
  shared: { startingCash: number; allowShort: boolean },
): SimConfig {
  return {
    listen: { host: e.SIM_EXCHANGE_BIND, port: e.SIM_EXCHANGE_PORT },
    connect: { host: e.SIM_EXCHANGE_HOST, port: e.SIM_EXCHANGE_PORT },
    rateLimitPerMin: e.SIM_RATE_LIMIT_PER_MIN,
    venue: {
      startingCash: shared.startingCash,
      allowShort: shared.allowShort,
      slippageBps: e.SIM_SLIPPAGE_BPS,
      feePerShare: e.SIM_FEE_PER_SHARE,
      feeBps: e.SIM_FEE_BPS,
      maxVolumePct: e.SIM_MAX_VOLUME_PCT,
      latencyMs: e.SIM_LATENCY_MS,
      seed: e.SIM_SEED,
    },
  };
}
