/** The load a run puts on the pipeline, phase by phase (warm-up, latency, saturation), and what it observes meanwhile. */
import { backendActivity, tradeProgress, type TradeProgress } from '../../adapters/postgres/benchmark-queries';
import type { ScratchDatabase } from '../../adapters/postgres/scratch-database';
import {
  MARKET_BARS_EXCHANGE,
  TRADE_SIGNALS_EXCHANGE,
  barRoutingKey,
  signalRoutingKey,
  type ConfirmPublisher,
} from '../../adapters/rabbitmq';
import type { Bar } from '../../contracts/bar';
import { barMessageId } from '../../contracts/ids';
import type { TradeSignalInput } from '../../contracts/signal';
import { tradeWorkflowId } from '../../contracts/trade-ids';
import { sleep } from '../../lib/sleep';
import { BENCH_APP_NAME, STRATEGY, SYMBOL } from './constants';
import { CpuSampler, type HotThread } from './cpu';
import type { TradeTimes } from './histories';
import type { BenchOptions } from './options';
import { f1 } from './stats';
import type { VenueSighting } from './venue-observer';
import { persistenceBetween, scrapeCounterSum, scrapePersistence, type PersistenceReport } from './temporal-metrics';

/** A phase that makes no progress at all for this long is given up (the services' logs say why). */
const STALL_MS = 30_000;

export interface SignalRecord {
  signalId: string;
  workflowId: string;
  phase: PhaseName;
  pubAt: number;
  confirmedAt?: number;
  publishError?: string;
  times?: TradeTimes;
  /** The first update of this trade's order on the venue's trade_updates stream (bench clock; venue-observer.ts). */
  venueSeen?: VenueSighting;
}

export type PhaseName = 'warmup' | 'latency' | 'saturation';

export interface PhaseResult {
  name: PhaseName;
  signals: number;
  firstPublish: number;
  lastConfirm: number;
  settledAt: number;
  drained: boolean;
  publishErrors: number;
  cpu: Record<string, number>;
  /** Threads of each process group ready to run but waiting for a CPU, on average (CpuSampler.runQueue). */
  runQueue: Record<string, number>;
  /** Busiest thread per Node service: over the phase, and the highest 2-second window. */
  hotThreads: Record<string, HotThread>;
  hotThreadsPeak: Record<string, HotThread>;
  pg: PgActivity;
  persistence: PersistenceReport | undefined;
  /** The trade workers' PostgreSQL round trips during the phase (sat_pg_round_trips_total); undefined if unread. */
  pgRoundTrips: number | undefined;
  wallS: number;
  progress: ProgressRow[];
}

/** The run's database backends, sampled every 250 ms: busy ones, and ones waiting for a lock. */
export interface PgActivity {
  samples: number;
  activeMean: number;
  lockWaitMean: number;
  lockWaitMax: number;
}

export interface ProgressRow {
  t: number;
  published: number;
  evaluated: number;
  submitted: number;
  settled: number;
  rejected: number;
  cpu: Record<string, number>;
}

/**
 * The load: benchmark signals (unique ids, alternating sides, distinct market times) published with confirms,
 * and a daily bar every --bar-interval-ms so the venue fills the orders and the trades settle. A phase publishes
 * its signals at a fixed rate or in a confirm-windowed burst, then waits until every trade settled, sampling
 * progress, CPU, database activity and the Temporal server's persistence work meanwhile.
 */
export class LoadGenerator {
  readonly records: SignalRecord[] = [];
  private seq = 0;
  private barDay = 0;
  private barTimer: NodeJS.Timeout | undefined;
  private barChain: Promise<void> = Promise.resolve();
  barsPublished = 0;

  constructor(
    readonly runId: string,
    readonly opts: BenchOptions,
    readonly db: ScratchDatabase,
    readonly publisher: ConfirmPublisher,
    readonly sampler: CpuSampler,
    readonly metricsUrl: string | undefined,
    readonly workerMetricsUrls: readonly string[] = [],
  ) {}

