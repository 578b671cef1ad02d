import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/backtest';

/**
 * The backtest's HTML report in a real browser: Debian's headless Chromium (installed by
 * scripts/provision/chromium.sh), driven by playwright-core. The page must draw every chart offline (the
 * charting library is inlined: any network request fails the test) and put one marker per trade bar and side
 * on each symbol's price chart, counted here from the JSON result independently of the report code.
 */
const ROOT = path.resolve(__dirname, '../..');
const DATA = path.resolve(ROOT, '../shared/data');
let browser: Browser;
let dir: string;

beforeAll(async () => {
  const executablePath = execFileSync('bash', [path.join(ROOT, 'scripts/provision/chromium.sh')], {
    encoding: 'utf8',
  }).trim();
  browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  dir = mkdtempSync(path.join(tmpdir(), 'sat-report-'));
});

afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('backtest HTML report in headless Chromium', () => {
  it('renders the equity, drawdown and price charts with the right number of trade markers, offline', async () => {
    const out = path.join(dir, 'sma.json');
    const r = runCli(
      [
        '--data',
        `${DATA}/nvda-1999-2014.csv,${DATA}/orcl-1995-2014.csv`,
        '--from',
        '2010',
        '--strategy',
        'sma-cross',
        '--out',
        out,
        '--no-progress',
      ],
      {},
    )!;
    const trades = r.json.trades as Array<{ symbol: string; timestamp: string; side: string }>;
    expect(trades.length).toBeGreaterThan(50);
    const expected: Record<string, number> = {};
    const seen = new Set<string>();
    for (const t of trades) {
      const key = `${t.symbol}|${t.timestamp}|${t.side}`;
      if (seen.has(key)) continue;
      seen.add(key);
      expected[t.symbol] = (expected[t.symbol] ?? 0) + 1;
    }

    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const external: string[] = [];
    const errors: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      external.push(url);
      return route.abort();
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`file://${r.reportPath}`);
    await page.waitForFunction(
      () => (globalThis as unknown as { __report?: { ready: boolean } }).__report?.ready === true,
    );
    const report = await page.evaluate(
      () => (globalThis as unknown as { __report: { charts: number; markers: Record<string, number> } }).__report,
    );
    expect(errors).toEqual([]);
    expect(external).toEqual([]);
    expect(report.charts).toBe(4); // equity, drawdown, NVDA, ORCL
    expect(report.markers).toEqual(expected);
    // Every chart drew onto a canvas of real size.
    const canvases = await page.$$eval('.chart canvas', (cs) =>
      cs.map((c) => ({
        w: (c as unknown as { width: number; height: number }).width,
        h: (c as unknown as { width: number; height: number }).height,
      })),
    );
    expect(canvases.length).toBeGreaterThanOrEqual(4);
    for (const c of canvases.slice(0, 4)) expect(c.w * c.h).toBeGreaterThan(0);
    const shot = await page.locator('#price-NVDA').screenshot();
    expect(shot.length).toBeGreaterThan(5_000); // a drawn chart, not a blank box
    if (process.env.REPORT_SCREENSHOT) await page.screenshot({ path: process.env.REPORT_SCREENSHOT, fullPage: true });
    await page.close();
  });
});
