import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  analysePhase,
  chooseOrderTimeSource,
  compactRecords,
  latencyBesideCompletions,
  perTradeLine,
  type OrderTimeChoice,
} from '../../src/cli/bench/analysis';
import { formatBaselineComparison } from '../../src/cli/bench/comparison';
import { CpuSampler, findPidListeningOn, listeningInodes, type ProcSnapshot } from '../../src/cli/bench/cpu';
import { EV, tradeTimes, type HistoryEventLike, type TradeTimes } from '../../src/cli/bench/histories';
import type { PhaseResult, SignalRecord } from '../../src/cli/bench/load';
import { parseOptions, pollerShorthands, type BenchOptions } from '../../src/cli/bench/options';
import { formatReport, orderTimeLine, type BenchJson } from '../../src/cli/bench/report';
import { scrapeCounterSum } from '../../src/cli/bench/temporal-metrics';
import { dist, percentile, rates } from '../../src/cli/bench/stats';
import type { VenueStreamHealth } from '../../src/cli/bench/venue-observer';
import type { LossReport } from '../../src/cli/bench/zero-loss';
import { BENCH_MACHINE_AND_SETUP } from '../support/bench-json';

/**
 * The pure parts of `npm run bench:trades`: its flags (docs/benchmarks.md lists them), the statistics, a trade's
 * stages from its history, and the report lines the docs quote (`per trade:`, `floor ratio:`, `Zero loss:`).
 */

const opts = (argv: string[]) => parseOptions(argv) as BenchOptions;

describe('bench:trades options', () => {
  it('defaults as documented in --help', () => {
    expect(opts([])).toMatchObject({
      signals: 1000,
      rate: 10,
      warmup: 20,
      saturation: 600,
      window: 200,
      barIntervalMs: 500,
      drainTimeoutS: 120,
      intakes: 1,
      workers: 1,
      floor: 300,
      workerTuning: {},
      logLevel: 'info',
      keepDb: false,
    });
  });

  it('reads every flag, as `--flag value` or `--flag=value`', () => {
    const o = opts([
      '--signals=10',
      '--rate',
      '2.5',
      '--warmup',
      '0',
      '--saturation',
      '30',
      '--window=5',
      '--bar-interval-ms',
      '100',
      '--drain-timeout',
      '9',
      '--prefetch',
      '8',
      '--intake',
      'process',
      '--intakes',
      '2',
      '--workers',
      '3',
      '--worker-tuning',
      'maxCachedWorkflows=2000,enableNonLocalActivities=false,name=x',
      '--log-level',
      'warn',
      '--private-temporal',
      '',
      '--floor',
      '0',
      '--label',
      'quick',
      '--keep-db',
    ]);
    expect(o).toMatchObject({
      signals: 10,
      rate: 2.5,
      warmup: 0,
      saturation: 30,
      window: 5,
      barIntervalMs: 100,
      drainTimeoutS: 9,
      prefetch: 8,
      intake: 'process',
      intakes: 2,
      workers: 3,
      workerTuning: { maxCachedWorkflows: 2000, enableNonLocalActivities: false, name: 'x' },
      logLevel: 'warn',
      privateTemporal: '',
      floor: 0,
      label: 'quick',
      keepDb: true,
    });
  });

  it('help, and bad usage named', () => {
    expect(parseOptions(['-h'])).toEqual({ help: true });
    expect(parseOptions(['--help'])).toEqual({ help: true });
    expect(parseOptions(['--signals', '-1'])).toEqual({ error: '--signals needs an integer ≥ 0' });
    expect(parseOptions(['--window', '0'])).toEqual({ error: '--window needs an integer ≥ 1' });
    expect(parseOptions(['--rate', '0'])).toEqual({ error: '--rate needs a number in (0, 1000]' });
    expect(parseOptions(['--intake', 'both'])).toEqual({ error: '--intake needs worker|process' });
    expect(parseOptions(['--worker-tuning', 'a-b=1'])).toEqual({ error: '--worker-tuning: bad entry "a-b=1"' });
    expect(parseOptions(['--services-from', '/nonexistent'])).toHaveProperty('error');
    expect(parseOptions(['--signals', '0', '--saturation', '0'])).toEqual({
      error: 'nothing to do: --signals and --saturation are both 0',
    });
    expect(parseOptions(['--frobnicate'])).toEqual({ error: 'unknown argument --frobnicate' });
  });
});

