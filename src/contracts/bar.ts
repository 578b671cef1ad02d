import { z } from 'zod';

/** One OHLCV bar on the `market.bars` exchange (routing key `bars.<interval>.<symbol>`). */
export const BAR_SCHEMA_VERSION = 1;

/**
 * A US equity ticker as Polygon and Alpaca spell it: upper case, starting with a letter, with digits, `.` or
 * `-` for share classes (BRK.B, BF-B). Routing keys are built from it, so it must never contain `#`/`*`/spaces.
 */
export const TICKER_PATTERN = /^[A-Z][A-Z0-9]*(?:[.-][A-Z0-9]+)?$/;
export const TickerSchema = z.string().max(12).regex(TICKER_PATTERN, 'a ticker (e.g. NVDA, BRK.B)');

/**
 * A strict ISO-8601 UTC instant: `YYYY-MM-DDTHH:MM:SS[.fff]Z`. No offsets, no dates without a time, no local
 * times: a bar's start must mean the same instant to every consumer (and sort as a string).
 */
export const ISO_UTC_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
export const UtcInstantSchema = z
  .string()
  .regex(ISO_UTC_INSTANT, 'an ISO-8601 UTC instant (YYYY-MM-DDTHH:MM:SS[.fff]Z)')
  .refine((s) => isRealInstant(s), 'a real calendar instant');

/** `1m`, `5m`, `1h`, `1d`, `1w`: a multiplier and a Polygon timespan (second/minute/hour/day/week). */
export const BAR_INTERVAL_PATTERN = /^[1-9]\d{0,3}[smhdw]$/;
export const BarIntervalSchema = z.string().regex(BAR_INTERVAL_PATTERN, 'an interval like 1m, 5m, 1h, 1d');

function isRealInstant(s: string): boolean {
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) return false;
  // Date.parse rolls 2024-02-30 over to March; a real instant formats back to the same date and time.
  return new Date(ms).toISOString().slice(0, 19) === s.slice(0, 19);
}

export const BarSchema = z
  .object({
    schema_version: z.literal(BAR_SCHEMA_VERSION).default(BAR_SCHEMA_VERSION),
    message_id: z.string().min(1),
    symbol: TickerSchema,
    interval: BarIntervalSchema,
    /** Bar start, a strict ISO-8601 UTC instant. */
    timestamp: UtcInstantSchema,
    open: z.number().finite().positive(),
    high: z.number().finite().positive(),
    low: z.number().finite().positive(),
    close: z.number().finite().positive(),
    volume: z.number().finite().nonnegative(),
    vwap: z.number().finite().positive().optional(),
    /** Where the bar came from: replay, synthetic, polygon-rest, polygon-ws (each bar is tagged). */
    source: z.string().min(1),
    is_partial: z.boolean().default(false),
    correlation_id: z.string().min(1),
  })
  .strict()
  .refine((b) => b.high >= Math.max(b.open, b.close, b.low) && b.low <= Math.min(b.open, b.close), {
    message: 'high/low must bound open and close',
  });
export type Bar = z.infer<typeof BarSchema>;

/** The minimal bar the pure domain code needs (simulator, indicators, risk sizing). */
export interface OhlcvBar {
  symbol: string;
  timestamp: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/**
 * Several bars of ONE series in one message (replay and backfill; `BAR_BATCH_SIZE`): the per-message cost of
 * RabbitMQ (a confirm, a delivery, an ack) is paid once per batch. Same exchange and routing key as a single
 * bar; consumers accept both forms (`barsOfMessage`). The bars keep their own message ids, so a consumer
 * de-duplicates bar by bar whichever form a bar arrived in.
 */
export const BarBatchSchema = z
  .object({
    schema_version: z.literal(BAR_SCHEMA_VERSION).default(BAR_SCHEMA_VERSION),
    kind: z.literal('bar_batch'),
    message_id: z.string().min(1),
    symbol: TickerSchema,
    interval: BarIntervalSchema,
    correlation_id: z.string().min(1),
    bars: z.array(BarSchema).min(1).max(10_000),
  })
  .strict()
  .superRefine((m, ctx) => {
    let prev = '';
    m.bars.forEach((b, i) => {
      if (b.symbol !== m.symbol || b.interval !== m.interval) {
        ctx.addIssue({
          code: 'custom',
          path: ['bars', i],
          message: `bar of ${b.symbol} ${b.interval} in a batch of ${m.symbol} ${m.interval}`,
        });
      }
      if (b.timestamp <= prev) {
        ctx.addIssue({
          code: 'custom',
          path: ['bars', i],
          message: `bars must be strictly in time order (${b.timestamp} after ${prev})`,
        });
      }
      prev = b.timestamp;
    });
  });
export type BarBatch = z.infer<typeof BarBatchSchema>;

export type BarMessage = { ok: true; bars: Bar[]; batched: boolean } | { ok: false; error: z.ZodError };

/** A `market.bars` message body, single or batched, as its bars (oldest first). */
export function barsOfMessage(body: unknown): BarMessage {
  const isBatch = typeof body === 'object' && body !== null && (body as { kind?: unknown }).kind === 'bar_batch';
  if (isBatch) {
    const r = BarBatchSchema.safeParse(body);
    return r.success ? { ok: true, bars: r.data.bars, batched: true } : { ok: false, error: r.error };
  }
  const r = BarSchema.safeParse(body);
  return r.success ? { ok: true, bars: [r.data], batched: false } : { ok: false, error: r.error };
}
