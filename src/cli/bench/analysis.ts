/** From a phase's raw results and its trades' histories to the figures the report shows (pure). */
import type { HotThread } from './cpu';
import { STAGES } from './histories';
import type { PgActivity, PhaseName, PhaseResult, ProgressRow, SignalRecord } from './load';
import { dist, f0, f1, mean, rates, type Dist } from './stats';
import type { PersistenceReport } from './temporal-metrics';
import type { VenueStreamHealth } from './venue-observer';

/**
 * Where a pass's "order submitted" time comes from: the venue's own trade_updates stream as the bench saw it
 * (venue-observer.ts; the same for every code measured), or, when that stream could not be used in the pass, the
 * server's ActivityTaskCompleted of submitOrder (which is "order submitted" only for code whose submitOrder ends at
 * the broker's acceptance). One source per pass, never mixed within it.
 */
export type OrderTimeSource = 'venue-stream' | 'submitOrder-completed';

/** The pass's choice of source, and the evidence for it (printed, and in the JSON). */
export interface OrderTimeChoice {
  source: OrderTimeSource;
  /** Why the pass fell back to submitOrder completed (absent when the stream was used). */
  fallbackReason?: string;
  stream: VenueStreamHealth;
  /** Trades whose submitOrder completed (they have an order), and how many of those the stream showed. */
  orders: number;
  ordersSeen: number;
  /** Orders whose first update on the stream was not `new` (e.g. filled at once); their time is that update's. */
  firstSeenNotNew: number;
}

/**
 * The stream is used only when it was listening before the first signal, never dropped during the pass, and
 * showed every order: a missed `new` would turn that order's time into a later event's, so a pass with any gap
 * falls back as a whole.
 */
export function chooseOrderTimeSource(recs: readonly SignalRecord[], stream: VenueStreamHealth): OrderTimeChoice {
  const orders = recs.filter((r) => !r.publishError && Number.isFinite(r.times?.submitCompleted ?? NaN));
  const seen = orders.filter((r) => r.venueSeen);
  const base = {
    stream,
    orders: orders.length,
    ordersSeen: seen.length,
    firstSeenNotNew: seen.filter((r) => r.venueSeen!.event !== 'new').length,
  };
  const fallbackReason = !stream.ready
    ? (stream.error ?? "the venue's trade_updates stream was not listening")
    : stream.drops > 0
      ? `the venue's trade_updates stream dropped ${stream.drops} time(s) during the pass: updates may be missing`
      : seen.length < orders.length
        ? `${orders.length - seen.length} of ${orders.length} orders never showed on the venue's trade_updates stream`
        : undefined;
  return fallbackReason
    ? { source: 'submitOrder-completed', fallbackReason, ...base }
    : { source: 'venue-stream', ...base };
}

/** A signal's "order submitted" time (ms since the epoch, NaN when unknown) from the pass's source. */
export function orderSubmittedAt(r: SignalRecord, source: OrderTimeSource): number {
  return source === 'venue-stream' ? (r.venueSeen?.at ?? NaN) : (r.times?.submitCompleted ?? NaN);
}

