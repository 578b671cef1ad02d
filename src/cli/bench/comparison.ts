/**
 * Two passes of the benchmark side by side (pure): the baseline commit against the current code in one run
 * (trades.ts), and the dev stack against the cluster profile (cluster.ts). Each figure is taken from the same
 * phase of both passes; the ratio is always second / first.
 */
import type { PhaseReport } from './analysis';
import type { BenchJson } from './report';
import { f0, f1, table } from './stats';

const phase = (j: BenchJson, name: PhaseReport['name']) => j.phases.find((p) => p.name === name);
const lat = (j: BenchJson) => phase(j, 'latency');
const sat = (j: BenchJson) => phase(j, 'saturation');

/** b / a, or NaN when either is missing or not finite, or a is 0. */
export function ratio(a: number | undefined, b: number | undefined): number {
  return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && a !== 0 ? b / a : NaN;
}

const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : '–');

/** One figure of a pass, and how to print it. */
interface Figure {
  label: string;
  get: (j: BenchJson) => number | undefined;
  fmt?: (n: number) => string;
}

/** The figures both comparisons print. */
export const FIGURES: readonly Figure[] = [
  { label: 'latency p50 ms (signal → order submitted)', get: (j) => lat(j)?.latencyMs.p50, fmt: f0 },
  { label: 'latency p95 ms', get: (j) => lat(j)?.latencyMs.p95, fmt: f0 },
  { label: 'latency p99 ms', get: (j) => lat(j)?.latencyMs.p99, fmt: f0 },
  {
    label: 'latency p99 ms, while other trades completed',
    get: (j) => lat(j)?.latencyBesideCompletions?.besideCompletions.p99,
    fmt: f0,
  },
  { label: 'latency p99 ms, while none did', get: (j) => lat(j)?.latencyBesideCompletions?.quiet.p99, fmt: f0 },
  {
    label: 'latency p99 ms, signal → submitOrder completed (Temporal)',
    get: (j) => lat(j)?.submitCompletedMs?.p99,
    fmt: f0,
  },
  { label: 'saturation: orders submitted /s, sustained', get: (j) => sat(j)?.rates?.ordersSubmitted.sustained },
  {
    label: 'saturation: submitOrder completed /s, sustained',
    get: (j) => sat(j)?.rates?.submitOrderCompleted?.sustained,
  },
  { label: 'saturation: trades completed /s, sustained', get: (j) => sat(j)?.rates?.tradesCompleted.sustained },
  { label: 'saturation: trades completed /s, overall', get: (j) => sat(j)?.rates?.tradesCompleted.overall },
  { label: 'saturation: workflow starts /s, sustained', get: (j) => sat(j)?.rates?.intakeStarts.sustained },
  { label: 'saturation latency p50 ms', get: (j) => sat(j)?.latencyMs.p50, fmt: f0 },
  { label: 'per trade: workflow tasks', get: (j) => (sat(j) ?? lat(j))?.perTrade.workflowTasks },
  {
    label: 'per trade: workflow task scheduling the order',
    get: (j) => (sat(j) ?? lat(j))?.perTrade.workflowTasksToOrder,
  },
  {
    label: 'per trade: matching dispatches before the order',
    get: (j) => (lat(j) ?? sat(j))?.perTrade.matchingDispatchesToOrder,
  },
  { label: 'per trade: history events', get: (j) => (sat(j) ?? lat(j))?.perTrade.historyEvents },
  { label: 'per trade: persistence calls', get: (j) => (sat(j) ?? lat(j))?.perTrade.persistenceCalls },
  {
    label: 'per trade: PostgreSQL round trips (trade worker)',
    get: (j) => (sat(j) ?? lat(j))?.perTrade.pgRoundTrips,
  },
  { label: 'PostgreSQL backends waiting for a lock, saturation', get: (j) => sat(j)?.pg.lockWaitMean },
  { label: 'per trade: CPU ms, saturation (pipeline + stack)', get: (j) => sat(j)?.perTrade.cpuMs, fmt: f0 },
  { label: 'per trade: CPU ms, latency phase', get: (j) => lat(j)?.perTrade.cpuMs, fmt: f0 },
  { label: '  of which Temporal server', get: (j) => (sat(j) ?? lat(j))?.cpuMsPerTrade.temporal, fmt: f0 },
  { label: '  of which trade-worker', get: (j) => (sat(j) ?? lat(j))?.cpuMsPerTrade['trade-worker'], fmt: f0 },
  { label: '  of which signal-intake', get: (j) => (sat(j) ?? lat(j))?.cpuMsPerTrade['signal-intake'], fmt: f1 },
  {
    label: 'Temporal server: threads waiting for a CPU, saturation',
    get: (j) => sat(j)?.runQueue?.temporal,
  },
  { label: 'Temporal server: cores used, saturation', get: (j) => sat(j)?.cpuCores.temporal, fmt: (n) => n.toFixed(2) },
  {
    label: 'others (CPU outside the run), saturation',
    get: (j) => (sat(j)?.cpuCores.others ?? NaN) * 100,
    fmt: (n) => `${f0(n)} %`,
  },
  { label: 'engine floor: one-activity workflows /s', get: (j) => j.floor?.burst.perS },
];

