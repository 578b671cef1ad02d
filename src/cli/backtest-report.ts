import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { OhlcvBar } from '../contracts/bar';
import type { BacktestResult } from '../domain/backtest';

/**
 * One self-contained HTML report of a backtest: the equity curve, the drawdown, and each symbol's price with a
 * marker per trade (the fills of one side on one bar make one marker). Drawn with TradingView's
 * lightweight-charts (Apache-2.0), whose standalone build is inlined so the file opens offline, from disk, with
 * no server. After drawing, the page sets `window.__report` (charts drawn, markers per symbol) for tests.
 */

/**
 * The standalone build (global `LightweightCharts`). The package's exports map offers only ESM entry points, so
 * the file is looked up in the node_modules folders above this file.
 */
function libraryPath(): string {
  const rel = 'node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js';
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, rel);
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`${rel} not found: run npm ci`);
}

const sec = (ts: string) => Math.floor(Date.parse(ts) / 1000);

export interface ReportMarker {
  time: number;
  side: 'buy' | 'sell';
  qty: number;
  price: number;
}

/** One marker per (symbol, bar, side): what the report draws and the browser test counts. */
export function tradeMarkers(result: Pick<BacktestResult, 'trades'>): Record<string, ReportMarker[]> {
  const out: Record<string, ReportMarker[]> = {};
  const index = new Map<string, ReportMarker>();
  for (const t of result.trades) {
    const key = `${t.symbol}|${t.timestamp}|${t.side}`;
    const m = index.get(key);
    if (m) {
      m.price = (m.price * m.qty + t.price * t.qty) / (m.qty + t.qty);
      m.qty += t.qty;
      continue;
    }
    const marker: ReportMarker = { time: sec(t.timestamp), side: t.side, qty: t.qty, price: t.price };
    index.set(key, marker);
    (out[t.symbol] ??= []).push(marker);
  }
  return out;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const fmtPct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(2)} %`);
const fmtNum = (v: number | null, d = 2) => (v === null ? '—' : v.toFixed(d));

export function renderReport(result: BacktestResult, bars: readonly OhlcvBar[], title: string): string {
  const m = result.metrics;
  let peak = result.startingCash;
  const equity = result.timestamps.map((t, i) => ({ time: sec(t), value: Math.round(result.equity[i]! * 100) / 100 }));
  const drawdown = result.equity.map((e, i) => {
    peak = Math.max(peak, e);
    return { time: sec(result.timestamps[i]!), value: Math.round((-(peak - e) / peak) * 1e6) / 1e4 };
  });
  const prices: Record<string, Array<{ time: number; open: number; high: number; low: number; close: number }>> = {};
  for (const b of bars)
    (prices[b.symbol] ??= []).push({ time: sec(b.timestamp), open: b.open, high: b.high, low: b.low, close: b.close });
  const data = { equity, drawdown, prices, markers: tradeMarkers(result) };
  const rows: Array<[string, string]> = [
    ['Strategy', result.strategy],
    ['Symbols', result.symbols.join(', ')],
    [
      'Period',
      `${result.timestamps[0]?.slice(0, 10) ?? ''} → ${result.timestamps.at(-1)?.slice(0, 10) ?? ''} (${result.bars} bars)`,
    ],
    ['Start → end equity', `${m.startEquity.toFixed(2)} → ${m.endEquity.toFixed(2)}`],
    ['Total return', fmtPct(m.totalReturn)],
    ['CAGR', fmtPct(m.cagr)],
    ['Sharpe', fmtNum(m.sharpe)],
    ['Sortino', fmtNum(m.sortino)],
    [
      'Max drawdown',
      `${fmtPct(m.maxDrawdown)} (longest ${m.maxDrawdownDurationBars} bars, ${m.maxDrawdownDurationDays} days)`,
    ],
    ['Trades (round trips) / fills', `${m.trades} / ${m.fills}`],
    ['Win rate', fmtPct(m.winRate)],
    ['Profit factor', fmtNum(m.profitFactor)],
    ['Exposure', `${fmtPct(m.exposure)} of bars, ${fmtPct(m.averageExposurePct)} of equity on average`],
    ['Turnover', `${fmtNum(m.turnover)} × average equity`],
    ['Fees / slippage', `${result.final.feesPaid.toFixed(2)} / ${result.final.slippage.toFixed(2)}`],
  ];
  const lib = readFileSync(libraryPath(), 'utf8');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#1d2733;background:#fff}
h1{font-size:20px;margin:0 0 12px}h2{font-size:15px;margin:20px 0 6px}
table{border-collapse:collapse}td{padding:2px 14px 2px 0}td:first-child{color:#5a6775}
.chart{width:100%;height:300px;border:1px solid #e3e7ec}
</style></head><body>
<h1>${esc(title)}</h1>
<table>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>
<h2>Equity</h2><div id="equity" class="chart"></div>
<h2>Drawdown (%)</h2><div id="drawdown" class="chart"></div>
${Object.keys(prices)
  .map(
    (s) => `<h2>${esc(s)}: price and trades</h2><div id="price-${esc(s)}" class="chart" data-symbol="${esc(s)}"></div>`,
  )
  .join('\n')}
<script>${lib}</script>
<script id="report-data" type="application/json">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>
<script>
(function () {
  const LC = window.LightweightCharts;
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const opts = { autoSize: true, timeScale: { timeVisible: true }, layout: { attributionLogo: false } };
  const report = { ready: false, charts: 0, markers: {} };
  const eq = LC.createChart(document.getElementById('equity'), opts);
  eq.addSeries(LC.LineSeries, { color: '#1f6feb', lineWidth: 2 }).setData(data.equity);
  eq.timeScale().fitContent();
  report.charts++;
  const dd = LC.createChart(document.getElementById('drawdown'), opts);
  dd.addSeries(LC.AreaSeries, { lineColor: '#d1242f', topColor: 'rgba(209,36,47,0.05)', bottomColor: 'rgba(209,36,47,0.4)', invertFilledArea: false }).setData(data.drawdown);
  dd.timeScale().fitContent();
  report.charts++;
  for (const symbol of Object.keys(data.prices)) {
    const chart = LC.createChart(document.getElementById('price-' + symbol), opts);
    const series = chart.addSeries(LC.CandlestickSeries, {});
    series.setData(data.prices[symbol]);
    const markers = (data.markers[symbol] || []).map((m) => ({
      time: m.time,
      position: m.side === 'buy' ? 'belowBar' : 'aboveBar',
      color: m.side === 'buy' ? '#1a7f37' : '#d1242f',
      shape: m.side === 'buy' ? 'arrowUp' : 'arrowDown',
    }));
    const plugin = LC.createSeriesMarkers(series, markers);
    chart.timeScale().fitContent();
    report.markers[symbol] = plugin.markers().length;
    report.charts++;
  }
  report.ready = true;
  window.__report = report;
})();
</script>
</body></html>
`;
}
