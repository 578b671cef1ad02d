import { z } from 'zod';

/** One OHLCV bar on the `market.bars` exchange (routing key `bars.<interval>.<symbol>`). */
export const BAR_SCHEMA_VERSION = 1;

export const BarSchema = z
  .object({
    schema_version: z.literal(BAR_SCHEMA_VERSION).default(BAR_SCHEMA_VERSION),
    message_id: z.string().min(1),
    symbol: z.string().min(1).max(12),
    interval: z.string().min(1),
    /** Bar start, ISO-8601 UTC. */
    timestamp: z.string().min(1),
    open: z.number().finite().positive(),
    high: z.number().finite().positive(),
    low: z.number().finite().positive(),
    close: z.number().finite().positive(),
    volume: z.number().finite().nonnegative(),
    vwap: z.number().finite().positive().optional(),
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