/** The figures as rows: label, first, second, second / first. */
export function sideBySideRows(a: BenchJson, b: BenchJson): string[][] {
  return FIGURES.map(({ label, get, fmt = f1 }) => {
    const va = get(a);
    const vb = get(b);
    const show = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : fmt(v));
    return [label, show(va), show(vb), x(ratio(va, vb))];
  });
}

/** Issue 12's targets against the baseline, as ratios current / baseline measured in the same run. */
export interface BaselineRatios {
  /** Pipeline and stack CPU per trade, saturation phase (the latency phase's when there is none). */
  cpuPerTrade: number;
  /** Orders submitted per second at saturation, sustained. */
  tradesPerS: number;
  /** p99 signal → order submitted in the latency phase (at --rate). */
  p99AtRate: number;
  workflowTasks: number;
  historyEvents: number;
  persistenceCalls: number;
}

export function baselineRatios(base: BenchJson, head: BenchJson): BaselineRatios {
  const counted = (j: BenchJson) => (sat(j) ?? lat(j))?.perTrade;
  return {
    cpuPerTrade: ratio(counted(base)?.cpuMs, counted(head)?.cpuMs),
    tradesPerS: ratio(sat(base)?.rates?.ordersSubmitted.sustained, sat(head)?.rates?.ordersSubmitted.sustained),
    p99AtRate: ratio(lat(base)?.latencyMs.p99, lat(head)?.latencyMs.p99),
    workflowTasks: ratio(counted(base)?.workflowTasks, counted(head)?.workflowTasks),
    historyEvents: ratio(counted(base)?.historyEvents, counted(head)?.historyEvents),
    persistenceCalls: ratio(counted(base)?.persistenceCalls, counted(head)?.persistenceCalls),
  };
}

/** A target, and whether a figure meets it ("–" when the figure is missing). */
export interface TargetCheck {
  figure: string;
  value: string;
  target: string;
  met: 'met' | 'NOT met' | '–';
}

const check = (figure: string, v: number, op: '≤' | '≥', target: number, fmt: (n: number) => string): TargetCheck => ({
  figure,
  value: Number.isFinite(v) ? fmt(v) : '–',
  target: `${op} ${fmt(target)}`,
  met: !Number.isFinite(v) ? '–' : (op === '≤' ? v <= target : v >= target) ? 'met' : 'NOT met',
});

/** Issue 12's targets for the current code: ratios to the baseline, counts, and ratios to the engine floor. */
export function issueTargets(base: BenchJson, head: BenchJson): TargetCheck[] {
  const r = baselineRatios(base, head);
  const counted = (sat(head) ?? lat(head))?.perTrade;
  const atRate = lat(head)?.perTrade ?? counted;
  const floorRate = ratio(head.floor?.burst.perS, sat(head)?.rates?.ordersSubmitted.sustained);
  const floorP99 = ratio(head.floor?.atRate.latencyMs.p99, lat(head)?.latencyMs.p99);
  return [
    check('CPU per trade / baseline', r.cpuPerTrade, '≤', 0.5, x),
    check('trades/s at saturation / baseline', r.tradesPerS, '≥', 2, x),
    check('p99 signal → order at --rate / baseline', r.p99AtRate, '≤', 0.4, x),
    check('workflow task that schedules the order', counted?.workflowTasksToOrder ?? NaN, '≤', 2, f1),
    check('matching dispatches before the order (at --rate)', atRate?.matchingDispatchesToOrder ?? NaN, '≤', 1, f1),
    check('persistence calls per trade', counted?.persistenceCalls ?? NaN, '≤', 35, f1),
    check('trades/s / one-activity workflows/s (floor)', floorRate, '≥', 0.6, x),
    check('p99 / one-activity p99 (floor)', floorP99, '≤', 2, x),
  ];
}

