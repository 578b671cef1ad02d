/** The run's report: the JSON file's shape and the text printed at the end (figures only, never assertions). */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { OrderTimeChoice, PhaseReport } from './analysis';
import { perTradeLine } from './analysis';
import { ROOT } from './constants';
import type { FloorReport } from './floor';
import { STAGES } from './histories';
import type { BenchOptions } from './options';
import { f0, f1, table, type Dist } from './stats';
import type { LossReport } from './zero-loss';

export function formatReport(j: BenchJson): string {
  const out: string[] = [];
  const ms = (d: Dist) => [f0(d.p50), f0(d.p95), f0(d.p99), f0(d.max)];
  out.push('');
  out.push(
    `StockAutoTrader trade pipeline benchmark${j.label ? ` — ${j.label}` : ''}  (${j.startedAt}, code ${j.git})`,
  );
  out.push(
    `machine: ${j.machine.cores} cores (${j.machine.cpuModel}), load average before ${j.machine.loadBefore.map(f1).join(' ')}, ` +
      `node ${j.machine.node}`,
  );
  out.push(
    `stack: Temporal ${j.setup.temporal}, RabbitMQ vhost ${j.setup.vhost}, PostgreSQL database ${j.setup.database}, ` +
      `task queue ${j.setup.taskQueue}`,
  );
  out.push(
    `services: ${j.setup.workers} trade-worker, ${
      j.setup.intakeInWorker ? 'intake inside the worker (eager start)' : `${j.setup.intakes} signal-intake`
    } (prefetch ${j.setup.prefetch}), exchange-sim; ` +
      `LOG_LEVEL ${j.setup.logLevel}; bar every ${j.setup.barIntervalMs} ms; worker tuning: ${
        Object.keys(j.setup.workerTuning).length ? JSON.stringify(j.setup.workerTuning) : 'product defaults'
      }`,
  );
  out.push('');

  out.push(orderTimeLine(j));
  out.push('');

  const lat = j.phases.find((p) => p.name === 'latency');
  const sat = j.phases.find((p) => p.name === 'saturation');
  const fallback = j.orderTime?.source === 'submitOrder-completed' ? ' [FALLBACK: submitOrder completed]' : '';
  const headline: string[][] = [];
  if (lat) {
    headline.push([
      `signal → order submitted at ${f1(j.options.rate)}/s (n=${lat.latencyMs.n})${fallback}`,
      `p50 ${f0(lat.latencyMs.p50)} ms  p95 ${f0(lat.latencyMs.p95)} ms  p99 ${f0(lat.latencyMs.p99)} ms`,
      'p99 ≤ 250 ms',
      lat.latencyMs.p99 <= 250 ? 'met' : 'NOT met',
    ]);
  }
  if (sat?.rates) {
    headline.push([
      `trades/s at saturation (n=${sat.signals}), orders submitted${fallback}`,
      `${f1(sat.rates.ordersSubmitted.sustained)} sustained, ${f1(sat.rates.ordersSubmitted.overall)} overall`,
      '≥ 30 trades/s',
      sat.rates.ordersSubmitted.sustained >= 30 ? 'met' : 'NOT met',
    ]);
    if (sat.signals < 300)
      headline.push(['  (fewer than 300 signals: no steady state, rates are indicative only)', '', '', '']);
  }
  headline.push([
    'zero loss (every signal: 1 workflow, 1 FILLED trade, 1 venue order)',
    j.loss.zeroLoss ? 'yes' : 'NO',
    '',
    '',
  ]);
  out.push(table(['figure', 'result', 'target', ''], headline));
  out.push('');
  if (j.floor) {
    const f = j.floor;
    const tradesPerS = sat?.rates?.ordersSubmitted.sustained ?? NaN;
    out.push(
      `engine floor (same server, one-activity workflow): ${f1(f.burst.perS)}/s in a burst of ${f.burst.n}; ` +
        `start → activity completed at ${f1(f.atRate.rate)}/s p50 ${f0(f.atRate.latencyMs.p50)} ms, p99 ${f0(f.atRate.latencyMs.p99)} ms`,
    );
    out.push(
      `floor ratio: trades/s ${(tradesPerS / f.burst.perS).toFixed(2)}x one-activity workflows/s, ` +
        `p99 ${((lat?.latencyMs.p99 ?? NaN) / f.atRate.latencyMs.p99).toFixed(1)}x one-activity p99`,
    );
    out.push('');
  }
  // Counts that do not depend on the machine: the saturation phase's (steadier CPU), else the latency phase's.
  const counted = sat ?? lat;
  if (counted) {
    out.push(perTradeLine(counted.perTrade));
    out.push(
      `  (${counted.name} phase; order scheduled by workflow task ${f1(counted.perTrade.workflowTasksToOrder)}` +
        (sat && lat ? `; latency phase: ${perTradeLine(lat.perTrade).replace('per trade: ', '')}` : '') +
        ')',
    );
    // Counted by the trade worker itself (sat_pg_round_trips_total), so absent for code that predates the counter.
    if (Number.isFinite(counted.perTrade.pgRoundTrips)) {
      out.push(
        `PostgreSQL round trips per trade (trade worker): ${f1(counted.perTrade.pgRoundTrips)}` +
          (sat && lat ? ` (latency phase ${f1(lat.perTrade.pgRoundTrips)})` : ''),
      );
    }
    out.push('');
  }

  for (const p of j.phases) {
    if (p.name === 'warmup') continue;
    out.push(
      p.name === 'latency'
        ? `Latency phase: ${p.signals} signals at ${f1(j.options.rate)}/s, ${f1(p.wallS)} s${p.drained ? '' : ' (DID NOT SETTLE)'}`
        : `Saturation phase: ${p.signals} signals in one burst (≤ ${j.options.window} unconfirmed), ${f1(p.wallS)} s${
            p.drained ? '' : ' (DID NOT SETTLE)'
          }`,
    );
    const viaStream = p.orderTimeSource === 'venue-stream';
    const rows: string[][] = [
      [
        viaStream
          ? "signal → order submitted (seen on the venue's trade_updates stream)"
          : 'signal → order submitted (FALLBACK: = submitOrder completed; the venue stream was not usable)',
        ...ms(p.latencyMs),
      ],
      ...(p.latencyBesideCompletions
        ? [
            [
              `  while other trades completed (n=${p.latencyBesideCompletions.besideCompletions.n})`,
              ...ms(p.latencyBesideCompletions.besideCompletions),
            ],
            [`  while none did (n=${p.latencyBesideCompletions.quiet.n})`, ...ms(p.latencyBesideCompletions.quiet)],
          ]
        : []),
      ['signal → submitOrder completed (Temporal), the sum of:', ...ms(p.submitCompletedMs ?? p.latencyMs)],
      ...STAGES.map((s) => [`  ${s.label}`, ...ms(p.stagesMs[s.key]!)]),
      ...(viaStream && p.venueToSubmitCompletedMs
        ? [['order at the venue (stream) → submitOrder completed (Temporal)', ...ms(p.venueToSubmitCompletedMs)]]
        : []),
      ['publish → broker confirm (bench side)', ...ms(p.publishConfirmMs)],
    ];
    out.push(table(['ms', 'p50', 'p95', 'p99', 'max'], rows));
    if (p.rates) {
      out.push('');
      out.push(
        table(
          ['throughput (from first publish)', 'overall /s', 'sustained /s', 'span s'],
          [
            ['signals published (confirmed)', f1(p.rates.publishPerS), '', ''],
            ['workflows started by intake', f1(p.rates.intakeStarts.overall), f1(p.rates.intakeStarts.sustained), ''],
            [
              viaStream
                ? 'orders submitted (seen on the venue stream)'
                : 'orders submitted (FALLBACK: submitOrder completed)',
              f1(p.rates.ordersSubmitted.overall),
              f1(p.rates.ordersSubmitted.sustained),
              f1(p.rates.ordersSubmitted.spanS),
            ],
            ...(viaStream && p.rates.submitOrderCompleted
              ? [
                  [
                    'submitOrder completed (Temporal)',
                    f1(p.rates.submitOrderCompleted.overall),
                    f1(p.rates.submitOrderCompleted.sustained),
                    f1(p.rates.submitOrderCompleted.spanS),
                  ],
                ]
              : []),
            [
              'trades completed (filled, booked, closed)',
              f1(p.rates.tradesCompleted.overall),
              f1(p.rates.tradesCompleted.sustained),
              f1(p.rates.tradesCompleted.spanS),
            ],
          ],
        ),
      );
    }
    out.push('');
  }

  const cpuKeys = [...new Set(j.phases.flatMap((p) => Object.keys(p.cpuCores)))];
  const shown = j.phases.filter((p) => p.name !== 'warmup');
  out.push(
    `CPU: cores used on average (${j.machine.cores} cores = ${j.machine.cores * 100} %; "others" = everything outside ` +
      'this run and the stack), and CPU ms per trade',
  );
  const ours = (p: PhaseReport) =>
    Object.entries(p.cpuMsPerTrade).reduce((a, [k, v]) => a + (k === 'bench' ? 0 : v), 0);
  out.push(
    table(
      ['process', ...shown.map((p) => `${p.name} %`), ...shown.map((p) => `${p.name} ms/trade`)],
      [
        ...cpuKeys.map((k) => [
          k,
          ...shown.map((p) => `${Math.round((p.cpuCores[k] ?? 0) * 100)}%`),
          ...shown.map((p) => (p.cpuMsPerTrade[k] === undefined ? '' : f1(p.cpuMsPerTrade[k]))),
        ]),
        ['pipeline + stack (without bench)', ...shown.map(() => ''), ...shown.map((p) => f1(ours(p)))],
      ],
    ),
  );
  for (const p of shown) {
    const hot = Object.entries(p.hotThreadsPeak)
      .map(
        ([g, h]) =>
          `${g} "${h.thread}" ${Math.round(h.cores * 100)}% (phase average ${Math.round((p.hotThreads[g]?.cores ?? 0) * 100)}%)`,
      )
      .join('; ');
    out.push(`${p.name}: busiest thread, highest 2-s window: ${hot || '–'}`);
    out.push(`${p.name}: ${runQueueLine(p)}`);
    out.push(
      `${p.name}: PostgreSQL backends of this run busy ${f1(p.pg.activeMean)} on average, waiting for a lock ` +
        `${f1(p.pg.lockWaitMean)} on average (max ${p.pg.lockWaitMax}), ${p.pg.samples} samples`,
    );
  }
  const withPersistence = shown.filter((p) => p.persistence);
  if (withPersistence.length) {
    out.push('');
    out.push(
      `Temporal server persistence (SQLite, one connection; the whole server${
        j.setup.temporal.includes('private') ? '' : ', shared with other users of the stack'
      }): calls and ms per trade`,
    );
    const ops = [...new Set(withPersistence.flatMap((p) => p.persistence!.top.map((t) => t.op)))];
    const cell = (p: PhaseReport, op: string) => {
      const t = p.persistence!.top.find((x) => x.op === op);
      return t ? `${f1(t.callsPerTrade)} / ${f1(t.msPerTrade)}` : '';
    };
    out.push(
      table(
        ['operation', ...withPersistence.map((p) => `${p.name} calls / ms`)],
        [
          ...ops.map((op) => [op, ...withPersistence.map((p) => cell(p, op))]),
          [
            'all operations',
            ...withPersistence.map((p) => `${f1(p.persistence!.callsPerTrade)} / ${f1(p.persistence!.msPerTrade)}`),
          ],
          [
            'busy: Σ call time per second of wall time',
            ...withPersistence.map((p) => `${p.persistence!.busyPerSecond.toFixed(2)} s/s`),
          ],
        ],
      ),
    );
  }
  out.push('');
  const l = j.loss;
  out.push(
    `Zero loss: ${l.zeroLoss ? 'YES' : 'NO'} — published ${l.published} (${l.publishErrors} publish errors); workflows on the task queue ` +
      `${l.workflowsOnTaskQueue} (${l.workflowsRunning} still running, ${l.historiesMissing} histories missing); ledger trades ` +
      `${l.ledgerTrades} (${l.ledgerTradesDistinctSignals} distinct signals, ${l.ledgerFilled} FILLED${
        Object.keys(l.ledgerNotFilled).length ? `, other: ${JSON.stringify(l.ledgerNotFilled)}` : ''
      }); entry orders ${l.ledgerEntryOrders} (${l.ledgerEntryOrdersWithBrokerId} with a broker id, ${l.tradesWithOrderCountNot1} trades ` +
      `without exactly one); venue orders found ${l.venueOrdersFound} (${l.venueOrdersFilled} filled); position venue ${
        l.venuePositionQty ?? '?'
      } / ledger ${l.ledgerPositionQty}; intake queue ${l.intakeQueueDepth ?? '?'}, DLQ ${l.intakeDlqDepth ?? '?'}`,
  );
  out.push('');
  out.push(`JSON: ${path.relative(process.cwd(), j.jsonPath) || j.jsonPath}`);
  return out.join('\n');
}

