import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyParams, runCli } from '../../../src/cli/backtest';

const DATA = path.resolve(__dirname, '../../../../shared/data');
const dir = mkdtempSync(path.join(tmpdir(), 'sat-bt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run backtest', () => {
  const args = (out: string, extra: string[] = []) => [
    '--data',
    `${DATA}/nvda-1999-2014.csv,${DATA}/orcl-1995-2014.csv`,
    '--from',
    '2012',
    '--strategy',
    'macd',
    '--param',
    'fast=8',
    '--out',
    out,
    '--no-progress',
    ...extra,
  ];

  it('writes the JSON result and the report; the same inputs give byte-identical output', () => {
    const a = runCli(args(path.join(dir, 'a.json')), {})!;
    const b = runCli(args(path.join(dir, 'b.json')), {})!;
    expect(readFileSync(path.join(dir, 'a.json'), 'utf8')).toBe(readFileSync(path.join(dir, 'b.json'), 'utf8'));
    expect(readFileSync(a.reportPath!, 'utf8')).toBe(readFileSync(b.reportPath!, 'utf8'));
    expect(a.json).toMatchObject({ strategy: 'macd', symbols: ['NVDA', 'ORCL'], params: { macd: { fast: 8 } } });
    expect(readFileSync(a.reportPath!, 'utf8')).toContain('LightweightCharts'); // the library is inlined
  });

  it('walk-forward writes its windows; bad input fails with a clear message', () => {
    const r = runCli(
      [
        '--data',
        `${DATA}/nvda-1999-2014.csv`,
        '--from',
        '2010',
        '--strategy',
        'sma-cross',
        '--walk-forward',
        '--train',
        '252',
        '--test',
        '126',
        '--out',
        path.join(dir, 'wf.json'),
        '--no-progress',
      ],
      {},
    )!;
    expect(r.walkForward!.windows.length).toBe(Math.ceil((1258 - 252) / 126));
    expect(() => runCli(['--strategy', 'macd'], {})).toThrow(/--data/);
    expect(() => runCli(args(path.join(dir, 'x.json'), ['--param', 'nope=1']), {})).toThrow(/unknown parameter "nope"/);
    expect(() => runCli([...args(path.join(dir, 'x.json')).slice(0, 4), '--strategy', 'fallback'], {})).toThrow(
      /unknown strategy/,
    );
    expect(() => applyParams('ensemble', { macd: { fast: 12, slow: 26, signal: 9 } }, { fast: 3 })).toThrow(
      /unknown parameter/,
    );
  });
});
