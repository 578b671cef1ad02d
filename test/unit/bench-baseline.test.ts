import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PhaseReport } from '../../src/cli/bench/analysis';
import { DEFAULT_BASELINE, isReadyCheckout, resolveCommit } from '../../src/cli/bench/baseline';
import { passArgs } from '../../src/cli/bench/cluster';
import {
  baselineRatioLine,
  baselineRatios,
  formatBaselineComparison,
  issueTargets,
  ratio,
  sideBySideRows,
} from '../../src/cli/bench/comparison';
import { parseOptions, type BenchOptions } from '../../src/cli/bench/options';
import type { BenchJson } from '../../src/cli/bench/report';
import { dist } from '../../src/cli/bench/stats';
import type { LossReport } from '../../src/cli/bench/zero-loss';
import { BENCH_MACHINE_AND_SETUP } from '../support/bench-json';

/**
 * The pure parts of bench:trades' same-run baseline (issue 12): which baseline a run measures, the ratios current /
 * baseline and the issue's targets, and the cached checkout's completeness marker.
 */

const opts = (argv: string[]) => parseOptions(argv) as BenchOptions;

describe('bench:trades baseline options', () => {
  it('measures d77fd4c first by default; --baseline chooses, --no-baseline skips', () => {
    expect(DEFAULT_BASELINE).toBe('d77fd4c');
    expect(opts([]).baseline).toBe('d77fd4c');
    expect(opts(['--baseline', 'abc1234']).baseline).toBe('abc1234');
    expect(opts(['--baseline=HEAD~3']).baseline).toBe('HEAD~3');
    expect(opts(['--no-baseline']).baseline).toBeUndefined();
    expect(parseOptions(['--baseline'])).toEqual({ error: '--baseline needs a commit (e.g. d77fd4c)' });
    expect(parseOptions(['--baseline', '--no-baseline'])).toEqual({
      error: '--baseline needs a commit (e.g. d77fd4c)',
    });
  });

  it("--cpu-prof DIR profiles the current code's worker (an absolute directory)", () => {
    expect(opts([]).cpuProf).toBeUndefined();
    expect(opts(['--cpu-prof', 'prof']).cpuProf).toBe(path.resolve('prof'));
    expect(parseOptions(['--cpu-prof'])).toEqual({ error: '--cpu-prof needs a directory' });
  });

  it('--cluster compares the two stacks without a baseline unless one is asked for', () => {
    expect(opts(['--cluster']).baseline).toBeUndefined();
    expect(opts(['--cluster', '--baseline', 'abc']).baseline).toBe('abc');
    // Each pass of --cluster is a plain run: it is told not to measure a baseline, unless --baseline was given.
    expect(passArgs(['--cluster', '--signals', '5', '--out', 'x', '--profile=dev'])).toEqual([
      '--signals',
      '5',
      '--no-baseline',
    ]);
    expect(passArgs(['--cluster', '--baseline', 'abc'])).toEqual(['--baseline', 'abc']);
  });
});