describe('bench:trades statistics', () => {
  it('nearest-rank percentiles; NaN-free distributions', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect([percentile(s, 50), percentile(s, 95), percentile(s, 99), percentile(s, 100)]).toEqual([5, 10, 10, 10]);
    expect(dist([3, NaN, 1, 2])).toEqual({ n: 3, min: 1, p50: 2, p95: 3, p99: 3, max: 3, mean: 2 });
  });

  it('rates: overall from t0, sustained between the 10th and 90th percentile of completions', () => {
    // One completion every 100 ms from t0 + 100 ms: 10/s both ways.
    const times = Array.from({ length: 100 }, (_, i) => 1000 + (i + 1) * 100);
    const r = rates(times, 1000);
    expect(r.spanS).toBe(10);
    expect(r.overall).toBeCloseTo(10, 6);
    expect(r.sustained).toBeCloseTo(10, 6);
  });
});

/** A history event at `ms` past 1970 (the SDK's Long-like seconds are covered by the plain-number path). */
const ev = (
  eventId: number,
  eventType: number,
  ms: number,
  extra: Partial<HistoryEventLike> = {},
): HistoryEventLike => ({
  eventId,
  eventType,
  eventTime: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 },
  ...extra,
});

/** The shape of today's trade: eager start, risk as a local activity in task 1, submitOrder dispatched eagerly. */
function tradeHistory(t0: number): HistoryEventLike[] {
  return [
    ev(1, EV.WF_STARTED, t0),
    ev(2, EV.WFT_SCHEDULED, t0),
    ev(3, EV.WFT_STARTED, t0), // eager: 0 ms schedule-to-start
    ev(4, EV.WFT_COMPLETED, t0 + 20),
    ev(5, EV.MARKER_RECORDED, t0 + 20, { markerRecordedEventAttributes: { markerName: 'core_local_activity' } }),
    ev(6, EV.ACT_SCHEDULED, t0 + 20, {
      activityTaskScheduledEventAttributes: { activityType: { name: 'submitOrder' } },
    }),
    ev(7, EV.ACT_STARTED, t0 + 20, { activityTaskStartedEventAttributes: { scheduledEventId: 6 } }),
    ev(8, EV.ACT_COMPLETED, t0 + 70, { activityTaskCompletedEventAttributes: { scheduledEventId: 6 } }),
    ev(9, EV.WFT_SCHEDULED, t0 + 70),
    ev(10, EV.WFT_STARTED, t0 + 75), // through matching: 5 ms
    ev(11, EV.WFT_COMPLETED, t0 + 80),
    ev(12, EV.WF_COMPLETED, t0 + 80),
  ];
}

describe('bench:trades histories', () => {
  it("a trade's stages and counts from its history", () => {
    const t = tradeTimes(tradeHistory(1_000_000));
    expect(t).toMatchObject({
      wfStarted: 1_000_000,
      wft1Completed: 1_000_020,
      submitScheduled: 1_000_020,
      submitCompleted: 1_000_070,
      wfCompleted: 1_000_080,
      events: 12,
      wfts: 2,
      wftsToOrder: 1,
      dispatchesToOrder: 0,
      riskLocal: true,
    });
    // Risk ran inside workflow task 1: its activity stages are empty.
    expect(t.riskCompleted - t.riskScheduled).toBe(0);
  });
});

/** A phase of four signals published from 999,970 ms on, with what a test sets (CPU, run queue, figures) over it. */
function phaseOfFour(over: Partial<PhaseResult> & Pick<PhaseResult, 'name' | 'cpu' | 'wallS'>): PhaseResult {
  return {
    signals: 4,
    firstPublish: 999_970,
    lastConfirm: 1_000_275,
    settledAt: 1_001_000,
    drained: true,
    publishErrors: 0,
    runQueue: {},
    hotThreads: {},
    hotThreadsPeak: {},
    pg: { samples: 1, activeMean: 0, lockWaitMean: 0, lockWaitMax: 0 },
    persistence: undefined,
    pgRoundTrips: undefined,
    progress: [],
    ...over,
  };
}

