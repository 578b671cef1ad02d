import type { Pool, PoolClient } from 'pg';
import type { Bar } from '../../contracts/bar';

/**
 * The bar store: `market_bars` (one row per symbol, interval and bar start). Written by the bar-store consumer
 * (workers/bar-store.ts) and by the backfill; read by RiskOps (risk-store.ts loadRecentBars) for realised
 * volatility and the ATR stop.
 *
 * Writes are upserts: a bar delivered twice (RabbitMQ redelivery, a replay, a backfill overlapping the live
 * feed) lands once, and a later copy of the same bar replaces the earlier one (a REST backfill corrects a
 * WebSocket bar that was still forming).
 */

type Queryable = Pool | PoolClient;

/** Upsert bars in one statement. Returns the rows written (inserted or updated). */
export async function upsertBars(c: Queryable, bars: readonly Bar[]): Promise<number> {
  if (bars.length === 0) return 0;
  // The last copy of a duplicate key within one batch wins (ON CONFLICT cannot touch a row twice per statement).
  const byKey = new Map<string, Bar>();
  for (const b of bars) byKey.set(`${b.symbol}|${b.interval}|${b.timestamp}`, b);
  const rows = [...byKey.values()];
  const r = await c.query(
    `INSERT INTO market_bars (symbol, interval, ts, open, high, low, close, volume, source)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::numeric[], $5::numeric[], $6::numeric[],
                          $7::numeric[], $8::numeric[], $9::text[])
     ON CONFLICT (symbol, interval, ts) DO UPDATE
       SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
           volume = EXCLUDED.volume, source = EXCLUDED.source`,
    [
      rows.map((b) => b.symbol),
      rows.map((b) => b.interval),
      rows.map((b) => b.timestamp),
      rows.map((b) => b.open),
      rows.map((b) => b.high),
      rows.map((b) => b.low),
      rows.map((b) => b.close),
      rows.map((b) => b.volume),
      rows.map((b) => b.source),
    ],
  );
  return r.rowCount ?? 0;
}

export interface StoredBar {
  symbol: string;
  interval: string;
  timestamp: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  source: string;
}

/** Stored bars of one series in [from, to] (inclusive), oldest first. */
export async function loadBars(
  c: Queryable,
  symbol: string,
  interval: string,
  range: { from?: string; to?: string } = {},
): Promise<StoredBar[]> {
  const r = await c.query<{
    ts: Date;
    open: string;
    high: string;
    low: string;
    close: string;
    volume: string;
    source: string;
  }>(
    `SELECT ts, open::text, high::text, low::text, close::text, volume::text, source FROM market_bars
      WHERE symbol = $1 AND interval = $2
        AND ($3::timestamptz IS NULL OR ts >= $3::timestamptz) AND ($4::timestamptz IS NULL OR ts <= $4::timestamptz)
      ORDER BY ts`,
    [symbol, interval, range.from ?? null, range.to ?? null],
  );
  return r.rows.map((b) => ({
    symbol,
    interval,
    timestamp: b.ts.toISOString(),
    open: Number(b.open),
    high: Number(b.high),
    low: Number(b.low),
    close: Number(b.close),
    volume: Number(b.volume),
    source: b.source,
  }));
}

/** Bar starts already stored for a series in [from, to]: what a backfill can skip. */
export async function storedBarTimes(
  c: Queryable,
  symbol: string,
  interval: string,
  from: string,
  to: string,
): Promise<Set<string>> {
  const r = await c.query<{ ts: Date }>(
    `SELECT ts FROM market_bars WHERE symbol = $1 AND interval = $2 AND ts >= $3::timestamptz AND ts <= $4::timestamptz`,
    [symbol, interval, from, to],
  );
  return new Set(r.rows.map((x) => x.ts.toISOString()));
}
