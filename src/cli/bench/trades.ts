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
 * Phases: warm-up (excluded) → latency (fixed rate, default 200 signals at 10/s) → saturation (a burst, as fast as
 * publisher confirms allow) (load.ts). Every signal is timed from just before its publish (this process's clock)
 * to Temporal recording the completion of its submitOrder activity (the server's clock, same host): at that
 * moment the venue has accepted the order and the ledger row carries the broker's order id. The workflow
 * histories give the same path stage by stage (histories.ts). After the phases every signal must have exactly
 * one workflow, one ledger trade (FILLED), one order at the venue, nothing dead-lettered and nothing left in the
 * queue ("zero loss", zero-loss.ts). Then the engine floor (floor.ts) and the report (analysis.ts, report.ts).
 *
 * A benchmark prints figures; it never asserts timings (see docs/benchmarks.md).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { ConfirmPublisher, RabbitConnection, RabbitManagement, topologySetup } from '../../adapters/rabbitmq';
import { loadConfig } from '../../config';
import { createLogger } from '../../logging';
import { ServiceRunner } from '../service-runner';
import { analysePhase, compactRecords } from './analysis';
import { sleep } from '../../lib/sleep';
import { say } from './constants';
import { CpuSampler } from './cpu';
import { measureFloor, type FloorReport } from './floor';
import { attachHistories } from './histories';
import { LoadGenerator, type PhaseResult } from './load';
import { USAGE, parseOptions } from './options';
import { formatReport, gitRevision, type BenchJson } from './report';
import { cleanUpInterruptedRuns } from './run-record';
import { compareProfiles } from './cluster';
import { cpuGroups, openTemporal, provisionRun, startServices, stopServices, type RunScope } from './stack';
import { f1 } from './stats';
import { verifyZeroLoss } from './zero-loss';

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
  const logDir = path.join(opts.out, 'logs', stamp);
  const loadBefore = os.loadavg();

  const undo: Array<() => Promise<void>> = [];
  const scope: RunScope = {
    runner: new ServiceRunner({ logDir, keepOutputChars: 20_000 }),
    kinds: new Map(),
    defer: (fn) => void undo.push(fn),
  };
  let exitCode = 1;
  // Stop the services, then drop the database and the vhost: at the end, on a failure, and on Ctrl-C.
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      await stopServices(scope);
      for (const c of undo.reverse()) await c().catch((err: unknown) => say(`cleanup: ${String(err)}`));
      await scope.runner.get('temporal-dev')?.stop({ graceMs: 15_000 });
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    say(`${sig}: stopping the services and cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const temporal = await openTemporal(opts, cfg, scope);
    await cleanUpInterruptedRuns(cfg, RabbitManagement.fromConfig(cfg.rabbitmq));
    const run = await provisionRun(opts, cfg, temporal, scope);
    const { runId, taskQueue, db } = run;
    const sampler = new CpuSampler(cpuGroups(temporal, scope, opts.profile));

    const connection = await Connection.connect({ address: temporal.address });
    scope.defer(() => connection.close());
    const client = new Client({ connection, namespace: cfg.temporal.namespace });
    // After a failure or Ctrl-C: end this run's unfinished trades, so nothing of it lingers on the shared server
    // (their task queue has no worker any more and their database is gone). A complete run has none.
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
      name: `bench-trades-${process.pid}`,
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

    const load = new LoadGenerator(runId, opts, db, publisher, sampler, temporal.metricsUrl);
    await load.publishBar(); // the venue learns the symbol and a price

    const phases: PhaseResult[] = [];
    if (opts.warmup > 0) {
      say(`warm-up: ${opts.warmup} signals at ${opts.rate}/s (excluded from the figures)`);
      phases.push(await load.runPhase('warmup', opts.warmup, { rate: opts.rate }));
    }
    const healthy = () => phases.every((p) => p.drained);
    if (opts.signals > 0 && healthy()) {
      say(`latency phase: ${opts.signals} signals at ${opts.rate}/s`);
      phases.push(await load.runPhase('latency', opts.signals, { rate: opts.rate }));
    }
    if (opts.saturation > 0 && healthy()) {
      await sleep(1000); // let the latency phase's tail leave the servers' queues
      say(`saturation phase: ${opts.saturation} signals as fast as confirms allow (window ${opts.window})`);
      phases.push(await load.runPhase('saturation', opts.saturation, { window: opts.window }));
    }

    say(`reading ${load.records.length} workflow histories`);
    const historiesMissing = await attachHistories(
      client,
      load.records.filter((r) => !r.publishError),
    );
    say('checking zero loss: Temporal, ledger, venue, queues');
    const loss = await verifyZeroLoss(load, client, taskQueue, run.childEnv, run.vhost, historiesMissing);
    let floor: FloorReport | undefined;
    if (opts.floor > 0) {
      say(`engine floor: ${opts.floor} one-activity workflows in a burst, then ${opts.signals} at ${opts.rate}/s`);
      floor = await measureFloor(client, temporal.address, runId, opts).catch((err: unknown) => {
        say(`engine floor failed: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      });
    }

    const reports = phases.map((p) =>
      analysePhase(
        p,
        load.records.filter((r) => r.phase === p.name),
        p.name === 'saturation',
      ),
    );
    const jsonPath = path.join(opts.out, `trades-${stamp}.json`);
    const json: BenchJson = {
      ...(opts.label ? { label: opts.label } : {}),
      startedAt,
      git: opts.servicesFrom
        ? `services ${gitRevision(opts.servicesFrom)} (${opts.servicesFrom}), bench ${gitRevision()}`
        : gitRevision(),
      command: `npm run bench:trades${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
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
      phases: reports,
      loss,
      ...(floor ? { floor } : {}),
      barsPublished: load.barsPublished,
      totalS: (Date.now() - tStart) / 1000,
    };
    fs.mkdirSync(opts.out, { recursive: true });
    fs.writeFileSync(jsonPath, `${JSON.stringify({ ...json, signals: compactRecords(load.records) }, null, 1)}\n`);
    process.stdout.write(`${formatReport(json)}\n`);
    exitCode = loss.zeroLoss && phases.every((p) => p.drained) ? 0 : 1;
  } finally {
    await cleanUp();
    say(`done in ${f1((Date.now() - tStart) / 1000)} s`);
  }
  return exitCode;
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