export interface PhaseReport {
  name: PhaseName;
  signals: number;
  publishErrors: number;
  drained: boolean;
  /** Where `latencyMs` and `rates.ordersSubmitted` take "order submitted" from (absent in older JSON: Temporal). */
  orderTimeSource?: OrderTimeSource;
  /** Signal → order submitted: the headline latency, from `orderTimeSource`. */
  latencyMs: Dist;
  /** Signal → submitOrder's ActivityTaskCompleted (Temporal), whatever the source; the stages add up to it. */
  submitCompletedMs?: Dist;
  /** Order at the venue (stream) → submitOrder completed (Temporal): what submitOrder does after the acceptance. */
  venueToSubmitCompletedMs?: Dist;
  publishConfirmMs: Dist;
  stagesMs: Record<string, Dist>;
  /** `latencyMs` split by whether other trades completed on the way (absent in JSON files written before it). */
  latencyBesideCompletions?: LatencyBesideCompletions;
  rates?: {
    publishPerS: number;
    intakeStarts: { overall: number; sustained: number };
    /** Orders submitted per second, from `orderTimeSource`. */
    ordersSubmitted: { overall: number; sustained: number; spanS: number };
    /** submitOrder activities completed per second (Temporal), whatever the source. */
    submitOrderCompleted?: { overall: number; sustained: number; spanS: number };
    tradesCompleted: { overall: number; sustained: number; spanS: number };
  };
  cpuCores: Record<string, number>;
  /**
   * Threads of each process group ready to run but left waiting for a CPU, on average over the phase (absent in
   * JSON files written before it was measured).
   */
  runQueue?: Record<string, number>;
  /** CPU milliseconds per signal of this phase, per process group. */
  cpuMsPerTrade: Record<string, number>;
  hotThreads: Record<string, HotThread>;
  hotThreadsPeak: Record<string, HotThread>;
  pg: PgActivity;
  persistence: PersistenceReport | undefined;
  wallS: number;
  progress: ProgressRow[];
  /** Machine-independent counts per trade, means over the phase's trades (histories and server metrics). */
  perTrade: PerTradeCounts;
}

export interface PerTradeCounts {
  workflowTasks: number;
  workflowTasksToOrder: number;
  matchingDispatchesToOrder: number;
  historyEvents: number;
  persistenceCalls: number;
  /** The trade worker's PostgreSQL round trips (sat_pg_round_trips_total; NaN for code without the counter). */
  pgRoundTrips: number;
  /** Pipeline and stack CPU (Temporal, worker, intake, venue, PostgreSQL, RabbitMQ; not the bench). */
  cpuMs: number;
}

/**
 * Signal → order submitted, split by what else the pipeline did meanwhile: `besideCompletions` are the signals
 * during whose way to the broker another trade of the phase completed its submitOrder (its fill booked, its
 * workflow closing next), `quiet` the rest. The simulated venue fills the orders of a bar together, so completions
 * come in bursts that share the machine's two cores with the signals arriving then; the split shows how much of
 * the tail that is (docs/benchmarks.md).
 */
export interface LatencyBesideCompletions {
  quiet: Dist;
  besideCompletions: Dist;
}

