import type { Config } from '../../config';
import type { Logger } from '../../logging';
import { AlpacaBroker, type AlpacaBrokerOptions } from './alpaca';
import { RequestBudget } from './request-budget';

export * from './broker';
export { AlpacaBroker, type AlpacaBrokerOptions } from './alpaca';
export { RequestBudget, type BrokerCallPriority } from './request-budget';

/**
 * Key pair the trade worker presents to the local simulated venue. The venue process accepts any key
 * unless it is configured with one; these exist only because the Alpaca wire requires the headers.
 */
export const SIM_PLACEHOLDER_KEY = 'simulated-venue-key';
export const SIM_PLACEHOLDER_SECRET = 'simulated-venue-secret';

/** Where the simulated venue (src/workers/exchange-sim.ts) is reached: SIM_EXCHANGE_HOST:SIM_EXCHANGE_PORT. */
export function simulatedVenueUrl(port: number, host = '127.0.0.1'): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The broker for this process, from configuration. Both settings use the same production adapter:
 *
 * - BROKER=alpaca: Alpaca Trading API v2 at ALPACA_BASE_URL with BROKER_API_KEY / BROKER_API_SECRET;
 *   trade_updates at ALPACA_STREAM_URL (default: derived from the base URL).
 * - BROKER=simulated: the same AlpacaBroker pointed at the local simulated venue
 *   (`http://${SIM_EXCHANGE_HOST}:${SIM_EXCHANGE_PORT}`, placeholder keys). The venue runs as its own process
 *   (SimulatedBroker behind the Alpaca-compatible server), so a worker crash cannot lose its order
 *   book, and paper trading exercises exactly the code path live trading uses.
 *
 * Every broker call of the process (submits, cancels, lookups, the poller, reconciliation reads) draws from
 * one RequestBudget of `config.brokerRateLimitPerMin` (BROKER_RATE_LIMIT_PER_MIN for Alpaca,
 * SIM_RATE_LIMIT_PER_MIN — unlimited by default — for the local venue).
 *
 * `overrides` are for tests and tuning (poll intervals, injected fetch); they win over config.
 */
export function createBroker(
  config: Config,
  logger: Logger,
  overrides: Partial<AlpacaBrokerOptions> = {},
): AlpacaBroker {
  const e = config.env;
  const common = {
    logger,
    httpTimeoutMs: e.BROKER_HTTP_TIMEOUT_MS,
    budget: new RequestBudget({ limitPerMinute: config.brokerRateLimitPerMin, now: overrides.now }),
  };
  if (config.broker === 'alpaca') {
    if (!e.BROKER_API_KEY || !e.BROKER_API_SECRET) {
      // parseEnv already refuses this; kept so a hand-built Config cannot start keyless.
      throw new Error('BROKER=alpaca needs BROKER_API_KEY and BROKER_API_SECRET');
    }
    return new AlpacaBroker({
      ...common,
      name: 'alpaca',
      baseUrl: e.ALPACA_BASE_URL,
      keyId: e.BROKER_API_KEY,
      secretKey: e.BROKER_API_SECRET,
      ...(e.ALPACA_STREAM_URL ? { streamUrl: e.ALPACA_STREAM_URL } : {}),
      ...overrides,
    });
  }
  return new AlpacaBroker({
    ...common,
    name: 'simulated',
    baseUrl: simulatedVenueUrl(e.SIM_EXCHANGE_PORT, e.SIM_EXCHANGE_HOST),
    keyId: SIM_PLACEHOLDER_KEY,
    secretKey: SIM_PLACEHOLDER_SECRET,
    // The venue is local: a short stream-down poll period costs nothing and keeps paper fills prompt.
    pollIntervalMs: 500,
    ...overrides,
  });
}
