/** `npm run bench:trades` options: the usage text and the parser (exit code 2 on bad usage). */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_BASELINE } from './baseline';
import { ROOT } from './constants';

export const USAGE = `Usage: npm run bench:trades [-- options]
       scripts/with-stack.sh tsx src/cli/bench/trades.ts [options]

Pushes trade signals through RabbitMQ → signal-intake → one Temporal workflow per signal → RiskOps
(PostgreSQL) → the simulated venue (Alpaca v2 wire) → ledger, on the local stack, with the real processes
(exchange-sim, trade-worker, signal-intake) started as children on a fresh database, a private RabbitMQ vhost,
a private task queue and a private venue port. Prints a report and writes bench-results/trades-<time>.json.

By default the run measures two codes one after the other on the same servers: first the baseline commit
(${DEFAULT_BASELINE}, issue 12's starting point; --baseline to choose another, --no-baseline to skip), whose
services run from a cached checkout of that commit (.tools/bench-baseline/<commit>, git archive + npm ci on
first use), then the current code, each on its own database, vhost and task queue with the same phases. Then
the engine floor once, both reports, and a side-by-side table with the "baseline ratio:" lines (current /
baseline; issue 12's targets: CPU per trade ≤ 0.5x, trades/s at saturation ≥ 2x, p99 at --rate ≤ 0.4x).

Latency ("signal → order submitted") = publish (just before basic.publish, this process's clock) → the first
update of the trade's order on the venue's own trade_updates stream, as this process receives it (an observer
outside the code under test, the same for both passes; its small delivery delay is in both). Beside it:
signal → submitOrder completed (Temporal's ActivityTaskCompleted, which also covers the ledger writes and, in
code that waits for the fill inside submitOrder, that wait) and its stages. If the stream cannot be used in a
pass (not listening within 15 s, a drop, an order it never showed), that pass falls back to submitOrder
completed and the report and JSON say so (FALLBACK). Throughput = orders submitted per second from the first
publish, overall and sustained (between 10 % and 90 % of the signals done).

Options:
  --signals N           latency phase: signals at the fixed rate, and the floor's at the same rate (default
                        1000, so that the p99 is the 10th-worst signal: of 200 it was the 2nd-worst, and the
                        baseline's alone moved 164-208 ms between identical runs; 0 skips the phase)
  --rate R              latency phase: signals per second (default 10)
  --warmup N            signals before the latency phase, excluded from the figures (default 20)
  --saturation N        saturation phase: a burst of N signals as fast as confirms allow (default 600; 0 skips)
  --window N            saturation: publishes awaiting their confirm at most (default 200)
  --bar-interval-ms MS  a market bar every MS ms while a phase runs, so orders fill and trades settle (default 500)
  --drain-timeout S     give up waiting for a phase to settle after S seconds (default 120)
  --prefetch N          SIGNAL_PREFETCH of the intake = workflow starts in flight (default: env or 32)
  --intake worker|process
                        signal intake inside the trade worker(s), starting trades eagerly on the worker's
                        connection, or as separate signal-intake processes (default: INTAKE_IN_WORKER, true;
                        process for a --services-from checkout whose worker has no intake)
  --intakes N           signal-intake processes with --intake process (default 1)
  --workers N           trade-worker processes (default 1)
  --worker-tuning K=V,… run the current code's worker(s) with these Worker.create options overridden (the
                        baseline pass keeps its own worker as configured at its commit), e.g.
                        maxConcurrentWorkflowTaskExecutions=100,maxCachedWorkflows=2000 (default: product
                        settings); workflowTaskPollers=N / activityTaskPollers=N set the SDK's poller behaviors
                        (simple-maximum N: the SDK ignores maxConcurrentWorkflowTaskPolls)
  --cpu-prof DIR        run the current code's trade worker(s) under V8's profiler (node --cpu-prof): a
                        .cpuprofile per thread in DIR when the worker stops (open in Chrome DevTools)
  --log-level L         LOG_LEVEL of the services (default info, as in production)
  --private-temporal "FLAGS"
                        run this benchmark against a private \`temporal server start-dev\` (in-memory SQLite
                        unless FLAGS has --db-filename) with FLAGS added, e.g.
                        "--db-filename /tmp/t.sqlite --sqlite-pragma journal_mode=WAL --sqlite-pragma synchronous=OFF"
  --floor N             engine floor on the same server afterwards: N one-activity workflows in a burst, then
                        --signals of them at --rate (default 300; 0 skips)
  --baseline COMMIT     the baseline measured first in the same run (default ${DEFAULT_BASELINE}; any commit-ish)
  --no-baseline         measure the current code only (about half the time)
  --services-from DIR   run the services (trade-worker, signal-intake, exchange-sim) from another checkout,
                        e.g. a git worktree of a baseline commit, measured by this benchmark the same way
  --cluster             measure twice in one run: on the dev stack, then on the cluster profile (the Temporal
                        server on PostgreSQL, a three-node RabbitMQ cluster; scripts/stack-up.sh --cluster, which
                        npm run bench:trades brings up), with the same options, and print both side by side with
                        the ratio cluster / dev (docs/scaling.md); no baseline unless --baseline is given
  --profile dev|cluster which stack this run measures (default dev; --cluster passes it to its second run)
  --label TEXT          a name for this run in the report and the JSON file
  --out DIR             where to write the JSON (default bench-results)
  --keep-db             keep the database and the RabbitMQ vhost afterwards (printed) for inspection
  -h, --help            this help

Exit code: 0 when the run completed with zero loss (whatever the figures), 1 on loss or failure, 2 on bad usage.
Absolute figures depend on what else the machine is doing: the report shows the CPU used by each process and
by everything else during each phase, CPU ms per trade, and the Temporal server's SQLite calls per trade.
Ctrl-C stops the services and removes what the run created; a run that was killed outright is cleaned up by the
next one (bench-results/.runs/). Details and results: docs/benchmarks.md.`;