describe('bench:trades report', () => {
  const records: SignalRecord[] = Array.from({ length: 4 }, (_, i) => ({
    signalId: `bench-x-s${i}`,
    workflowId: `trade-bench-x-s${i}`,
    phase: 'saturation',
    pubAt: 1_000_000 + i * 100 - 30,
    confirmedAt: 1_000_000 + i * 100 - 25,
    times: tradeTimes(tradeHistory(1_000_000 + i * 100)),
  }));
  const phase = phaseOfFour({
    name: 'saturation',
    cpu: { temporal: 0.5, 'trade-worker': 0.25, bench: 0.1, machine: 1, others: 0.15 },
    runQueue: { temporal: 2.25, 'trade-worker': 0.5, bench: 0 },
    persistence: { busyPerSecond: 0.5, callsPerTrade: 30, msPerTrade: 100, top: [] },
    pgRoundTrips: 26,
    wallS: 2,
  });
  const report = analysePhase(phase, records, true, 'submitOrder-completed');

  it('the `per trade:` line: machine-independent counts and the pipeline CPU without the bench', () => {
    // CPU: (0.5 + 0.25) cores × 2 s / 4 trades = 375 ms (the bench's 0.1 core is left out).
    expect(perTradeLine(report.perTrade)).toBe(
      'per trade: 2.0 workflow tasks, 0.0 matching dispatches before the order, 12.0 history events, ' +
        '30.0 persistence calls, 375 ms CPU',
    );
    expect(report.latencyMs).toMatchObject({ n: 4, p50: 100, max: 100 }); // publish → submitOrder completed
  });

  it('prints the lines docs/benchmarks.md quotes', () => {
    const loss = { zeroLoss: true, published: 4, publishErrors: 0, ledgerNotFilled: {} } as unknown as LossReport;
    const json: BenchJson = {
      startedAt: '2026-11-29T00:00:00.000Z',
      git: 'abc1234',
      command: 'npm run bench:trades',
      jsonPath: 'bench-results/trades-x.json',
      options: opts(['--saturation', '4', '--signals', '4']),
      ...BENCH_MACHINE_AND_SETUP,
      phases: [analysePhase({ ...phase, name: 'latency' }, records, false, 'submitOrder-completed'), report],
      loss,
      floor: { burst: { n: 10, perS: 20 }, atRate: { n: 4, rate: 10, latencyMs: dist([40, 50]) } },
      barsPublished: 3,
      totalS: 5,
    };
    const text = formatReport(json);
    expect(text).toContain('per trade: 2.0 workflow tasks,');
    // The trade worker's own count of PostgreSQL round trips, per trade of the phase (26 over 4 signals).
    expect(text).toContain('PostgreSQL round trips per trade (trade worker): 6.5 (latency phase 6.5)');
    // Trades/s sustained over the floor's burst rate; the latency phase's p99 (100 ms) over the floor's (50 ms).
    const sustained = report.rates!.ordersSubmitted.sustained;
    expect(text).toContain(
      `floor ratio: trades/s ${(sustained / 20).toFixed(2)}x one-activity workflows/s, p99 2.0x one-activity p99`,
    );
    expect(text).toMatch(/^Zero loss: YES — published 4 \(0 publish errors\)/m);
    expect(text).toContain('Saturation phase: 4 signals in one burst');
    // Cores used beside threads left waiting for a CPU (the bench's idle group is left out).
    expect(text).toContain(
      'saturation: threads waiting for a CPU (run queue) beside the cores used: temporal 0.5 cores running, ' +
        '2.3 waiting; trade-worker 0.3 cores running, 0.5 waiting; bench 0.1 cores running, 0.0 waiting',
    );
  });

  it('per-signal times in the JSON include workflow task 1, so trades in flight per stage can be counted', () => {
    const [first] = compactRecords(records) as Array<Record<string, number>>;
    // tradeHistory(t0): started at t0, WFT 1 started eagerly at t0 and completed at +20 ms; published 30 ms before.
    expect(first).toMatchObject({ wfStarted: 30, wft1Started: 30, wft1Completed: 50 });
  });
});