export interface BenchJson {
  label?: string;
  /** Which code this pass measured: the baseline commit's checkout, or the current code (the default). */
  role?: 'baseline' | 'current';
  startedAt: string;
  /** The code measured: HEAD, and whether the working tree had changes. */
  git: string;
  command: string;
  jsonPath: string;
  options: BenchOptions;
  machine: { cores: number; cpuModel: string; loadBefore: number[]; loadAfter: number[]; node: string; memMb: number };
  setup: {
    temporal: string;
    vhost: string;
    database: string;
    taskQueue: string;
    prefetch: number;
    intakes: number;
    intakeInWorker?: boolean;
    workers: number;
    workerTuning: Record<string, unknown>;
    logLevel: string;
    barIntervalMs: number;
    childEnv: Record<string, string>;
  };
  /** Where "order submitted" came from in this pass (absent in JSON written before the venue observer). */
  orderTime?: OrderTimeChoice;
  phases: PhaseReport[];
  loss: LossReport;
  floor?: FloorReport;
  barsPublished: number;
  totalS: number;
}

export function gitRevision(dir = ROOT): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: dir })
      .toString()
      .trim();
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown';
  }
}

/**
 * Per process: cores used, and threads ready to run but waiting for a CPU (run queue), on average. Many waiting
 * per core used: the process is starved of CPU (it would go faster with more); few: it waits for something else.
 */
