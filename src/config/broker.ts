import { z } from 'zod';
import { ConfigError, int, optStr, url, type Parsed } from './fields';
import type { SimConfig } from './sim';

/** The `broker` section: which broker this process trades through and how it talks to it (original names kept). */
export const brokerVars = {
  BROKER: z.enum(['simulated', 'alpaca']).default('simulated'),
  BROKER_API_KEY: optStr,
  BROKER_API_SECRET: optStr,
  ALPACA_BASE_URL: url('https://paper-api.alpaca.markets', ['http:', 'https:']),
  ALPACA_STREAM_URL: optStr,
  BROKER_HTTP_TIMEOUT_MS: int(10_000, 100),
  /** Broker requests per minute for this process when BROKER=alpaca (Alpaca: 200/min per account). */
  BROKER_RATE_LIMIT_PER_MIN: int(200, 1, 100_000),
};

export type BrokerKind = z.infer<(typeof brokerVars)['BROKER']>;

/** Alpaca's Trading API v2: the real account (paper or live). */
export interface AlpacaConnection {
  baseUrl: string;
  keyId: string;
  secretKey: string;
  /** trade_updates stream; unset = derived from baseUrl by the adapter. */
  streamUrl: string | undefined;
}

export type BrokerConfig = {
  /** Timeout of one broker HTTP request. */
  httpTimeoutMs: number;
  /** The broker request budget of this process (requests per minute; 0 = unlimited), for the chosen broker. */
  rateLimitPerMin: number;
} & (
  | { kind: 'alpaca'; alpaca: AlpacaConnection }
  /** The local simulated venue, reached over the same Alpaca wire (sim section's `connect`). */
  | { kind: 'simulated'; venue: { host: string; port: number } }
);

export function brokerSection(e: Parsed<typeof brokerVars>, sim: SimConfig): BrokerConfig {
  if (e.BROKER === 'alpaca') {
    if (!e.BROKER_API_KEY || !e.BROKER_API_SECRET) {
      throw new ConfigError(
        'Invalid configuration: BROKER_API_KEY and BROKER_API_SECRET are required when BROKER=alpaca',
      );
    }
    return {
      kind: 'alpaca',
      httpTimeoutMs: e.BROKER_HTTP_TIMEOUT_MS,
      rateLimitPerMin: e.BROKER_RATE_LIMIT_PER_MIN,
      alpaca: {
        baseUrl: e.ALPACA_BASE_URL,
        keyId: e.BROKER_API_KEY,
        secretKey: e.BROKER_API_SECRET,
        streamUrl: e.ALPACA_STREAM_URL,
      },
    };
  }
  return {
    kind: 'simulated',
    httpTimeoutMs: e.BROKER_HTTP_TIMEOUT_MS,
    rateLimitPerMin: sim.rateLimitPerMin,
    venue: { ...sim.connect },
  };
}
