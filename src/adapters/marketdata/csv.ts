import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { OhlcvBar } from '../../contracts/bar';

/**
 * CSV readers for the shared market-data files (see ../shared/data/README.md) → OhlcvBar[], oldest first.
 * Used by unit tests (fixtures), the replay data source and backtests.
 *
 * Two layouts, told apart by the header line:
 * - daily:  `Date,Open,High,Low,Close,Adj Close,Volume` (Yahoo). Open/High/Low/Close are split-adjusted;
 *   `Adj Close` (which also folds in dividends) is ignored. Timestamp = `<Date>T00:00:00.000Z`.
 * - minute: `Date,Time,Open,High,Low,Close,Volume,OpenInterest`. Timestamp = `<Date>T<Time>.000Z`: the file is
 *   in exchange-local time and we keep that wall-clock label as-is (tagged Z) rather than guess a time zone, so
 *   the date part is always the exchange trading date. OpenInterest is ignored.
 *
 * Timestamps are bar *starts* (a daily bar's timestamp is its session date), matching the `market.bars` contract.
 * Rows are validated (positive prices, high/low bound open and close, volume >= 0, strictly increasing time);
 * a bad row throws with its line number unless `onInvalidRow: 'skip'`.
 */

export type CsvBarLayout = 'daily' | 'minute';

export interface CsvBarOptions {
  /** Symbol stamped on every bar (the files carry none). */
  symbol: string;
  /**
   * Inclusive bounds compared against the timestamp prefix of the same length, so `'2008-07'`,
   * `'2008-07-03'` and `'2006-01-02T09:30'` all work.
   */
  from?: string;
  to?: string;
  /** Keep at most this many bars (after the from/to filter). */
  limit?: number;
  /** Default 'throw'. 'skip' drops rows that fail validation (e.g. Yahoo "null" rows). */
  onInvalidRow?: 'throw' | 'skip';
}

const DAILY_HEADER = ['date', 'open', 'high', 'low', 'close', 'adj close', 'volume'];
const MINUTE_HEADER = ['date', 'time', 'open', 'high', 'low', 'close', 'volume', 'openinterest'];

export class CsvBarError extends Error {
  override readonly name = 'CsvBarError';
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
  }
}

/** Which layout a header line belongs to; throws for anything else. */
export function detectLayout(headerLine: string): CsvBarLayout {
  const cols = headerLine.split(',').map((c) => c.trim().toLowerCase());
  const same = (want: string[]) => want.length === cols.length && want.every((w, i) => cols[i] === w);
  if (same(DAILY_HEADER)) return 'daily';
  if (same(MINUTE_HEADER)) return 'minute';
  throw new CsvBarError(`unrecognised header "${headerLine}"`, 1);
}

/** Parse CSV text in either layout. Pure: no I/O. */
export function parseBarsCsv(text: string, opts: CsvBarOptions): OhlcvBar[] {
  if (!opts.symbol) throw new Error('parseBarsCsv: symbol is required');
  const lines = text.split(/\r?\n/);
  const layout = detectLayout(lines[0] ?? '');
  const bars: OhlcvBar[] = [];
  let prevTs: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    const lineNo = i + 1;
    let bar: OhlcvBar;
    try {
      bar = parseRow(raw, layout, opts.symbol, lineNo);
    } catch (err) {
      if (opts.onInvalidRow === 'skip' && err instanceof CsvBarError) continue;
      throw err;
    }
    if (prevTs !== undefined && bar.timestamp <= prevTs) {
      throw new CsvBarError(`timestamp ${bar.timestamp} is not after ${prevTs} (files must be oldest first)`, lineNo);
    }
    prevTs = bar.timestamp;
    if (opts.from !== undefined && bar.timestamp.slice(0, opts.from.length) < opts.from) continue;
    if (opts.to !== undefined && bar.timestamp.slice(0, opts.to.length) > opts.to) break;
    bars.push(bar);
    if (opts.limit !== undefined && bars.length >= opts.limit) break;
  }
  return bars;
}

/** Read and parse a CSV file synchronously (tests, CLI tools). */
export function readBarsCsvSync(path: string, opts: CsvBarOptions): OhlcvBar[] {
  return parseBarsCsv(readFileSync(path, 'utf8'), opts);
}

/** Read and parse a CSV file. */
export async function readBarsCsv(path: string, opts: CsvBarOptions): Promise<OhlcvBar[]> {
  return parseBarsCsv(await readFile(path, 'utf8'), opts);
}

function parseRow(raw: string, layout: CsvBarLayout, symbol: string, lineNo: number): OhlcvBar {
  const cells = raw.split(',').map((c) => c.trim());
  const want = layout === 'daily' ? DAILY_HEADER.length : MINUTE_HEADER.length;
  if (cells.length !== want) throw new CsvBarError(`expected ${want} columns, got ${cells.length}`, lineNo);
  const date = cells[0]!;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new CsvBarError(`bad date "${date}"`, lineNo);
  let timestamp: string;
  let priceCells: string[];
  let volumeCell: string;
  if (layout === 'daily') {
    timestamp = `${date}T00:00:00.000Z`;
    priceCells = cells.slice(1, 5);
    volumeCell = cells[6]!;
  } else {
    const time = cells[1]!;
    if (!/^\d{2}:\d{2}:\d{2}$/.test(time)) throw new CsvBarError(`bad time "${time}"`, lineNo);
    timestamp = `${date}T${time}.000Z`;
    priceCells = cells.slice(2, 6);
    volumeCell = cells[6]!;
  }
  const [open, high, low, close] = priceCells.map((c) => num(c, lineNo)) as [number, number, number, number];
  const volume = num(volumeCell, lineNo);
  if (!(open > 0 && high > 0 && low > 0 && close > 0)) throw new CsvBarError('prices must be positive', lineNo);
  if (volume < 0) throw new CsvBarError('volume must be >= 0', lineNo);
  if (high < Math.max(open, close, low) || low > Math.min(open, close)) {
    throw new CsvBarError(`high/low do not bound open/close (O=${open} H=${high} L=${low} C=${close})`, lineNo);
  }
  return { symbol, timestamp, open, high, low, close, volume };
}

function num(cell: string, lineNo: number): number {
  const n = Number(cell);
  if (cell === '' || !Number.isFinite(n)) throw new CsvBarError(`not a number: "${cell}"`, lineNo);
  return n;
}
