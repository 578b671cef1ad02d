import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * One JSON object per line: timestamp (ISO-8601 UTC), level (a word), service, message, and
 * correlation_id whenever one is known. Secrets are redacted by path wherever they appear.
 */
export const REDACT_PATHS = [
  'password',
  'pass',
  'secret',
  'apiKey',
  'api_key',
  'token',
  'authorization',
  'Authorization',
  'headers.authorization',
  'headers.Authorization',
  'headers["APCA-API-KEY-ID"]',
  'headers["APCA-API-SECRET-KEY"]',
  'BROKER_API_KEY',
  'BROKER_API_SECRET',
  'POLYGON_API_KEY',
  'RABBITMQ_PASS',
  'DATABASE_URL',
  '*.password',
  '*.pass',
  '*.secret',
  '*.apiKey',
  '*.api_key',
  '*.token',
  '*.authorization',
  '*.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.headers["APCA-API-KEY-ID"]',
  '*.headers["APCA-API-SECRET-KEY"]',
  '*.BROKER_API_KEY',
  '*.BROKER_API_SECRET',
  '*.POLYGON_API_KEY',
  '*.RABBITMQ_PASS',
  '*.DATABASE_URL',
];

/** Credentials embedded in URLs (amqp://user:pass@host, postgres://user:pass@host) and api keys in query strings. */
export function scrubSecrets(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]+:)[^@\s]+@/gi, '$1[Redacted]@')
    .replace(/([?&](?:apiKey|api_key|token)=)[^&\s]+/gi, '$1[Redacted]');
}

/**
 * The level of loggers created without one (the default loggers of adapters given none): the process's LOG_LEVEL,
 * set by src/config's loadConfig() when the process loads its configuration; 'info' until then.
 */
let defaultLevel = 'info';

export function setDefaultLogLevel(level: string): void {
  defaultLevel = level;
}

export function createLogger(
  service: string,
  opts: { level?: string; destination?: pino.DestinationStream } = {},
): Logger {
  return pino(
    {
      level: opts.level ?? defaultLevel,
      base: { service },
      messageKey: 'message',
      errorKey: 'err',
      timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      hooks: {
        // Strings can carry secrets too (a connection URL in an error message).
        logMethod(args, method) {
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as typeof args;
          const first = scrubbed[0] as unknown;
          if (first instanceof Error) {
            first.message = scrubSecrets(first.message);
          } else if (first && typeof first === 'object' && (first as { err?: unknown }).err instanceof Error) {
            const e = (first as { err: Error }).err;
            e.message = scrubSecrets(e.message);
          }
          return method.apply(this, scrubbed);
        },
      },
    },
    opts.destination,
  );
}

/** A child logger that stamps every line with the trade's correlation id. */
export function withCorrelation(
  logger: Logger,
  correlationId: string | undefined,
  extra: Record<string, unknown> = {},
): Logger {
  return correlationId ? logger.child({ correlation_id: correlationId, ...extra }) : logger.child(extra);
}
