/**
 * `npm run bench:trades [-- options]` (= scripts/with-stack.sh tsx src/cli/bench/trades.ts): the trade pipeline's
 * latency and throughput on the local stack, end to end on the real processes.
 *
 *   bench ──publish (confirms)──► RabbitMQ ──► signal-intake ──start──► Temporal dev server ──► trade-worker
 *         ──► evaluateRisk (PostgreSQL) ──► submitOrder (exchange-sim over the Alpaca v2 wire, ledger) ──► fills
 *
 * Isolation: a fresh migrated PostgreSQL database, a private RabbitMQ vhost, a private Temporal task queue and a
 * private venue port, so the run neither sees nor disturbs anybody else's work on the shared stack (stack.ts).
 *
 * Phases: warm-up (excluded) → latency (fixed rate, default 1000 signals at 10/s) → saturation (a burst, as fast as
 * publisher confirms allow) (load.ts). Every signal is timed from just before its publish (this process's clock)
 * to the first update of its order on the venue's own trade_updates stream, as this process receives it
 * (venue-observer.ts): the moment the order reached the broker, seen from outside the code under test, so the
 * baseline and the current code are timed the same way whatever their submitOrder does after the acceptance
 * (write the ledger; wait for the fill and book it). Temporal's ActivityTaskCompleted of submitOrder is reported
 * beside it, and the workflow histories give that path stage by stage (histories.ts). A pass whose stream could
 * not be used falls back to submitOrder completed as a whole, loudly (analysis.ts chooseOrderTimeSource). After
 * the phases every signal must have exactly one workflow, one ledger trade (FILLED), one order at the venue,
 * nothing dead-lettered and nothing left in the queue ("zero loss", zero-loss.ts). Then the engine floor
 * (floor.ts) and the report (analysis.ts, report.ts).
 *
 * A benchmark prints figures; it never asserts timings (see docs/benchmarks.md).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { ConfirmPublisher, RabbitConnection, RabbitManagement, topologySetup } from '../../adapters/rabbitmq';
import { loadConfig, type Config } from '../../config';
import { createLogger } from '../../logging';
import { ServiceRunner } from '../service-runner';
import { clientOrderIdFor } from '../../contracts/trade-ids';
import { analysePhase, chooseOrderTimeSource, compactRecords } from './analysis';
import { sleep } from '../../lib/sleep';
import { say } from './constants';
import { CpuSampler } from './cpu';
import { measureFloor, type FloorReport } from './floor';
import { attachHistories } from './histories';
import { LoadGenerator, type PhaseResult } from './load';
import { USAGE, parseOptions, type BenchOptions } from './options';
import { prepareBaseline } from './baseline';
import { formatBaselineComparison } from './comparison';
import { formatReport, gitRevision, type BenchJson } from './report';
import { cleanUpInterruptedRuns } from './run-record';
import { compareProfiles } from './cluster';
import {
  cpuGroups,
  openTemporal,
  provisionRun,
  startServices,
  stopServices,
  type RunScope,
  type ServiceKind,
  type TemporalTarget,
} from './stack';
import { f1 } from './stats';
import { VenueOrderObserver } from './venue-observer';
import { verifyZeroLoss } from './zero-loss';

/** The code a pass measures: today's checkout (or --services-from), or the baseline commit's checkout. */
interface CodeUnderTest {
  role: 'baseline' | 'current';
  /** The checkout whose services run (undefined: this one). */
  servicesFrom: string | undefined;
  /** How the report names it. */
  name: string;
}

/** What both passes of a run share: the options, the Temporal server, one client on it. */
interface RunContext {
  argv: readonly string[];
  opts: BenchOptions;
  cfg: Config;
  temporal: TemporalTarget;
  client: Client;
  stamp: string;
  startedAt: string;
}

/** A pass's own scope: its services (own ServiceRunner and logs), database, vhost and task queue, undone at its end. */
function openScope(logDir: string): RunScope & { close(): Promise<void> } {
  const undo: Array<() => Promise<void>> = [];
  let closing: Promise<void> | undefined;
  const scope = {
    runner: new ServiceRunner({ logDir, keepOutputChars: 20_000 }),
    kinds: new Map<string, ServiceKind | 'temporal-dev'>(),
    defer: (fn: () => Promise<void>) => void undo.push(fn),
    close: () =>
      (closing ??= (async () => {
        await stopServices(scope);
        for (const c of undo.reverse()) await c().catch((err: unknown) => say(`cleanup: ${String(err)}`));
        await scope.runner.get('temporal-dev')?.stop({ graceMs: 15_000 });
      })()),
  };
  return scope;
}