export function runQueueLine(p: PhaseReport): string {
  const rq = p.runQueue;
  if (!rq) return 'run queue: not measured';
  const parts = Object.entries(rq)
    .filter(([k]) => (p.cpuCores[k] ?? 0) >= 0.005 || (rq[k] ?? 0) >= 0.05)
    .map(([k, v]) => `${k} ${f1(p.cpuCores[k] ?? 0)} cores running, ${f1(v)} waiting`);
  return `threads waiting for a CPU (run queue) beside the cores used: ${parts.join('; ') || '–'}`;
}

/**
 * Where this pass's "order submitted" came from, in one line: the venue's stream, or — loudly — the fallback to
 * submitOrder completed (Temporal), with the reason.
 */
export function orderTimeLine(j: BenchJson): string {
  const o = j.orderTime;
  if (!o) return 'order submitted = submitOrder completed (Temporal) (report written before the venue observer)';
  const evidence =
    `${o.ordersSeen} of ${o.orders} orders seen on the stream, ${o.stream.drops} drops` +
    (o.firstSeenNotNew ? `, ${o.firstSeenNotNew} first seen as a later event than "new"` : '');
  return o.source === 'venue-stream'
    ? `order submitted = first update of the order on the venue's trade_updates stream, bench clock (${evidence})`
    : `!!! FALLBACK: order submitted = submitOrder completed (Temporal) in this pass, NOT the venue stream: ` +
        `${o.fallbackReason} (${evidence}). Its latency and orders/s are not comparable with a stream-timed pass.`;
}
