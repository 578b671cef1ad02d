import { z } from 'zod';
import type { OhlcvBar } from '../../../contracts/bar';

/**
 * Polygon.io (Massive) wire formats: REST aggregates and the stocks WebSocket aggregates, as documented in
 * ../shared/reference/trading-apis-and-peers.md §3 (from the official clients' OpenAPI spec).
 */

/** Provider name used in bar message ids: the same bar from REST and WebSocket gets the same id. */
export const POLYGON_PROVIDER = 'polygon';
export const POLYGON_REST_SOURCE = 'polygon-rest';
export const POLYGON_WS_SOURCE = 'polygon-ws';

export type PolygonTimespan = 'second' | 'minute' | 'hour' | 'day' | 'week';
const UNIT: Record<string, PolygonTimespan> = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' };

/** `5m` → multiplier 5, timespan minute (the `/range/{multiplier}/{timespan}/` path segments). */
export function polygonRange(interval: string): { multiplier: number; timespan: PolygonTimespan } {
  const m = /^([1-9]\d{0,3})([smhdw])$/.exec(interval);
  if (!m) throw new Error(`interval "${interval}" is not <n><s|m|h|d|w>`);
  return { multiplier: Number(m[1]), timespan: UNIT[m[2]!]! };
}

/** One aggregate of `results[]`: `t` is the window start in ms. Extra fields (n, otc) are allowed. */
export const AggRowSchema = z.object({
  o: z.number(),
  h: z.number(),
  l: z.number(),
  c: z.number(),
  v: z.number(),
  vw: z.number().optional(),
  n: z.number().optional(),
  t: z.number().int(),
});
export type AggRow = z.infer<typeof AggRowSchema>;

/** The aggregates response envelope. `results` is absent on an empty range (holiday, halt, weekend). */
export const AggsResponseSchema = z.object({
  ticker: z.string().optional(),
  adjusted: z.boolean().optional(),
  queryCount: z.number().optional(),
  resultsCount: z.number().optional(),
  request_id: z.string().optional(),
  status: z.string(),
  results: z.array(z.unknown()).optional(),
  next_url: z.string().optional(),
});
export type AggsResponse = z.infer<typeof AggsResponseSchema>;

/** An error body: `{status, request_id, message}` (403 NOT_AUTHORIZED) or `{status, request_id, error}` (401). */
export const ErrorBodySchema = z.object({
  status: z.string().optional(),
  request_id: z.string().optional(),
  message: z.string().optional(),
  error: z.string().optional(),
});

const NY_DATE = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'America/New_York',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/**
 * A window start as the bar's timestamp. Daily and longer aggregates start at midnight New York time; the
 * project stamps such bars with their session date at 00:00Z (as the recorded daily files are), so a daily bar
 * from REST and from replay is the same key in the bar store.
 */
export function aggTimestamp(tMs: number, timespan: PolygonTimespan): string {
  if (timespan === 'day' || timespan === 'week') return `${NY_DATE.format(new Date(tMs))}T00:00:00.000Z`;
  return new Date(tMs).toISOString();
}

const NY_HOUR = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: '2-digit', hour12: false });

/** Midnight New York time of a session date, in ms (what Polygon sends as `t` for a daily bar). */
export function nyMidnightMs(date: string): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const est = Date.UTC(y, m - 1, d, 5); // 00:00 EST
  // In daylight time 05:00Z is 01:00 New York: midnight was an hour earlier.
  const hour = Number(NY_HOUR.format(est));
  return hour === 1 ? est - 3_600_000 : est;
}

export type RowParse = { ok: true; bar: OhlcvBar & { vwap?: number } } | { ok: false; detail: string };

/** One `results[]` element → an OHLCV bar (shape only; impossible values are the validator's job). */
export function parseAggRow(raw: unknown, symbol: string, timespan: PolygonTimespan): RowParse {
  const r = AggRowSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    return { ok: false, detail: `${i.path.join('.') || 'row'}: ${i.message}` };
  }
  const a = r.data;
  return {
    ok: true,
    bar: {
      symbol,
      timestamp: aggTimestamp(a.t, timespan),
      open: a.o,
      high: a.h,
      low: a.l,
      close: a.c,
      volume: a.v,
      ...(a.vw !== undefined ? { vwap: a.vw } : {}),
    },
  };
}

/** WebSocket stocks messages (every frame is a JSON array of these). */
export const WsStatusSchema = z.object({ ev: z.literal('status'), status: z.string(), message: z.string().optional() });
/** `AM` (minute) / `A` (second) aggregate: `s`/`e` window start/end in ms. */
export const WsAggSchema = z.object({
  ev: z.enum(['AM', 'A']),
  sym: z.string(),
  v: z.number(),
  o: z.number(),
  h: z.number(),
  l: z.number(),
  c: z.number(),
  vw: z.number().optional(),
  s: z.number().int(),
  e: z.number().int(),
});
export type WsAgg = z.infer<typeof WsAggSchema>;
