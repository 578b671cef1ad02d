import type { BrokerConfig } from '../../config';
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

/** Where the simulated venue (src/workers/exchange-sim.ts) is reached: the sim section's `connect` host and port. */
export function simulatedVenueUrl(port: number, host = '127.0.0.1'): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The broker for this process, from its `broker` config section. Both kinds use the same production adapter:
 *
 * - alpaca: Alpaca Trading API v2 at the configured base URL with the account's key pair; trade_updates at the
 *   configured stream URL (default: derived from the base URL).
 * - simulated: the same AlpacaBroker pointed at the local simulated venue (the sim section's host and port,
 *   placeholder keys). The venue runs as its own process (SimulatedBroker behind the Alpaca-compatible server),
 *   so a worker crash cannot lose its order book, and paper trading exercises exactly the code path live
 *   trading uses.
 *
 * Every broker call of the process (submits, cancels, lookups, the poller, reconciliation reads) draws from
 * one RequestBudget of `broker.rateLimitPerMin` (200/min for Alpaca by default; unlimited for the local venue).
 *
 * `overrides` are for tests and tuning (poll intervals, injected fetch); they win over config.
 */
export function createBroker(
  broker: BrokerConfig,
  logger: Logger,
  overrides: Partial<AlpacaBrokerOptions> = {},
): AlpacaBroker {
  const common = {
    logger,
    httpTimeoutMs: broker.httpTimeoutMs,
    budget: new RequestBudget({ limitPerMinute: broker.rateLimitPerMin, now: overrides.now }),
  };
  if (broker.kind === 'alpaca') {
    const a = broker.alpaca;
    return new AlpacaBroker({
      ...common,
      name: 'alpaca',
      baseUrl: a.baseUrl,
      keyId: a.keyId,
      secretKey: a.secretKey,
      ...(a.streamUrl ? { streamUrl: a.streamUrl } : {}),
      ...overrides,
    });
  }
  return new AlpacaBroker({
    ...common,
    name: 'simulated',
    baseUrl: simulatedVenueUrl(broker.venue.port, broker.venue.host),
    keyId: SIM_PLACEHOLDER_KEY,
    secretKey: SIM_PLACEHOLDER_SECRET,
    // The venue is local: a short stream-down poll period costs nothing and keeps paper fills prompt.
    pollIntervalMs: 500,
    ...overrides,
  });
}