describe("bench:trades latency beside other trades' completions", () => {
  // A: published at 0, its order on the venue at +40, its submitOrder completed (the fill booked) at 500.
  // B: published at 480, its order at 530: A completed on its way. C: published at 600, its order at 630: none did.
  const trade = (id: string, pubAt: number, seen: number, completed: number): SignalRecord => ({
    signalId: id,
    workflowId: `trade-${id}`,
    phase: 'latency',
    pubAt,
    times: { submitCompleted: completed } as TradeTimes,
    venueSeen: { at: seen, event: 'new' },
  });
  const recs = [trade('a', 0, 40, 500), trade('b', 480, 530, 900), trade('c', 600, 630, 1000)];

  it('splits signal → order by whether another trade completed meanwhile', () => {
    const split = latencyBesideCompletions(recs, 'venue-stream');
    expect(split.besideCompletions).toMatchObject({ n: 1, p50: 50 });
    expect(split.quiet).toMatchObject({ n: 2, min: 30, max: 40 });
  });

  it("a trade's own completion never counts, also when it is the order time (the Temporal fallback)", () => {
    // Order time = submitOrder completed: A [0, 500] holds only its own; B [480, 900] holds A's; C [600, 1000] B's.
    const split = latencyBesideCompletions(recs, 'submitOrder-completed');
    expect(split.quiet).toMatchObject({ n: 1, p50: 500 });
    expect(split.besideCompletions).toMatchObject({ n: 2, min: 400, max: 420 });
  });

  it('the phase report prints both under the headline latency', () => {
    const phase = phaseOfFour({ name: 'latency', cpu: { temporal: 0.5, machine: 1, others: 0 }, wallS: 1 });
    const report = analysePhase(phase, recs, false, 'venue-stream');
    expect(report.latencyBesideCompletions?.besideCompletions.n).toBe(1);
    const text = formatReport({
      startedAt: '2026-11-30T00:00:00.000Z',
      git: 'abc1234',
      command: 'npm run bench:trades',
      jsonPath: 'bench-results/trades-x.json',
      options: opts(['--signals', '3', '--saturation', '0']),
      ...BENCH_MACHINE_AND_SETUP,
      phases: [report],
      loss: { zeroLoss: true, published: 3, publishErrors: 0, ledgerNotFilled: {} } as unknown as LossReport,
      barsPublished: 1,
      totalS: 2,
    });
    expect(text).toMatch(/^ {2}while other trades completed \(n=1\) +50 +50 +50 +50$/m);
    expect(text).toMatch(/^ {2}while none did \(n=2\) +30 +40 +40 +40$/m);
  });
});