/** The `baseline ratio:` line: the issue's three ratio targets, current / baseline. */
export function baselineRatioLine(base: BenchJson, head: BenchJson, baseName: string): string {
  const r = baselineRatios(base, head);
  return (
    `baseline ratio: CPU per trade ${x(r.cpuPerTrade)}, trades/s at saturation ${x(r.tradesPerS)}, ` +
    `p99 at ${f1(head.options.rate)}/s ${x(r.p99AtRate)} (current / baseline ${baseName}, same run, same server)`
  );
}

/** How a pass timed "order submitted" (its JSON's orderTime; Temporal's submitOrder completion before it existed). */
const orderSource = (j: BenchJson) => j.orderTime?.source ?? 'submitOrder-completed';

/**
 * The line saying where both passes took "order submitted" from; a loud warning when they differ (one pass fell
 * back to Temporal's times), since the latency and orders/s ratios then compare different moments.
 */
export function orderSourceLine(base: BenchJson, head: BenchJson, names = ['baseline', 'current']): string {
  const name = (j: BenchJson) =>
    orderSource(j) === 'venue-stream'
      ? "the venue's trade_updates stream"
      : 'FALLBACK submitOrder completed (Temporal)';
  return orderSource(base) === orderSource(head)
    ? `order submitted timed by ${name(head)} in both passes`
    : `!!! order submitted timed DIFFERENTLY: ${names[0]} by ${name(base)}, ${names[1]} by ${name(head)}; ` +
        'the latency and orders/s ratios and targets compare different moments';
}

/** Baseline and current code side by side, the `baseline ratio:` lines and the issue's targets. */
export function formatBaselineComparison(base: BenchJson, head: BenchJson): string {
  const baseName = base.label?.replace(/^baseline /, '') ?? 'baseline';
  const r = baselineRatios(base, head);
  const loss = (j: BenchJson) =>
    `${j.loss.zeroLoss ? 'zero loss' : 'LOSS'} (${j.loss.published} published, ${j.loss.workflowsOnTaskQueue} workflows, ` +
    `${j.loss.ledgerFilled} filled, ${j.loss.venueOrdersFound} venue orders)` +
    (j.phases.every((p) => p.drained) ? '' : ', a phase DID NOT SETTLE');
  return [
    '',
    `══ bench:trades: baseline ${baseName} vs current code (same run, same server, same phases) ══`,
    `server: ${head.setup.temporal}`,
    `baseline: ${base.git}; JSON ${base.jsonPath}`,
    `current:  ${head.git}; JSON ${head.jsonPath}`,
    orderSourceLine(base, head),
    table(['', `baseline ${baseName}`, 'current', 'current / baseline'], sideBySideRows(base, head)),
    '',
    baselineRatioLine(base, head, baseName),
    `baseline ratio (counts): workflow tasks ${x(r.workflowTasks)}, history events ${x(r.historyEvents)}, ` +
      `persistence calls ${x(r.persistenceCalls)}`,
    '',
    table(
      ['issue 12 target (current code)', 'value', 'target', ''],
      issueTargets(base, head).map((t) => [t.figure, t.value, t.target, t.met]),
    ),
    ...(orderSource(base) === orderSource(head) ? [] : [orderSourceLine(base, head)]),
    `(p99 ratios mean something only where --rate is under the machine's capacity: compare the "others" row)`,
    `baseline: ${loss(base)}`,
    `current:  ${loss(head)}`,
    `load average before/after: baseline ${base.machine.loadBefore.map(f1).join(' ')} / ${base.machine.loadAfter
      .map(f1)
      .join(' ')}, current ${head.machine.loadBefore.map(f1).join(' ')} / ${head.machine.loadAfter.map(f1).join(' ')}`,
  ].join('\n');
}
