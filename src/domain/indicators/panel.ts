import type { OhlcvBar } from '../../contracts/bar';
import { Atr, Bollinger, Ema, Macd, Roc, Rsi, Sma, ZScore } from './streaming';

/**
 * Every indicator of one series, updated together one bar at a time: what `npm run indicators` prints, so users
 * can check our numbers against their charting tool. Periods are configurable; the column names carry them.
 */
export interface PanelPeriods {
  sma: number;
  ema: number;
  rsi: number;
  macd: [fast: number, slow: number, signal: number];
  bollinger: [period: number, k: number];
  atr: number;
  /** Optional extra columns. */
  zscore?: number;
  roc?: number;
}

export const DEFAULT_PANEL_PERIODS: PanelPeriods = {
  sma: 20,
  ema: 20,
  rsi: 14,
  macd: [12, 26, 9],
  bollinger: [20, 2],
  atr: 14,
};

export type PanelRow = { date: string; close: number } & Record<string, number | undefined | string>;

export class IndicatorPanel {
  readonly columns: string[];
  private readonly sma: Sma;
  private readonly ema: Ema;
  private readonly rsi: Rsi;
  private readonly macd: Macd;
  private readonly bb: Bollinger;
  private readonly atr: Atr;
  private readonly z: ZScore | undefined;
  private readonly roc: Roc | undefined;
  private readonly names: {
    sma: string;
    ema: string;
    rsi: string;
    atr: string;
    z: string | undefined;
    roc: string | undefined;
  };

  constructor(readonly periods: PanelPeriods = DEFAULT_PANEL_PERIODS) {
    this.sma = new Sma(periods.sma);
    this.ema = new Ema(periods.ema);
    this.rsi = new Rsi(periods.rsi);
    this.macd = new Macd(...periods.macd);
    this.bb = new Bollinger(...periods.bollinger);
    this.atr = new Atr(periods.atr);
    this.z = periods.zscore === undefined ? undefined : new ZScore(periods.zscore);
    this.roc = periods.roc === undefined ? undefined : new Roc(periods.roc);
    this.names = {
      sma: `sma_${periods.sma}`,
      ema: `ema_${periods.ema}`,
      rsi: `rsi_${periods.rsi}`,
      atr: `atr_${periods.atr}`,
      z: periods.zscore === undefined ? undefined : `zscore_${periods.zscore}`,
      roc: periods.roc === undefined ? undefined : `roc_${periods.roc}`,
    };
    this.columns = [
      'date',
      'close',
      this.names.sma,
      this.names.ema,
      this.names.rsi,
      'macd',
      'macd_signal',
      'macd_hist',
      'bb_upper',
      'bb_middle',
      'bb_lower',
      this.names.atr,
      ...(this.names.z ? [this.names.z] : []),
      ...(this.names.roc ? [this.names.roc] : []),
    ];
  }

  update(bar: OhlcvBar): PanelRow {
    const c = bar.close;
    this.bb.update(c);
    const row: PanelRow = {
      date: bar.timestamp,
      close: c,
      [this.names.sma]: this.sma.update(c),
      [this.names.ema]: this.ema.update(c),
      [this.names.rsi]: this.rsi.update(c),
      macd: this.macd.update(c),
      macd_signal: this.macd.signal,
      macd_hist: this.macd.histogram,
      bb_upper: this.bb.upper,
      bb_middle: this.bb.middle,
      bb_lower: this.bb.lower,
      [this.names.atr]: this.atr.update(bar),
    };
    if (this.z && this.names.z) row[this.names.z] = this.z.update(c);
    if (this.roc && this.names.roc) row[this.names.roc] = this.roc.update(c);
    return row;
  }
}