/**
 * One pass: the given code's services on their own database, vhost and task queue, the load phases, the histories
 * and the zero-loss check. Returns the pass's report (without the engine floor, which the run measures once).
 */
async function runPass(ctx: RunContext, code: CodeUnderTest, scope: RunScope): Promise<PassResult> {
  const tStart = Date.now();
  const { cfg, temporal, client } = ctx;
  // The baseline's worker may not run the intake (d77fd4c cannot): unless --intake process, let stack.ts decide.
  const opts: BenchOptions = {
    ...ctx.opts,
    servicesFrom: code.servicesFrom,
    ...(code.role === 'baseline' && ctx.opts.intake !== 'process' ? { intake: undefined } : {}),
    ...(code.role === 'baseline' ? { cpuProf: undefined } : {}),
    // The tuned worker is this checkout's runTradeWorker: in the baseline pass it would replace the baseline's
    // own worker with the current code. The baseline runs its own worker, as configured at its commit.
    ...(code.role === 'baseline' ? { workerTuning: {} } : {}),
  };
  const logDir = path.join(opts.out, 'logs', ctx.stamp, code.role);
  const loadBefore = os.loadavg();
  const run = await provisionRun(opts, cfg, temporal, scope);
  const { runId, taskQueue, db } = run;
  for (const pid of temporal.privatePid ? [temporal.privatePid] : []) run.record.addService(pid); // a killed run's
  const sampler = new CpuSampler(
    cpuGroups(temporal, scope, opts.profile, {
      postgres: portOf(cfg.databaseUrl, 5432),
      rabbitmq: portOf(cfg.rabbitmq.url, 5672),
    }),
  );
  // After a failure or Ctrl-C: end this pass's unfinished trades, so nothing of it lingers on the shared server
  // (their task queue has no worker any more and their database is gone). A complete pass has none.
  scope.defer(async () => {
    const left: string[] = [];
    for await (const w of client.workflow.list({
      query: `TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`,
    }))
      left.push(w.workflowId);
    for (const id of left) {
      await client.workflow
        .getHandle(id)
        .terminate('bench-trades: the run ended before this trade did')
        .catch(() => undefined);
    }
    if (left.length) say(`terminated ${left.length} unfinished workflows on task queue ${taskQueue}`);
  });

  await startServices(opts, run, client, scope, logDir);
  const rabbit = new RabbitConnection({
    url: run.childCfg.rabbitmq.url,
    urls: run.childCfg.rabbitmq.urls,
    name: `bench-trades-${process.pid}-${code.role}`,
    logger: createLogger('bench', { level: 'warn' }),
    // Services from another checkout declared their own topology (possibly older queue types): leave it.
    ...(opts.servicesFrom ? {} : { setup: topologySetup(run.childCfg.rabbitmq) }),
  });
  const publisher = new ConfirmPublisher(rabbit, { logger: createLogger('bench', { level: 'warn' }) });
  await rabbit.start();
  scope.defer(async () => {
    await publisher.close().catch(() => undefined);
    await rabbit.close().catch(() => undefined);
  });

  // The external observer of "order submitted": the venue's own trade_updates stream, listening before any signal.
  say(`[${code.name}] connecting to the venue's trade_updates stream (the observer of "order submitted")`);
  const observer = await VenueOrderObserver.open(run.childEnv);
  scope.defer(() => observer.close());
  const streamReady = observer.health();
  if (!streamReady.ready) {
    say(`[${code.name}] !!! ${streamReady.error}`);
    say(`[${code.name}] !!! this pass times "order submitted" by submitOrder completed (Temporal) instead (FALLBACK)`);
  }

  const load = new LoadGenerator(runId, opts, db, publisher, sampler, temporal.metricsUrl, run.workerMetricsUrls);
  await load.publishBar(); // the venue learns the symbol and a price

  const phases: PhaseResult[] = [];
  if (opts.warmup > 0) {
    say(`[${code.name}] warm-up: ${opts.warmup} signals at ${opts.rate}/s (excluded from the figures)`);
    phases.push(await load.runPhase('warmup', opts.warmup, { rate: opts.rate }));
  }
  const healthy = () => phases.every((p) => p.drained);
  if (opts.signals > 0 && healthy()) {
    say(`[${code.name}] latency phase: ${opts.signals} signals at ${opts.rate}/s`);
    phases.push(await load.runPhase('latency', opts.signals, { rate: opts.rate }));
  }
  if (opts.saturation > 0 && healthy()) {
    await sleep(1000); // let the latency phase's tail leave the servers' queues
    say(
      `[${code.name}] saturation phase: ${opts.saturation} signals as fast as confirms allow (window ${opts.window})`,
    );
    phases.push(await load.runPhase('saturation', opts.saturation, { window: opts.window }));
  }

  // Every order's first sighting on the stream, then the stream is closed (its health is final from here).
  for (const r of load.records) r.venueSeen = observer.sighting(clientOrderIdFor(r.workflowId));
  const stream = observer.health();
  await observer.close();

  say(`[${code.name}] reading ${load.records.length} workflow histories`);
  const historiesMissing = await attachHistories(
    client,
    load.records.filter((r) => !r.publishError),
  );
  say(`[${code.name}] checking zero loss: Temporal, ledger, venue, queues`);
  const loss = await verifyZeroLoss(load, client, taskQueue, run.childEnv, run.vhost, historiesMissing);

  // One source of "order submitted" for the whole pass (all its phases), chosen on all its signals.
  const orderTime = chooseOrderTimeSource(load.records, stream);
  if (orderTime.source !== 'venue-stream') {
    say(
      `[${code.name}] !!! FALLBACK: "order submitted" = submitOrder completed (Temporal): ${orderTime.fallbackReason}`,
    );
  }
  const reports = phases.map((p) =>
    analysePhase(
      p,
      load.records.filter((r) => r.phase === p.name),
      p.name === 'saturation',
      orderTime.source,
    ),
  );
  const label = code.role === 'baseline' ? `baseline ${code.name}` : ctx.opts.label;
  const jsonPath = path.join(opts.out, `trades-${ctx.stamp}${code.role === 'baseline' ? '-baseline' : ''}.json`);
  const json: BenchJson = {
    ...(label ? { label } : {}),
    role: code.role,
    startedAt: ctx.startedAt,
    git: opts.servicesFrom
      ? `services ${code.role === 'baseline' ? code.name : gitRevision(opts.servicesFrom)} (${opts.servicesFrom}), bench ${gitRevision()}`
      : gitRevision(),
    command: `npm run bench:trades${ctx.argv.length ? ` -- ${ctx.argv.join(' ')}` : ''}`,
    jsonPath,
    options: opts,
    machine: {
      cores: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      loadBefore,
      loadAfter: os.loadavg(),
      node: process.version,
      memMb: Math.round(os.totalmem() / 2 ** 20),
    },
    setup: {
      temporal: temporal.description,
      vhost: run.vhost.vhost,
      database: db.name,
      taskQueue,
      prefetch: run.prefetch,
      intakes: run.intakes,
      intakeInWorker: run.intakeInWorker,
      workers: opts.workers,
      workerTuning: opts.workerTuning,
      logLevel: opts.logLevel,
      barIntervalMs: opts.barIntervalMs,
      childEnv: Object.fromEntries(Object.entries(run.childOverrides).filter(([k]) => k !== 'DATABASE_URL')),
    },
    orderTime,
    phases: reports,
    loss,
    barsPublished: load.barsPublished,
    totalS: (Date.now() - tStart) / 1000,
  };
  return { json, signals: compactRecords(load.records) };
}

