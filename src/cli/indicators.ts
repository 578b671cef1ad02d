/**
 * `npm run indicators -- --data <csv> [options]`: every indicator's value per bar, to check against a charting
 * tool. Uses the same streaming indicator classes as the strategies (src/domain/indicators/streaming.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { detectLayout, parseBarsCsv } from '../adapters/marketdata/csv';
import { DEFAULT_PANEL_PERIODS, IndicatorPanel, type PanelPeriods } from '../domain/indicators/panel';

const D = DEFAULT_PANEL_PERIODS;
const USAGE = `Usage: npm run indicators -- --data <csv> [options]

Prints every indicator per bar of a bar file (the layouts of ../shared/data: daily Yahoo or 1-minute), oldest
first. A value that is not defined yet (warm-up) is an empty field in CSV and null in JSON.

Default CSV columns:
  date,close,sma_${D.sma},ema_${D.ema},rsi_${D.rsi},macd,macd_signal,macd_hist,bb_upper,bb_middle,bb_lower,atr_${D.atr}

Options:
  --data <csv>         bar file (required)
  --symbol <S>         symbol stamped on the bars (default: from the file name, e.g. NVDA)
  --format <csv|json>  output format (default csv)
  --sma <n>            SMA period (default ${D.sma})
  --ema <n>            EMA period (default ${D.ema}; seeded with the SMA of the first n closes)
  --rsi <n>            Wilder RSI period (default ${D.rsi})
  --macd <f,s,g>       MACD fast,slow,signal EMA periods (default ${D.macd.join(',')})
  --bb <n,k>           Bollinger period and multiplier of the population σ (default ${D.bollinger.join(',')})
  --atr <n>            Wilder ATR period (default ${D.atr})
  --zscore <n>         add a rolling z-score column zscore_<n>
  --roc <n>            add a rate-of-change (momentum) column roc_<n>, as a fraction
  --from <date>        first bar (prefix match, e.g. 2008 or 2008-07-03)
  --to <date>          last bar (prefix match)
  --precision <d>      round values to d decimals (default: full precision)
  -h, --help           this help

Conventions (docs/quant.md): EMA α = 2/(n+1); RSI and ATR use Wilder smoothing seeded with a simple mean;
MACD signal is an EMA of the MACD line; Bollinger σ divides by n.
`;

class UsageError extends Error {}

function intOpt(name: string, v: string | undefined, def: number, min = 1): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

function listOpt(name: string, v: string | undefined, def: number[], count: number, ints: boolean): number[] {
  if (v === undefined) return def;
  const parts = v.split(',').map((s) => Number(s.trim()));
  const ok =
    parts.length === count && parts.every((n) => Number.isFinite(n) && n > 0 && (!ints || Number.isInteger(n)));
  if (!ok)
    throw new UsageError(
      `--${name} must be ${count} comma-separated positive ${ints ? 'integers' : 'numbers'}, got "${v}"`,
    );
  return parts;
}

export function symbolFromPath(file: string): string {
  const base = path.basename(file).replace(/\.[^.]*$/, '');
  const first = base.split(/[-_.]/)[0] ?? '';
  return /^[A-Za-z][A-Za-z0-9]*$/.test(first) ? first.toUpperCase() : 'SYM';
}

export function parsePanelPeriods(values: Record<string, string | boolean | undefined>): PanelPeriods {
  const s = (k: string) => values[k] as string | undefined;
  const macd = listOpt('macd', s('macd'), D.macd, 3, true) as [number, number, number];
  if (macd[0] >= macd[1]) throw new UsageError(`--macd fast must be < slow, got "${s('macd')}"`);
  const bb = listOpt('bb', s('bb'), D.bollinger, 2, false);
  if (!Number.isInteger(bb[0])) throw new UsageError(`--bb period must be an integer, got "${s('bb')}"`);
  return {
    sma: intOpt('sma', s('sma'), D.sma),
    ema: intOpt('ema', s('ema'), D.ema),
    rsi: intOpt('rsi', s('rsi'), D.rsi),
    macd,
    bollinger: bb as [number, number],
    atr: intOpt('atr', s('atr'), D.atr),
    zscore: s('zscore') === undefined ? undefined : intOpt('zscore', s('zscore'), 20, 2),
    roc: s('roc') === undefined ? undefined : intOpt('roc', s('roc'), 10),
  };
}

export function run(argv: string[], out: (s: string) => void): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      symbol: { type: 'string' },
      format: { type: 'string', default: 'csv' },
      sma: { type: 'string' },
      ema: { type: 'string' },
      rsi: { type: 'string' },
      macd: { type: 'string' },
      bb: { type: 'string' },
      atr: { type: 'string' },
      zscore: { type: 'string' },
      roc: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      precision: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return;
  }
  if (!values.data) throw new UsageError('--data <csv> is required (see --help)');
  const format = values.format;
  if (format !== 'csv' && format !== 'json') throw new UsageError(`--format must be csv or json, got "${format}"`);
  const precision = values.precision === undefined ? undefined : intOpt('precision', values.precision, 0, 0);
  const periods = parsePanelPeriods(values);
  const text = readFileSync(values.data, 'utf8');
  const layout = detectLayout(text.slice(0, text.indexOf('\n')));
  const bars = parseBarsCsv(text, {
    symbol: values.symbol ?? symbolFromPath(values.data),
    from: values.from,
    to: values.to,
  });
  const panel = new IndicatorPanel(periods);
  const dateOf = (ts: string) => (layout === 'daily' ? ts.slice(0, 10) : `${ts.slice(0, 10)} ${ts.slice(11, 19)}`);
  const fmt = (v: unknown): string =>
    v === undefined
      ? ''
      : typeof v === 'number'
        ? precision === undefined
          ? String(v)
          : v.toFixed(precision)
        : String(v);
  const cols = panel.columns;
  if (format === 'csv') {
    const lines: string[] = [cols.join(',')];
    for (const bar of bars) {
      const row = panel.update(bar);
      row.date = dateOf(bar.timestamp);
      lines.push(cols.map((c) => fmt(row[c])).join(','));
      if (lines.length >= 4096) {
        out(lines.join('\n') + '\n');
        lines.length = 0;
      }
    }
    if (lines.length) out(lines.join('\n') + '\n');
    return;
  }
  const round = (v: unknown) =>
    v === undefined ? null : typeof v === 'number' && precision !== undefined ? Number(v.toFixed(precision)) : v;
  out('[');
  bars.forEach((bar, i) => {
    const row = panel.update(bar);
    row.date = dateOf(bar.timestamp);
    const obj: Record<string, unknown> = {};
    for (const c of cols) obj[c] = round(row[c]);
    out(`${i ? ',' : ''}\n${JSON.stringify(obj)}`);
  });
  out('\n]\n');
}

if (require.main === module) {
  try {
    run(process.argv.slice(2), (s) => process.stdout.write(s));
  } catch (err) {
    process.stderr.write(`indicators: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}