describe('bench:trades baseline checkout', () => {
  it('resolves commits of this repository to full hashes and names a bad one', () => {
    expect(resolveCommit('HEAD')).toMatch(/^[0-9a-f]{40}$/);
    expect(() => resolveCommit('no-such-ref-xyz')).toThrow('--baseline no-such-ref-xyz: not a commit');
  });

  it('uses a cached checkout only when its marker names the same commit (a killed install is redone)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-baseline-'));
    const sha = 'a'.repeat(40);
    expect(isReadyCheckout(dir, sha)).toBe(false);
    fs.writeFileSync(path.join(dir, '.bench-baseline-ready'), `${'b'.repeat(40)}\n`);
    expect(isReadyCheckout(dir, sha)).toBe(false);
    fs.writeFileSync(path.join(dir, '.bench-baseline-ready'), `${sha}\n`);
    expect(isReadyCheckout(dir, sha)).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

/** A pass with the figures the comparison reads (the rest as a report would have them, but irrelevant here). */
function pass(
  role: 'baseline' | 'current',
  f: { p99: number; sustained: number; cpuMs: number; wfts: number; events: number; calls: number; toOrder: number },
): BenchJson {
  const phase = (name: 'latency' | 'saturation'): PhaseReport => ({
    name,
    signals: 10,
    publishErrors: 0,
    drained: true,
    latencyMs: dist(name === 'latency' ? [f.p99 / 2, f.p99] : [1000]),
    publishConfirmMs: dist([1]),
    stagesMs: {},
    ...(name === 'saturation'
      ? {
          rates: {
            publishPerS: 100,
            intakeStarts: { overall: 50, sustained: 60 },
            ordersSubmitted: { overall: f.sustained * 0.8, sustained: f.sustained, spanS: 10 },
            tradesCompleted: { overall: f.sustained * 0.7, sustained: f.sustained * 0.9, spanS: 11 },
          },
        }
      : {}),
    cpuCores: { others: 0.2 },
    cpuMsPerTrade: { temporal: f.cpuMs / 2, 'trade-worker': f.cpuMs / 2 },
    hotThreads: {},
    hotThreadsPeak: {},
    pg: { samples: 1, activeMean: 0, lockWaitMean: 0, lockWaitMax: 0 },
    persistence: undefined,
    wallS: 10,
    progress: [],
    perTrade: {
      workflowTasks: f.wfts,
      workflowTasksToOrder: f.toOrder,
      matchingDispatchesToOrder: f.toOrder - 1,
      historyEvents: f.events,
      persistenceCalls: f.calls,
      pgRoundTrips: NaN,
      cpuMs: f.cpuMs,
    },
  });
  return {
    ...(role === 'baseline' ? { label: 'baseline d77fd4c' } : {}),
    role,
    startedAt: '2026-11-29T00:00:00.000Z',
    git: role === 'baseline' ? 'services d77fd4c' : 'abc1234',
    command: 'npm run bench:trades',
    jsonPath: `bench-results/trades-x${role === 'baseline' ? '-baseline' : ''}.json`,
    options: opts([]),
    ...BENCH_MACHINE_AND_SETUP,
    phases: [phase('latency'), phase('saturation')],
    loss: {
      zeroLoss: true,
      published: 20,
      workflowsOnTaskQueue: 20,
      ledgerFilled: 20,
      venueOrdersFound: 20,
    } as LossReport,
    floor: { burst: { n: 300, perS: 25 }, atRate: { n: 10, rate: 10, latencyMs: dist([50, 100]) } },
    barsPublished: 3,
    totalS: 5,
  };
}

describe('bench:trades baseline comparison', () => {
  const base = pass('baseline', { p99: 1000, sustained: 8, cpuMs: 200, wfts: 6, events: 42, calls: 40, toOrder: 2 });
  const head = pass('current', { p99: 300, sustained: 20, cpuMs: 90, wfts: 3, events: 26, calls: 21, toOrder: 1 });

  it('ratios are current / baseline, and undefined ones are NaN, never 0 or Infinity', () => {
    expect(ratio(4, 2)).toBe(0.5);
    expect(ratio(0, 2)).toBeNaN();
    expect(ratio(undefined, 2)).toBeNaN();
    expect(ratio(2, NaN)).toBeNaN();
    expect(baselineRatios(base, head)).toEqual({
      cpuPerTrade: 0.45,
      tradesPerS: 2.5,
      p99AtRate: 0.3,
      workflowTasks: 0.5,
      historyEvents: 26 / 42,
      persistenceCalls: 21 / 40,
    });
  });

  it('checks the issue targets: the three baseline ratios, the counts and the floor ratios', () => {
    const t = Object.fromEntries(issueTargets(base, head).map((c) => [c.figure, [c.value, c.target, c.met]]));
    expect(t['CPU per trade / baseline']).toEqual(['0.45x', '≤ 0.50x', 'met']);
    expect(t['trades/s at saturation / baseline']).toEqual(['2.50x', '≥ 2.00x', 'met']);
    expect(t['p99 signal → order at --rate / baseline']).toEqual(['0.30x', '≤ 0.40x', 'met']);
    expect(t['persistence calls per trade']).toEqual(['21.0', '≤ 35.0', 'met']);
    // 20 trades/s against the floor's 25/s; p99 300 ms against the floor's 100 ms.
    expect(t['trades/s / one-activity workflows/s (floor)']).toEqual(['0.80x', '≥ 0.60x', 'met']);
    expect(t['p99 / one-activity p99 (floor)']).toEqual(['3.00x', '≤ 2.00x', 'NOT met']);
    // The other way round, the baseline misses the ratio targets.
    const back = Object.fromEntries(issueTargets(head, base).map((c) => [c.figure, c.met]));
    expect(back['CPU per trade / baseline']).toBe('NOT met');
    expect(back['trades/s at saturation / baseline']).toBe('NOT met');
  });

  it('a missing figure is shown as "–", not as met', () => {
    const noSat = { ...head, phases: head.phases.filter((p) => p.name === 'latency') };
    const t = Object.fromEntries(issueTargets(base, noSat).map((c) => [c.figure, [c.value, c.met]]));
    expect(t['trades/s at saturation / baseline']).toEqual(['–', '–']);
  });

  it('prints the side-by-side table and the `baseline ratio:` line docs/benchmarks.md quotes', () => {
    expect(baselineRatioLine(base, head, 'd77fd4c')).toBe(
      'baseline ratio: CPU per trade 0.45x, trades/s at saturation 2.50x, p99 at 10.0/s 0.30x ' +
        '(current / baseline d77fd4c, same run, same server)',
    );
    const row = sideBySideRows(base, head).find((r) => r[0] === 'per trade: workflow tasks');
    expect(row).toEqual(['per trade: workflow tasks', '6.0', '3.0', '0.50x']);
    const text = formatBaselineComparison(base, head);
    expect(text).toContain('══ bench:trades: baseline d77fd4c vs current code');
    expect(text).toMatch(/^baseline ratio: CPU per trade 0\.45x/m);
    expect(text).toMatch(/^baseline ratio \(counts\): workflow tasks 0\.50x/m);
    expect(text).toMatch(/^baseline: zero loss \(20 published/m);
  });
});
