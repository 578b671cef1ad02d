import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toValidBar, type Bar, type OhlcvBar } from '../../contracts/bar';
import { barMessageId } from '../../contracts/ids';
import { detectLayout, parseBarsCsv } from './csv';

/**
 * Replay source: recorded bars (the shared CSVs) for a watchlist, merged into one stream in market-time
 * order, as the live feed would have delivered them.
 */

export const REPLAY_SOURCE = 'replay';

/**
 * OHLCV row → the `market.bars` message. Pure and deterministic (same row, same message id). `provider` names
 * the data in the id (default: the source), so one bar from two transports of one provider (Polygon REST and
 * WebSocket) has one id. Checked against the contract (a ZodError names what is wrong), in the bar's one shape
 * (barOf).
 */
export function toBarMessage(
  b: OhlcvBar,
  interval: string,
  source = REPLAY_SOURCE,
  vwap?: number,
  provider = source,
): Bar {
  const timestamp = new Date(Date.parse(b.timestamp)).toISOString();
  const message_id = barMessageId(provider, b.symbol, interval, timestamp);
  return toValidBar({
    message_id,
    symbol: b.symbol,
    interval,
    timestamp,
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volume: b.volume,
    vwap: vwap !== undefined && vwap > 0 ? vwap : undefined,
    source,
    correlation_id: `corr-${message_id}`,
  });
}

export interface LoadedReplay {
  bars: Bar[];
  interval: string;
  /** Rows in the file (before start/limit). */
  totalRows: number;
}

/** Read a CSV (daily → interval 1d, minute → 1m) and turn rows [start, start+count) into bar messages. */
export async function loadReplay(
  file: string,
  symbol: string,
  opts: { start?: number; count?: number; from?: string } = {},
): Promise<LoadedReplay> {
  const text = await readFile(file, 'utf8');
  const layout = detectLayout(text.slice(0, text.search(/\r?\n/) >>> 0));
  const interval = layout === 'daily' ? '1d' : '1m';
  const rows = parseBarsCsv(text, { symbol, ...(opts.from ? { from: opts.from } : {}) });
  const start = opts.start ?? 0;
  const end = opts.count === undefined ? rows.length : start + opts.count;
  return { bars: rows.slice(start, end).map((r) => toBarMessage(r, interval)), interval, totalRows: rows.length };
}

/** The recorded file of a ticker in `dir`: `<ticker lower-case>-*.csv` (e.g. nvda-1999-2014.csv). */
export async function findReplayFile(dir: string, symbol: string): Promise<string> {
  const prefix = `${symbol.toLowerCase()}-`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new Error(`replay data directory ${dir} is not readable: ${(err as Error).message}`, { cause: err });
  }
  const hits = names.filter((n) => n.startsWith(prefix) && n.endsWith('.csv')).sort();
  if (hits.length === 0) throw new Error(`no recorded bars for ${symbol}: no ${prefix}*.csv in ${dir}`);
  if (hits.length > 1) throw new Error(`ambiguous recorded bars for ${symbol} in ${dir}: ${hits.join(', ')}`);
  return join(dir, hits[0]!);
}

export interface WatchlistReplay {
  /** Every symbol's bars, merged oldest first (ties in watchlist order). */
  bars: Bar[];
  interval: string;
  files: Record<string, string>;
  perSymbol: Record<string, number>;
}

/**
 * Load the watchlist's recorded bars from `dir` and interleave them by bar start. Every file must have the
 * same interval (a daily and a minute series cannot be merged into one clock).
 */
export async function loadWatchlistReplay(
  dir: string,
  symbols: readonly string[],
  opts: { from?: string; barsPerSymbol?: number } = {},
): Promise<WatchlistReplay> {
  const files: Record<string, string> = {};
  const perSymbol: Record<string, number> = {};
  const series: Bar[][] = [];
  let interval: string | undefined;
  for (const symbol of symbols) {
    const file = await findReplayFile(dir, symbol);
    const count = opts.barsPerSymbol ? opts.barsPerSymbol : undefined;
    const r = await loadReplay(file, symbol, { ...(opts.from ? { from: opts.from } : {}), count });
    if (interval !== undefined && r.interval !== interval) {
      throw new Error(`cannot interleave ${r.interval} bars of ${symbol} with ${interval} bars of ${symbols[0]}`);
    }
    interval = r.interval;
    files[symbol] = file;
    perSymbol[symbol] = r.bars.length;
    series.push(r.bars);
  }
  return { bars: mergeByTime(series), interval: interval ?? '1d', files, perSymbol };
}

/** K-way merge of series that are each oldest first; equal timestamps keep the series order. */
export function mergeByTime(series: readonly (readonly Bar[])[]): Bar[] {
  const idx = series.map(() => 0);
  const out: Bar[] = [];
  for (;;) {
    let best = -1;
    for (let s = 0; s < series.length; s++) {
      const b = series[s]![idx[s]!];
      if (b && (best === -1 || b.timestamp < series[best]![idx[best]!]!.timestamp)) best = s;
    }
    if (best === -1) return out;
    out.push(series[best]![idx[best]!++]!);
  }
}

/**
 * Pause before publishing `next` at a speed factor: the market-time gap divided by the speed (1 = real time,
 * 60 = a minute per second). 0 or less = no pause (as fast as confirms allow).
 */
export function speedDelayMs(prev: Bar | undefined, next: Bar, speed: number): number {
  if (!prev || speed <= 0) return 0;
  const gap = Date.parse(next.timestamp) - Date.parse(prev.timestamp);
  return gap > 0 ? gap / speed : 0;
}