  newSignal(phase: PhaseName): { signal: TradeSignalInput; rec: SignalRecord } {
    const n = this.seq++;
    const signalId = `bench-${this.runId}-${phase[0]}${String(n).padStart(6, '0')}`;
    const signal: TradeSignalInput = {
      signal_id: signalId,
      correlation_id: `corr-${signalId}`,
      symbol: SYMBOL,
      side: n % 2 === 0 ? 'buy' : 'sell',
      price: 20,
      confidence: 0.9,
      strategy: STRATEGY,
      // Distinct market times, a minute apart (the duplicate-signal cooldown is also off in the children, since
      // concurrent evaluations may commit out of signal order).
      created_at: new Date(Date.UTC(2015, 0, 2, 14, 30) + n * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      order: { type: 'market', time_in_force: 'day', quantity_hint: 1 },
    };
    const rec: SignalRecord = { signalId, workflowId: tradeWorkflowId(signalId), phase, pubAt: NaN };
    this.records.push(rec);
    return { signal, rec };
  }

  publishSignal(signal: TradeSignalInput, rec: SignalRecord): Promise<void> {
    rec.pubAt = Date.now();
    return this.publisher
      .publishJson(TRADE_SIGNALS_EXCHANGE, signalRoutingKey(signal.strategy, signal.symbol), signal, {
        messageId: signal.signal_id,
        correlationId: signal.correlation_id,
      })
      .then(
        () => {
          rec.confirmedAt = Date.now();
        },
        (err: unknown) => {
          rec.publishError = err instanceof Error ? err.message : String(err);
        },
      );
  }

  /** One daily bar; the venue fills every open market order at the next bar's open. */
  publishBar(): Promise<void> {
    this.barDay++;
    const ts = new Date(Date.UTC(2015, 0, 1) + this.barDay * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const close = 20 + 0.05 * Math.sin(this.barDay / 5);
    const message_id = barMessageId('bench', SYMBOL, '1d', ts);
    const bar: Bar = {
      schema_version: 1,
      message_id,
      correlation_id: `corr-${message_id}`,
      source: 'bench',
      is_partial: false,
      interval: '1d',
      symbol: SYMBOL,
      timestamp: ts,
      open: close,
      high: close * 1.01,
      low: close * 0.99,
      close,
      volume: 50_000_000,
    };
    this.barsPublished++;
    return this.publisher.publishJson(MARKET_BARS_EXCHANGE, barRoutingKey('1d', SYMBOL), bar, {
      messageId: message_id,
      correlationId: bar.correlation_id,
    });
  }

  startBars(): void {
    if (this.barTimer) return;
    this.barTimer = setInterval(() => {
      // Bars in order: the venue refuses an older bar.
      this.barChain = this.barChain
        .then(() => this.publishBar())
        .catch((err: unknown) => {
          process.stderr.write(`bar publish failed: ${String(err)}\n`);
        });
    }, this.opts.barIntervalMs);
  }

  async stopBars(): Promise<void> {
    if (this.barTimer) clearInterval(this.barTimer);
    this.barTimer = undefined;
    await this.barChain;
  }

  counts(prefix: string): Promise<TradeProgress> {
    return tradeProgress(this.db.pool, prefix, tradeWorkflowId(prefix));
  }

  /** Publish a phase's signals (fixed rate, or a confirm-windowed burst), then wait until every trade settled. */
  async runPhase(name: PhaseName, n: number, mode: { rate: number } | { window: number }): Promise<PhaseResult> {
    const prefix = `bench-${this.runId}-${name[0]}`;
    const progress: ProgressRow[] = [];
    const persist0 = await scrapePersistence(this.metricsUrl);
    const roundTrips0 = await scrapeCounterSum(this.workerMetricsUrls, 'sat_pg_round_trips_total');
    const cpu0 = this.sampler.snapshot();
    let lastSnap = cpu0;
    const t0 = Date.now();
    let published = 0;
    let stopProgress = false;
    const label = name.padEnd(10);
    const hotPeak: Record<string, HotThread> = {};
    const pgActivity: PgActivity = { samples: 0, activeMean: 0, lockWaitMean: 0, lockWaitMax: 0 };
    const pgLoop = (async () => {
      let active = 0;
      let waits = 0;
      while (!stopProgress) {
        const r = await backendActivity(this.db.pool, this.db.name, BENCH_APP_NAME).catch(() => undefined);
        if (r) {
          pgActivity.samples++;
          active += r.active;
          waits += r.lockWaits;
          pgActivity.lockWaitMax = Math.max(pgActivity.lockWaitMax, r.lockWaits);
          pgActivity.activeMean = active / pgActivity.samples;
          pgActivity.lockWaitMean = waits / pgActivity.samples;
        }
        await sleep(250);
      }
    })();
    const progressLoop = (async () => {
      while (!stopProgress) {
        await sleep(2000);
        if (stopProgress) break;
        const c = await this.counts(prefix).catch(() => undefined);
        const snap = this.sampler.snapshot();
        const cpu = CpuSampler.between(lastSnap, snap);
        for (const [g, h] of Object.entries(CpuSampler.hottestThreads(lastSnap, snap))) {
          if (!hotPeak[g] || h.cores > hotPeak[g].cores) hotPeak[g] = h;
        }
        lastSnap = snap;
        if (!c) continue;
        const row: ProgressRow = { t: (Date.now() - t0) / 1000, published, ...c, cpu };
        progress.push(row);
        const cpuText = Object.entries(cpu)
          .filter(([k]) => k !== 'machine')
          .map(([k, v]) => `${k} ${Math.round(v * 100)}%`)
          .join(' ');
        process.stderr.write(
          `[${label}] ${f1(row.t).padStart(5)}s published ${published}/${n} risk ${c.evaluated} ` +
            `submitted ${c.submitted} settled ${c.settled}${c.rejected ? ` REJECTED ${c.rejected}` : ''} | cpu ${cpuText}\n`,
        );
      }
    })();

    this.startBars();
    const pending: Promise<void>[] = [];
    const inFlight = new Set<Promise<void>>();
    const startedAt = Date.now();
    for (let i = 0; i < n; i++) {
      const { signal, rec } = this.newSignal(name);
      if ('rate' in mode) {
        await sleep(startedAt + (i * 1000) / mode.rate - Date.now());
      } else {
        while (inFlight.size >= mode.window) await Promise.race(inFlight);
      }
      const p = this.publishSignal(signal, rec);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      pending.push(p);
      published++;
    }
    await Promise.all(pending);
    const recs = this.records.filter((r) => r.phase === name);
    const lastConfirm = Math.max(...recs.map((r) => r.confirmedAt ?? 0));
    const publishErrors = recs.filter((r) => r.publishError).length;
    const expected = n - publishErrors;

    // Settle: every trade finished (reservation released) or rejected.
    // Gives up at the drain timeout, or earlier when nothing moved for STALL_MS (e.g. failing workflow tasks).
    const deadline = Date.now() + this.opts.drainTimeoutS * 1000;
    let drained = false;
    let lastKey = '';
    let lastMove = Date.now();
    for (;;) {
      const c = await this.counts(prefix);
      if (c.settled + c.rejected >= expected) {
        drained = true;
        break;
      }
      const key = `${c.evaluated}/${c.submitted}/${c.settled}/${c.rejected}`;
      if (key !== lastKey) {
        lastKey = key;
        lastMove = Date.now();
      }
      if (Date.now() > deadline || Date.now() - lastMove > STALL_MS) {
        process.stderr.write(
          `[${label}] NOT SETTLED: ${key} (risk/submitted/settled/rejected) of ${expected}; see the service logs\n`,
        );
        break;
      }
      await sleep(100);
    }
    const settledAt = Date.now();
    stopProgress = true;
    await progressLoop;
    await pgLoop;
    await this.stopBars();
    const cpu1 = this.sampler.snapshot();
    const persist1 = await scrapePersistence(this.metricsUrl);
    const roundTrips1 = await scrapeCounterSum(this.workerMetricsUrls, 'sat_pg_round_trips_total');
    return {
      name,
      signals: n,
      firstPublish: Math.min(...recs.map((r) => r.pubAt)),
      lastConfirm,
      settledAt,
      drained,
      publishErrors,
      cpu: CpuSampler.between(cpu0, cpu1),
      runQueue: CpuSampler.runQueue(cpu0, cpu1),
      hotThreads: CpuSampler.hottestThreads(cpu0, cpu1),
      hotThreadsPeak: hotPeak,
      pg: pgActivity,
      persistence: persistenceBetween(persist0, persist1, (cpu1.at - cpu0.at) / 1000, n),
      pgRoundTrips: roundTrips0 !== undefined && roundTrips1 !== undefined ? roundTrips1 - roundTrips0 : undefined,
      wallS: (cpu1.at - cpu0.at) / 1000,
      progress,
    };
  }
}