describe('bench:trades order time: the venue stream, Temporal beside it, a loud fallback', () => {
  // Four trades 100 ms apart, published 30 ms before their workflow starts; submitOrder completes at +70 ms
  // (Temporal) and the bench saw the order's `new` on the venue's stream at +62 ms.
  const seenAt = (i: number) => 1_000_000 + i * 100 + 62;
  const recs = (): SignalRecord[] =>
    Array.from({ length: 4 }, (_, i) => ({
      signalId: `bench-y-l${i}`,
      workflowId: `trade-bench-y-l${i}`,
      phase: 'latency' as const,
      pubAt: 1_000_000 + i * 100 - 30,
      confirmedAt: 1_000_000 + i * 100 - 25,
      times: tradeTimes(tradeHistory(1_000_000 + i * 100)),
      venueSeen: { at: seenAt(i), event: 'new' as const },
    }));
  const listening: VenueStreamHealth = { ready: true, drops: 0, ordersSeen: 4, updates: 8 };
  const phase = phaseOfFour({ name: 'latency', cpu: { temporal: 0.5, machine: 1, others: 0 }, wallS: 1 });
  const pass = (records: SignalRecord[], orderTime: OrderTimeChoice, role: 'baseline' | 'current'): BenchJson => ({
    role,
    startedAt: '2026-11-30T00:00:00.000Z',
    git: 'abc1234',
    command: 'npm run bench:trades',
    jsonPath: `bench-results/trades-${role}.json`,
    options: opts(['--signals', '4', '--saturation', '4']),
    ...BENCH_MACHINE_AND_SETUP,
    orderTime,
    phases: [
      analysePhase(phase, records, false, orderTime.source),
      analysePhase({ ...phase, name: 'saturation' }, records, true, orderTime.source),
    ],
    loss: { zeroLoss: true, published: 4, publishErrors: 0, ledgerNotFilled: {} } as unknown as LossReport,
    barsPublished: 3,
    totalS: 5,
  });

  it('uses the stream when it listened throughout and showed every order', () => {
    expect(chooseOrderTimeSource(recs(), listening)).toEqual({
      source: 'venue-stream',
      stream: listening,
      orders: 4,
      ordersSeen: 4,
      firstSeenNotNew: 0,
    });
    // An order first seen by a later event (e.g. filled at once) keeps the stream, and is counted.
    const r = recs();
    r[1]!.venueSeen = { at: seenAt(1), event: 'fill' };
    expect(chooseOrderTimeSource(r, listening)).toMatchObject({ source: 'venue-stream', firstSeenNotNew: 1 });
  });

  it('any gap in the stream makes the whole pass fall back to submitOrder completed, with the reason', () => {
    const missing = recs();
    delete missing[2]!.venueSeen;
    expect(chooseOrderTimeSource(missing, listening)).toMatchObject({
      source: 'submitOrder-completed',
      fallbackReason: "1 of 4 orders never showed on the venue's trade_updates stream",
      orders: 4,
      ordersSeen: 3,
    });
    expect(chooseOrderTimeSource(recs(), { ...listening, drops: 2 })).toMatchObject({
      source: 'submitOrder-completed',
      fallbackReason: "the venue's trade_updates stream dropped 2 time(s) during the pass: updates may be missing",
    });
    const notUp: VenueStreamHealth = {
      ready: false,
      error: 'not listening after 15000 ms',
      drops: 0,
      ordersSeen: 0,
      updates: 0,
    };
    expect(chooseOrderTimeSource(recs(), notUp)).toMatchObject({
      source: 'submitOrder-completed',
      fallbackReason: 'not listening after 15000 ms',
    });
  });

  it('the headline latency and orders/s from the venue, signal → submitOrder completed beside them', () => {
    const r = analysePhase({ ...phase, name: 'saturation' }, recs(), true, 'venue-stream');
    expect(r.orderTimeSource).toBe('venue-stream');
    expect(r.latencyMs).toMatchObject({ n: 4, p50: 92, max: 92 }); // publish (−30) → seen on the stream (+62)
    expect(r.submitCompletedMs).toMatchObject({ n: 4, p50: 100, max: 100 }); // → ActivityTaskCompleted (+70)
    expect(r.venueToSubmitCompletedMs).toMatchObject({ n: 4, p50: 8 });
    // Orders per second from the first publish (999 970) to the last sighting (1 000 362) or completion (1 000 370).
    expect(r.rates!.ordersSubmitted.spanS).toBeCloseTo(0.392, 9);
    expect(r.rates!.ordersSubmitted.overall).toBeCloseTo(4 / 0.392, 9);
    expect(r.rates!.submitOrderCompleted!.spanS).toBeCloseTo(0.4, 9);
    // The fallback never takes a venue time, even where one exists.
    const fb = analysePhase({ ...phase, name: 'saturation' }, recs(), true, 'submitOrder-completed');
    expect(fb.latencyMs).toMatchObject({ n: 4, p50: 100 });
    expect(fb.rates!.ordersSubmitted.spanS).toBeCloseTo(0.4, 9);
  });

  it('the report names the source; a fallback is shouted in the report and the comparison', () => {
    const records = recs();
    const viaStream = pass(records, chooseOrderTimeSource(records, listening), 'current');
    const text = formatReport(viaStream);
    expect(text).toContain(
      "order submitted = first update of the order on the venue's trade_updates stream, bench clock " +
        '(4 of 4 orders seen on the stream, 0 drops)',
    );
    expect(text).toMatch(/^signal → order submitted \(seen on the venue's trade_updates stream\) +92 +92 +92 +92$/m);
    expect(text).toMatch(/^signal → submitOrder completed \(Temporal\), the sum of: +100 +100 +100 +100$/m);
    expect(text).toMatch(/^order at the venue \(stream\) → submitOrder completed \(Temporal\) +8 +8 +8 +8$/m);
    expect(text).toContain('submitOrder run (venue HTTP, ledger, and the wait for the fill where the code waits)');
    expect(text).not.toContain('FALLBACK');

    const fellBack = pass(records, chooseOrderTimeSource(records, { ...listening, drops: 1 }), 'baseline');
    expect(orderTimeLine(fellBack)).toMatch(/^!!! FALLBACK: order submitted = submitOrder completed \(Temporal\)/);
    const fbText = formatReport(fellBack);
    expect(fbText).toMatch(/signal → order submitted at 10\.0\/s \(n=4\) \[FALLBACK: submitOrder completed\]/);
    expect(fbText).toMatch(/^signal → order submitted \(FALLBACK: = submitOrder completed;.* +100 +100 +100 +100$/m);

    expect(formatBaselineComparison({ ...viaStream, role: 'baseline' }, viaStream)).toContain(
      "order submitted timed by the venue's trade_updates stream in both passes",
    );
    expect(formatBaselineComparison(fellBack, viaStream)).toContain(
      '!!! order submitted timed DIFFERENTLY: baseline by FALLBACK submitOrder completed (Temporal), ' +
        "current by the venue's trade_updates stream",
    );
  });

  it("per-signal times in the JSON carry the venue's sighting", () => {
    const [first] = compactRecords(recs()) as Array<Record<string, unknown>>;
    expect(first).toMatchObject({ venueSeen: 92, venueFirstEvent: 'new', submitCompleted: 100 });
  });
});

describe('bench:trades CPU sampling', () => {
  const snap = (at: number, runQueueNs: Record<string, number>): ProcSnapshot => ({
    at,
    machineBusy: 0,
    machineTotal: 0,
    groups: {},
    threads: {},
    runQueueNs,
  });
  it('run queue: ns waited per ns of wall time = threads ready to run but waiting, never below zero', () => {
    // 2 s apart: 4.5 s of waiting over the group's threads = 2.25 threads on average; a member that exited
    // (counts went down) shows 0, not a negative number.
    expect(
      CpuSampler.runQueue(snap(0, { temporal: 1e9, worker: 5e9 }), snap(2000, { temporal: 5.5e9, worker: 1e9 })),
    ).toEqual({ temporal: 2.25, worker: 0 });
  });
  it('the stack server by its port: listening sockets from /proc/net/tcp, and the process holding one', async () => {
    const table =
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n' +
      '   0: 0100007F:1628 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 31337 1 0\n' +
      '   1: 0100007F:1628 0100007F:C350 01 00000000:00000000 00:00000000 00000000   106        0 4242 1 0\n' +
      '   2: 0100007F:1629 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 777 1 0\n';
    // 0x1628 = 5672: only the LISTEN row (0A), not the established connection to it, nor another port.
    expect(listeningInodes(table, 5672)).toEqual(['31337']);
    expect(listeningInodes(table, 5432)).toEqual([]);
    const srv = http.createServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
      expect(findPidListeningOn((srv.address() as AddressInfo).port)).toBe(process.pid);
    } finally {
      srv.close();
    }
  });
  it('reads schedstat of this process: its own group has a run-queue count', () => {
    const s = new CpuSampler([{ name: 'self', roots: () => [process.pid] }]).snapshot();
    expect(Number.isFinite(s.runQueueNs.self)).toBe(true);
  });
});

describe('bench:trades worker tuning', () => {
  it('poller counts become the SDK poller behaviors; other options pass through', () => {
    expect(pollerShorthands({ workflowTaskPollers: 20, activityTaskPollers: 4, maxCachedWorkflows: 500 })).toEqual({
      maxCachedWorkflows: 500,
      workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: 20 },
      activityTaskPollerBehavior: { type: 'simple-maximum', maximum: 4 },
    });
    expect(pollerShorthands({ nonStickyToStickyPollRatio: 0.5 })).toEqual({ nonStickyToStickyPollRatio: 0.5 });
  });
});

describe('bench:trades worker counters', () => {
  it('sums a counter over every label set and every worker; undefined when a worker lacks it', async () => {
    const bodies = [
      '# TYPE sat_pg_round_trips_total counter\nsat_pg_round_trips_total{service="trade-worker"} 40\n' +
        'sat_pg_round_trips_total_other 7\n',
      'sat_pg_round_trips_total 2\n',
      'process_cpu_seconds_total 1\n',
    ];
    const servers = await Promise.all(
      bodies.map(
        (body) =>
          new Promise<http.Server>((resolve) => {
            const srv = http.createServer((_req, res) => res.end(body));
            srv.listen(0, '127.0.0.1', () => resolve(srv));
          }),
      ),
    );
    const urls = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/metrics`);
    try {
      expect(await scrapeCounterSum(urls.slice(0, 2), 'sat_pg_round_trips_total')).toBe(42);
      expect(await scrapeCounterSum(urls, 'sat_pg_round_trips_total')).toBeUndefined();
      expect(await scrapeCounterSum([], 'sat_pg_round_trips_total')).toBeUndefined();
    } finally {
      for (const s of servers) s.close();
    }
  });
});