/** A pass's report and the per-signal times of its JSON file. */
interface PassResult {
  json: BenchJson;
  signals: unknown[];
}

function writeJson({ json, signals }: PassResult): void {
  fs.mkdirSync(path.dirname(json.jsonPath), { recursive: true });
  fs.writeFileSync(json.jsonPath, `${JSON.stringify({ ...json, signals }, null, 1)}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseOptions(argv);
  if ('help' in parsed) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if ('error' in parsed) {
    process.stderr.write(`${parsed.error}\n\n${USAGE}\n`);
    return 2;
  }
  const opts = parsed;
  if (opts.cluster) return compareProfiles(argv, opts);
  const tStart = Date.now();
  const cfg = loadConfig();
  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/[:.]/g, '-');

  // The baseline's checkout first: a bad --baseline fails before anything is started.
  const codes: CodeUnderTest[] = [];
  if (opts.baseline !== undefined) {
    let b: ReturnType<typeof prepareBaseline>;
    try {
      b = prepareBaseline(opts.baseline);
    } catch (err) {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      return 2;
    }
    say(`baseline ${b.sha.slice(0, 7)}: ${b.fresh ? 'installed' : 'cached'} checkout ${b.dir}`);
    codes.push({ role: 'baseline', servicesFrom: b.dir, name: b.sha.slice(0, 7) });
  }
  codes.push({
    role: 'current',
    servicesFrom: opts.servicesFrom,
    name: opts.servicesFrom ? gitRevision(opts.servicesFrom) : gitRevision(),
  });

  // The run's own scope holds the Temporal server (a private one is started here) and the client; each pass has
  // its own. Ctrl-C undoes the pass in progress, then the run's.
  const outer = openScope(path.join(opts.out, 'logs', stamp));
  let current: (RunScope & { close(): Promise<void> }) | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      await current?.close();
      await outer.close();
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    say(`${sig}: stopping the services and cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let exitCode = 1;
  const results: PassResult[] = [];
  let floor: FloorReport | undefined;
  try {
    const temporal = await openTemporal(opts, cfg, outer);
    await cleanUpInterruptedRuns(cfg, RabbitManagement.fromConfig(cfg.rabbitmq));
    const connection = await Connection.connect({ address: temporal.address });
    outer.defer(() => connection.close());
    const client = new Client({ connection, namespace: cfg.temporal.namespace });
    const ctx: RunContext = { argv, opts, cfg, temporal, client, stamp, startedAt };

    for (const [i, code] of codes.entries()) {
      say(
        `── pass ${i + 1}/${codes.length}: ${code.role === 'baseline' ? `baseline ${code.name}` : `current code ${code.name}`}` +
          (code.servicesFrom ? ` (services from ${code.servicesFrom})` : ''),
      );
      current = openScope(path.join(opts.out, 'logs', stamp, code.role));
      try {
        const result = await runPass(ctx, code, current);
        writeJson(result);
        results.push(result);
      } finally {
        await current.close(); // its services stop before the next pass: they would take CPU from it
        current = undefined;
      }
    }
    if (opts.floor > 0) {
      say(`engine floor: ${opts.floor} one-activity workflows in a burst, then ${opts.signals} at ${opts.rate}/s`);
      floor = await measureFloor(client, temporal.address, randomBytes(4).toString('hex'), opts).catch(
        (err: unknown) => {
          say(`engine floor failed: ${err instanceof Error ? err.message : String(err)}`);
          return undefined;
        },
      );
    }
    exitCode = results.length === codes.length && results.every((r) => passed(r.json)) ? 0 : 1;
  } finally {
    await cleanUp();
    // The reports of the passes that completed, the floor in each (one server, one floor), then the comparison.
    for (const r of results) {
      if (floor) r.json.floor = floor;
      writeJson(r);
      process.stdout.write(`${formatReport(r.json)}\n`);
    }
    const base = results.find((r) => r.json.role === 'baseline')?.json;
    const head = results.find((r) => r.json.role === 'current')?.json;
    if (base && head) process.stdout.write(`${formatBaselineComparison(base, head)}\n`);
    say(`done in ${f1((Date.now() - tStart) / 1000)} s`);
  }
  return exitCode;
}

/** A pass counts as complete when every phase settled and nothing was lost. */
function passed(j: BenchJson): boolean {
  return j.loss.zeroLoss && j.phases.every((p) => p.drained);
}

/** The TCP port of a server URL (its scheme's default when the URL names none); undefined if unparsable. */
function portOf(url: string, defaultPort: number): number | undefined {
  try {
    const u = new URL(url);
    return u.port ? Number(u.port) : defaultPort;
  } catch {
    return undefined;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench-trades failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