export interface BenchOptions {
  signals: number;
  rate: number;
  warmup: number;
  saturation: number;
  window: number;
  barIntervalMs: number;
  drainTimeoutS: number;
  prefetch?: number;
  intakes: number;
  /** Where signal intake runs: inside the trade worker (eager start) or as signal-intake processes. */
  intake?: 'worker' | 'process';
  workers: number;
  workerTuning: Record<string, number | boolean | string>;
  logLevel: string;
  privateTemporal?: string;
  /** One-activity workflows for the engine floor, in a burst (0 skips the floor). */
  floor: number;
  /** A checkout whose services run instead of this one's; the bench itself stays. */
  servicesFrom?: string;
  /** Profile the current pass's trade worker(s) into this directory (node --cpu-prof). */
  cpuProf?: string;
  /** The commit measured first, in the same run, as the baseline (undefined: none). */
  baseline?: string;
  label?: string;
  out: string;
  keepDb: boolean;
  /** Run both profiles, dev then cluster, and compare (cluster.ts). */
  cluster: boolean;
  /** The stack this run measures: its Temporal server, RabbitMQ nodes and their processes' CPU (stack.ts). */
  profile: 'dev' | 'cluster';
}

export function parseOptions(argv: readonly string[]): BenchOptions | { help: true } | { error: string } {
  const o: BenchOptions = {
    signals: 1000,
    rate: 10,
    warmup: 20,
    saturation: 600,
    window: 200,
    barIntervalMs: 500,
    drainTimeoutS: 120,
    intakes: 1,
    floor: 300,
    workers: 1,
    workerTuning: {},
    logLevel: 'info',
    out: path.join(ROOT, 'bench-results'),
    keepDb: false,
    cluster: false,
    profile: 'dev',
  };
  let baseline: string | false | undefined;
  const int = (name: string, v: string | undefined, min: number): number | { error: string } => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isInteger(n) || n < min)
      return { error: `${name} needs an integer ≥ ${min}` };
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    let inline: string | undefined;
    if (a.startsWith('--') && a.includes('=')) {
      inline = a.slice(a.indexOf('=') + 1);
      a = a.slice(0, a.indexOf('='));
    }
    const value = () => inline ?? argv[++i];
    if (a === '-h' || a === '--help') return { help: true };
    if (a === '--keep-db') {
      o.keepDb = true;
      continue;
    }
    if (a === '--cluster') {
      o.cluster = true;
      continue;
    }
    if (a === '--no-baseline') {
      baseline = false;
      continue;
    }
    const numeric: Record<string, [keyof BenchOptions, number]> = {
      '--signals': ['signals', 0],
      '--warmup': ['warmup', 0],
      '--saturation': ['saturation', 0],
      '--window': ['window', 1],
      '--bar-interval-ms': ['barIntervalMs', 20],
      '--drain-timeout': ['drainTimeoutS', 1],
      '--prefetch': ['prefetch', 1],
      '--intakes': ['intakes', 1],
      '--floor': ['floor', 0],
      '--workers': ['workers', 1],
    };
    const spec = numeric[a];
    if (spec) {
      const n = int(a, value(), spec[1]);
      if (typeof n !== 'number') return n;
      (o as unknown as Record<string, number>)[spec[0]] = n;
      continue;
    }
    if (a === '--rate') {
      const v = value();
      const n = Number(v);
      if (!v || !Number.isFinite(n) || n <= 0 || n > 1000) return { error: '--rate needs a number in (0, 1000]' };
      o.rate = n;
    } else if (a === '--worker-tuning') {
      const v = value();
      if (!v) return { error: '--worker-tuning needs K=V[,K=V…]' };
      for (const kv of v.split(',').filter(Boolean)) {
        const [k, raw] = kv.split('=');
        if (!k || raw === undefined || !/^[A-Za-z]+$/.test(k)) return { error: `--worker-tuning: bad entry "${kv}"` };
        o.workerTuning[k] =
          raw === 'true' ? true : raw === 'false' ? false : Number.isFinite(Number(raw)) ? Number(raw) : raw;
      }
    } else if (a === '--services-from') {
      const v = value();
      if (!v || !fs.existsSync(path.join(v, 'src/workers/trade-worker.ts')))
        return { error: '--services-from needs a checkout of this repository (with src/workers/trade-worker.ts)' };
      o.servicesFrom = path.resolve(v);
    } else if (a === '--baseline') {
      const v = value();
      if (!v || v.startsWith('-')) return { error: '--baseline needs a commit (e.g. d77fd4c)' };
      baseline = v;
    } else if (a === '--cpu-prof') {
      const v = value();
      if (!v || v.startsWith('-')) return { error: '--cpu-prof needs a directory' };
      o.cpuProf = path.resolve(v);
    } else if (a === '--intake') {
      const v = value();
      if (v !== 'worker' && v !== 'process') return { error: '--intake needs worker|process' };
      o.intake = v;
    } else if (a === '--log-level') {
      const v = value();
      if (!v || !['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(v))
        return { error: '--log-level needs trace|debug|info|warn|error|fatal|silent' };
      o.logLevel = v;
    } else if (a === '--private-temporal') {
      const v = value();
      if (v === undefined) return { error: '--private-temporal needs a (possibly empty) flag string' };
      o.privateTemporal = v;
    } else if (a === '--profile') {
      const v = value();
      if (v !== 'dev' && v !== 'cluster') return { error: '--profile needs dev|cluster' };
      o.profile = v;
    } else if (a === '--label') {
      const v = value();
      if (!v) return { error: '--label needs a value' };
      o.label = v;
    } else if (a === '--out') {
      const v = value();
      if (!v) return { error: '--out needs a directory' };
      o.out = path.resolve(v);
    } else return { error: `unknown argument ${a}` };
  }
  // --cluster compares two stacks; a baseline there only when asked for.
  if (baseline !== false && (baseline !== undefined || !o.cluster)) o.baseline = baseline ?? DEFAULT_BASELINE;
  if (o.signals + o.saturation === 0) return { error: 'nothing to do: --signals and --saturation are both 0' };
  if (o.cluster && o.privateTemporal !== undefined)
    return { error: '--cluster measures the stacks themselves; it does not combine with --private-temporal' };
  return o;
}

/**
 * Poller counts as plain numbers (--worker-tuning takes K=V pairs): `workflowTaskPollers=N` and
 * `activityTaskPollers=N` become the SDK's `{ type: 'simple-maximum', maximum: N }` poller behaviors. The SDK
 * (1.24) ignores its documented `maxConcurrentWorkflowTaskPolls`; only the behavior objects take effect.
 */
export function pollerShorthands(tuning: Record<string, unknown>): Record<string, unknown> {
  const { workflowTaskPollers, activityTaskPollers, ...rest } = tuning;
  const behavior = (n: unknown) => ({ type: 'simple-maximum' as const, maximum: Number(n) });
  return {
    ...rest,
    ...(workflowTaskPollers !== undefined ? { workflowTaskPollerBehavior: behavior(workflowTaskPollers) } : {}),
    ...(activityTaskPollers !== undefined ? { activityTaskPollerBehavior: behavior(activityTaskPollers) } : {}),
  };
}