export function latencyBesideCompletions(
  recs: readonly SignalRecord[],
  source: OrderTimeSource,
): LatencyBesideCompletions {
  const completions = recs
    .map((r) => r.times?.submitCompleted ?? NaN)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  // How many completions are in [from, to]: binary searches on the sorted times. `countUpTo(p)` is the length of
  // the prefix where p holds (p holds for every time up to some point, and for none after it).
  const countUpTo = (p: (t: number) => boolean) => {
    let lo = 0;
    let hi = completions.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (p(completions[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const completionsIn = (from: number, to: number) => countUpTo((t) => t <= to) - countUpTo((t) => t < from);
  const quiet: number[] = [];
  const beside: number[] = [];
  for (const r of recs) {
    const orderAt = orderSubmittedAt(r, source);
    if (!Number.isFinite(orderAt)) continue;
    const own = r.times?.submitCompleted ?? NaN;
    // Its own completion does not count (it is the order time itself when the source is submitOrder completed).
    const others = completionsIn(r.pubAt, orderAt) - (own >= r.pubAt && own <= orderAt ? 1 : 0);
    (others > 0 ? beside : quiet).push(orderAt - r.pubAt);
  }
  return { quiet: dist(quiet), besideCompletions: dist(beside) };
}

/** The `per trade:` line (issue 12). */
export function perTradeLine(c: PerTradeCounts): string {
  return (
    `per trade: ${f1(c.workflowTasks)} workflow tasks, ${f1(c.matchingDispatchesToOrder)} matching dispatches before ` +
    `the order, ${f1(c.historyEvents)} history events, ${f1(c.persistenceCalls)} persistence calls, ${f0(c.cpuMs)} ms CPU`
  );
}

export function analysePhase(
  res: PhaseResult,
  recs: SignalRecord[],
  withRates: boolean,
  source: OrderTimeSource,
): PhaseReport {
  const ok = recs.filter((r) => r.times && Number.isFinite(r.times.submitCompleted));
  const stagesMs: Record<string, Dist> = {};
  for (const s of STAGES) stagesMs[s.key] = dist(ok.map((r) => s.of(r.pubAt, r.times!)));
  const ordered = recs.map((r) => orderSubmittedAt(r, source)).filter(Number.isFinite);
  const report: PhaseReport = {
    name: res.name,
    signals: res.signals,
    publishErrors: res.publishErrors,
    drained: res.drained,
    orderTimeSource: source,
    latencyMs: dist(recs.map((r) => orderSubmittedAt(r, source) - r.pubAt)),
    latencyBesideCompletions: latencyBesideCompletions(recs, source),
    submitCompletedMs: dist(ok.map((r) => r.times!.submitCompleted - r.pubAt)),
    venueToSubmitCompletedMs: dist(ok.map((r) => r.times!.submitCompleted - (r.venueSeen?.at ?? NaN))),
    publishConfirmMs: dist(recs.map((r) => (r.confirmedAt ?? NaN) - r.pubAt)),
    stagesMs,
    cpuCores: res.cpu,
    runQueue: res.runQueue,
    cpuMsPerTrade: Object.fromEntries(
      Object.entries(res.cpu)
        .filter(([k]) => k !== 'machine' && k !== 'others')
        .map(([k, v]) => [k, (v * res.wallS * 1000) / Math.max(1, res.signals)]),
    ),
    hotThreads: res.hotThreads,
    hotThreadsPeak: res.hotThreadsPeak,
    pg: res.pg,
    persistence: res.persistence,
    wallS: res.wallS,
    progress: res.progress,
    perTrade: {
      workflowTasks: mean(ok.map((r) => r.times!.wfts)),
      workflowTasksToOrder: mean(ok.map((r) => r.times!.wftsToOrder)),
      matchingDispatchesToOrder: mean(ok.map((r) => r.times!.dispatchesToOrder)),
      historyEvents: mean(ok.map((r) => r.times!.events)),
      persistenceCalls: res.persistence?.callsPerTrade ?? NaN,
      pgRoundTrips: res.pgRoundTrips === undefined ? NaN : res.pgRoundTrips / Math.max(1, res.signals),
      cpuMs: 0,
    },
  };
  report.perTrade.cpuMs = Object.entries(report.cpuMsPerTrade).reduce((a, [k, v]) => a + (k === 'bench' ? 0 : v), 0);
  if (withRates) {
    const t0 = res.firstPublish;
    const started = rates(recs.map((r) => r.times?.wfStarted ?? NaN).filter(Number.isFinite), t0);
    report.rates = {
      publishPerS: recs.length / Math.max(0.001, (res.lastConfirm - t0) / 1000),
      intakeStarts: { overall: started.overall, sustained: started.sustained },
      ordersSubmitted: rates(ordered, t0),
      submitOrderCompleted: rates(
        ok.map((r) => r.times!.submitCompleted),
        t0,
      ),
      tradesCompleted: rates(recs.map((r) => r.times?.wfCompleted ?? NaN).filter(Number.isFinite), t0),
    };
  }
  return report;
}

/** Per-signal times for the JSON file (ms, relative to the signal's publish). */
export function compactRecords(recs: SignalRecord[]): unknown[] {
  return recs.map((r) => {
    const rel = (v: number | undefined) =>
      v === undefined || !Number.isFinite(v) ? null : Math.round((v - r.pubAt) * 10) / 10;
    return {
      id: r.signalId,
      phase: r.phase,
      pubAt: r.pubAt,
      confirm: rel(r.confirmedAt),
      ...(r.publishError ? { publishError: r.publishError } : {}),
      ...(r.times
        ? {
            wfStarted: rel(r.times.wfStarted),
            wft1Started: rel(r.times.wft1Started),
            wft1Completed: rel(r.times.wft1Completed),
            riskCompleted: rel(r.times.riskCompleted),
            submitCompleted: rel(r.times.submitCompleted),
            wfCompleted: rel(r.times.wfCompleted),
          }
        : {}),
      ...(r.venueSeen ? { venueSeen: rel(r.venueSeen.at), venueFirstEvent: r.venueSeen.event } : {}),
    };
  });
}
