/**
 * The stack a run measures and the pipeline's services on it:
 * - Temporal: the stack's dev server, or a private `temporal server start-dev` (--private-temporal);
 * - isolation: a fresh migrated database, a private RabbitMQ vhost, a private task queue and a private venue port;
 * - the real processes (exchange-sim, trade-worker(s), signal-intake(s)) started as children through the one
 *   ServiceRunner, each awaited until it consumes its queue or polls its task queue;
 * - the CPU groups the sampler measures (Temporal, each service kind, PostgreSQL, RabbitMQ, the bench).
 * Everything a step creates is registered with the run's scope, which undoes it at the end, on a failure or on
 * Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createScratchDatabase, type ScratchDatabase } from '../../adapters/postgres/scratch-database';
import { INTAKE_SIGNALS_QUEUE, RabbitManagement } from '../../adapters/rabbitmq';
import { EPHEMERAL_OPS_ENV, inheritedEnv, parseEnv, type Config } from '../../config';
import { EXCHANGE_BARS_QUEUE } from '../../workers/exchange-sim';
import { freePort, tsxCommand, type ServiceProcess, type ServiceRunner } from '../service-runner';
import { sleep } from '../../lib/sleep';
import { BENCH_APP_NAME, ROOT, say } from './constants';
import { findPidByCmdline, findPidListeningOn, readPidFile, type CpuGroup } from './cpu';
import type { BenchOptions } from './options';
import { RunRecord } from './run-record';
import { findMetricsUrl } from './temporal-metrics';

/** The pipeline's services the benchmark starts (the producers are the benchmark itself). */
export type ServiceKind = 'exchange-sim' | 'trade-worker' | 'signal-intake';

const SCRIPTS: Record<ServiceKind, { script: string; ready: RegExp }> = {
  'exchange-sim': { script: 'src/workers/exchange-sim.ts', ready: /simulated exchange listening/ },
  'trade-worker': { script: 'src/workers/trade-worker.ts', ready: /trade worker running/ },
  'signal-intake': { script: 'src/workers/signal-intake.ts', ready: /signal intake running/ },
};
/** The product trade worker with Worker.create options overridden (--worker-tuning). */
const TUNED_WORKER = path.join(ROOT, 'src/cli/bench/tuned-worker.ts');
/** temporal.api.enums.v1.TaskQueueKind.NORMAL and TaskQueueType.WORKFLOW. */
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE_WORKFLOW = 1;

/** What a run started and created, undone by the run at its end (see trades.ts). */
export interface RunScope {
  runner: ServiceRunner;
  /** Service name (e.g. `trade-worker-2`) → kind; `temporal-dev` for a private Temporal server. */
  kinds: Map<string, ServiceKind | 'temporal-dev'>;
  /** Register an undo step; they run in reverse order of registration. */
  defer(undo: () => Promise<void>): void;
}

/** The pids of the services of one kind (for the CPU sampler). */
export function pidsOf(scope: RunScope, kind: ServiceKind | 'temporal-dev'): number[] {
  return scope.runner
    .all()
    .filter((s) => scope.kinds.get(s.name) === kind && s.pid)
    .map((s) => s.pid!);
}

// ------------------------------------------------------------------------------------------------ Temporal

/** The Temporal server a run measures. */
export interface TemporalTarget {
  address: string;
  description: string;
  /** Its Prometheus endpoint (persistence figures), when found. */
  metricsUrl: string | undefined;
  /** Its process (for the CPU sampler). */
  roots: () => number[];
  /** The private server's pid (--private-temporal), which a killed run leaves for the next run to stop. */
  privatePid?: number;
}

/** The stack's dev server, or a private one for an experiment (--private-temporal). */
export async function openTemporal(opts: BenchOptions, cfg: Config, scope: RunScope): Promise<TemporalTarget> {
  let target: TemporalTarget;
  if (opts.privateTemporal !== undefined) {
    say(`starting a private Temporal dev server: ${opts.privateTemporal || '(in-memory SQLite)'}`);
    const pt = await startPrivateTemporal(opts.privateTemporal, scope);
    target = {
      address: pt.address,
      description: `${pt.address} (private dev server ${opts.privateTemporal || 'in-memory SQLite'})`,
      metricsUrl: pt.metricsUrl,
      roots: () => (pt.svc.pid ? [pt.svc.pid] : []),
      ...(pt.svc.pid ? { privatePid: pt.svc.pid } : {}),
    };
  } else if (opts.profile === 'cluster') {
    // The cluster profile's Temporal server (scripts/provision/temporal-server.sh), on PostgreSQL.
    const roots = () => {
      const pid = readPidFile(path.join(ROOT, '.data/run/temporal-server.pid'));
      return pid ? [pid] : [];
    };
    target = {
      address: cfg.temporal.address,
      description: `${cfg.temporal.address} (cluster profile: Temporal server on PostgreSQL, 4 history shards)`,
      metricsUrl: await findMetricsUrl(roots()[0]),
      roots,
    };
  } else {
    // The stack's pid file, else the dev server listening on the configured port (other dev servers may run on
    // the machine, e.g. tests' private ones), else any dev server.
    const port = cfg.temporal.address.split(':').pop() ?? '';
    const roots = () => {
      const pid =
        readPidFile(path.join(ROOT, '.data/run/temporal.pid')) ??
        findPidByCmdline(new RegExp(`temporal server start-dev .*--port ${port}(\\s|$)`)) ??
        findPidByCmdline(/temporal server start-dev/);
      return pid ? [pid] : [];
    };
    target = {
      address: cfg.temporal.address,
      description: `${cfg.temporal.address} (stack dev server: SQLite file, WAL, synchronous=NORMAL)`,
      metricsUrl: await findMetricsUrl(roots()[0]),
      roots,
    };
  }
  if (!target.metricsUrl) say('Temporal metrics endpoint not found: no persistence figures');
  return target;
}

/** The `temporal` CLI the stack uses (on PATH under with-stack.sh, else the cached one). */
function temporalCli(): string {
  const cached = path.join(ROOT, '.tools/bin/temporal');
  return fs.existsSync(cached) ? cached : 'temporal';
}

async function startPrivateTemporal(
  flags: string,
  scope: RunScope,
): Promise<{ svc: ServiceProcess; address: string; metricsUrl: string }> {
  const port = await freePort();
  const metricsPort = await freePort();
  const extra = flags.split(/\s+/).filter(Boolean);
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--headless',
    '--namespace',
    'default',
    '--log-level',
    'warn',
    '--dynamic-config-value',
    'frontend.enableServerVersionCheck=false',
    '--dynamic-config-value',
    'frontend.enableUpdateWorkflowExecution=true',
    '--dynamic-config-value',
    'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
    ...['Symbol', 'Side', 'Strategy', 'TradeStatus'].flatMap((n) => ['--search-attribute', `${n}=Keyword`]),
    '--metrics-port',
    String(metricsPort),
    ...extra,
  ];
  const svc = scope.runner.start('temporal-dev', { command: temporalCli(), args, cwd: ROOT, env: inheritedEnv() });
  scope.kinds.set('temporal-dev', 'temporal-dev');
  const address = `127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (!svc.running) throw new Error(`private temporal dev server exited:\n${svc.output().slice(-2000)}`);
    try {
      const c = await Connection.connect({ address, connectTimeout: 1000 });
      await c.workflowService.getSystemInfo({});
      await c.close();
      break;
    } catch {
      if (Date.now() - t0 > 60_000)
        throw new Error(`private temporal dev server not healthy:\n${svc.output().slice(-2000)}`);
      await sleep(250);
    }
  }
  return { svc, address, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}

// ------------------------------------------------------------------------------------------------ isolation

/** A run's own database, vhost, task queue and venue port, and the environment its services get. */
export interface RunResources {
  runId: string;
  taskQueue: string;
  db: ScratchDatabase;
  /** The management client looking at the run's private vhost. */
  vhost: RabbitManagement;
  simPort: number;
  prefetch: number;
  intakes: number;
  intakeInWorker: boolean;
  record: RunRecord;
  /** The variables set for the services on top of this process's environment (reported in the JSON). */
  childOverrides: Record<string, string>;
  childEnv: NodeJS.ProcessEnv;
  childCfg: Config;
  /** Each trade worker's /metrics (a port of its own, so the benchmark can read sat_pg_round_trips_total). */
  workerMetricsUrls: string[];
}

export async function provisionRun(
  opts: BenchOptions,
  cfg: Config,
  temporal: TemporalTarget,
  scope: RunScope,
): Promise<RunResources> {
  const runId = randomBytes(4).toString('hex');
  const dbName = `sat_bench_${runId}`;
  const vhostName = `sat-bench-${runId}`;
  const taskQueue = `bench-${runId}`;
  const record = new RunRecord({
    pid: process.pid,
    runId,
    database: dbName,
    vhost: vhostName,
    taskQueue,
    temporalAddress: temporal.address,
    pids: scope.runner
      .all()
      .map((s) => s.pid ?? 0)
      .filter(Boolean),
  });
  scope.defer(async () => record.remove()); // the first registered: runs last
  say(`creating database ${dbName}`);
  // Its own application_name, so the activity sampler can leave the benchmark's own queries out.
  const db = await createScratchDatabase(cfg.databaseUrl, dbName, { applicationName: BENCH_APP_NAME });
  scope.defer(async () => {
    if (opts.keepDb) say(`kept database ${db.name}`);
    else await db.drop();
  });

  const management = RabbitManagement.fromConfig(cfg.rabbitmq);
  await management.createVhost(vhostName, 'bench-trades (temporary)');
  scope.defer(async () => {
    if (opts.keepDb) say(`kept RabbitMQ vhost ${vhostName}`);
    else await management.deleteVhost(vhostName);
  });

  const simPort = await freePort();
  const prefetch = opts.prefetch ?? cfg.rabbitmq.signalPrefetch;
  const intakeInWorker = (opts.intake ?? defaultIntake(cfg.rabbitmq.intakeInWorker, opts.servicesFrom)) === 'worker';
  // Generous risk limits so every signal is approved: the benchmark measures the path, not the limits.
  const childOverrides: Record<string, string> = {
    DATABASE_URL: db.url,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    RABBITMQ_VHOST: vhostName,
    SIM_EXCHANGE_PORT: String(simPort),
    SIGNAL_PREFETCH: String(prefetch),
    INTAKE_IN_WORKER: String(intakeInWorker),
    LOG_LEVEL: opts.logLevel,
    WORKER_SHUTDOWN_GRACE_MS: '2000',
    BROKER: 'simulated',
    STARTING_CASH: '10000000',
    RISK_DUPLICATE_COOLDOWN_SEC: '0',
    RISK_ALLOW_SHORT: 'true',
    RISK_MAX_POSITION_SHARES: '1000000',
    ...EPHEMERAL_OPS_ENV,
  };
  const childEnv: NodeJS.ProcessEnv = { ...inheritedEnv(), ...childOverrides };
  return {
    runId,
    taskQueue,
    db,
    vhost: management.forVhost(vhostName),
    simPort,
    prefetch,
    intakes: intakeInWorker ? 0 : opts.intakes,
    intakeInWorker,
    record,
    childOverrides,
    childEnv,
    childCfg: parseEnv(childEnv),
    workerMetricsUrls: [],
  };
}

// ------------------------------------------------------------------------------------------------ services

/**
 * Start the services: the venue first (the worker reconciles against it at start), then the worker(s), then
 * intake; one at a time, so that each readiness probe counts only its predecessors. Readiness does not depend
 * on the log level: the venue and the intake consume their queues, the worker polls the task queue.
 */
export async function startServices(
  opts: BenchOptions,
  run: RunResources,
  client: Client,
  scope: RunScope,
  logDir: string,
): Promise<void> {
  const consumers = async (queue: string) => (await run.vhost.queue(queue))?.consumers ?? 0;
  const workflowPollers = async () => {
    const r = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: run.taskQueue, kind: TASK_QUEUE_KIND_NORMAL },
      taskQueueType: TASK_QUEUE_TYPE_WORKFLOW,
    });
    return new Set((r.pollers ?? []).map((p) => p.identity)).size;
  };
  const probes: Record<ServiceKind, (index: number) => Promise<boolean>> = {
    'exchange-sim': async () => (await consumers(EXCHANGE_BARS_QUEUE)) >= 1,
    'trade-worker': async (i) => (await workflowPollers()) >= i + 1,
    'signal-intake': async (i) => (await consumers(INTAKE_SIGNALS_QUEUE)) >= i + 1,
  };
  const start = async (kind: ServiceKind, index: number) => {
    const name = index > 0 ? `${kind}-${index + 1}` : kind;
    const tuned = kind === 'trade-worker' && Object.keys(opts.workerTuning).length > 0;
    // Services from another checkout (--services-from) run there, with its own dependencies and defaults.
    const script = tuned ? TUNED_WORKER : path.join(opts.servicesFrom ?? ROOT, SCRIPTS[kind].script);
    const args = tuned ? ['--worker-tuning', JSON.stringify(opts.workerTuning)] : [];
    // --cpu-prof: V8's profiler in the worker (Node refuses it in NODE_OPTIONS), a .cpuprofile per thread at exit.
    const profiled = kind === 'trade-worker' && opts.cpuProf !== undefined;
    const cmd = tsxCommand(script, args);
    // A worker's ops port of its own, known to the benchmark (the others stay on any free port).
    const metricsPort = kind === 'trade-worker' ? await freePort() : undefined;
    const env = metricsPort ? { ...run.childEnv, WORKER_METRICS_PORT: String(metricsPort) } : run.childEnv;
    const svc = scope.runner.start(name, {
      ...(profiled
        ? { command: cmd.command, args: ['--cpu-prof', '--cpu-prof-dir', opts.cpuProf!, ...cmd.args] }
        : { script, args }),
      env,
      cwd: opts.servicesFrom ?? ROOT,
    });
    if (metricsPort) run.workerMetricsUrls.push(`http://127.0.0.1:${metricsPort}/metrics`);
    scope.kinds.set(name, kind);
    run.record.addService(svc.pid);
    await svc.waitReady({
      ...(index === 0 ? { line: SCRIPTS[kind].ready } : {}),
      probe: () => probes[kind](index),
      timeoutMs: 120_000,
    });
    run.record.addService(svc.pid); // now with whatever it started
  };
  say(
    `starting exchange-sim (port ${run.simPort}), ${opts.workers} trade-worker${
      run.intakeInWorker ? ' with intake inside (eager start)' : `, ${run.intakes} signal-intake`
    }; logs in ${path.relative(process.cwd(), logDir)}`,
  );
  await start('exchange-sim', 0);
  for (let i = 0; i < opts.workers; i++) await start('trade-worker', i);
  for (let i = 0; i < run.intakes; i++) await start('signal-intake', i);
}

/** Stop the pipeline's services in order: intake first, then the worker(s), then the venue. */
export async function stopServices(scope: RunScope): Promise<void> {
  for (const kind of ['signal-intake', 'trade-worker', 'exchange-sim'] as const) {
    await Promise.all(
      scope.runner
        .all()
        .filter((s) => scope.kinds.get(s.name) === kind)
        .map((s) => s.stop({ graceMs: 15_000 })),
    );
  }
}

/** The CPU groups measured from /proc during each phase. */
export function cpuGroups(
  temporal: TemporalTarget,
  scope: RunScope,
  profile: 'dev' | 'cluster' = 'dev',
  ports: { postgres?: number; rabbitmq?: number } = {},
): CpuGroup[] {
  // The stack's pid file, else the process listening on the server's port (a worktree's .data has no pid files:
  // the stack runs from the main checkout), else the first process that looks like one. The port comes before
  // the look-alike: other agents' private RabbitMQ and PostgreSQL nodes look the same and were counted instead.
  const cached = new Map<string, number>();
  const stackPid = (pidFile: string, cmdline: RegExp, port?: number) => () => {
    const known = cached.get(pidFile);
    if (known !== undefined && fs.existsSync(`/proc/${known}`)) return [known];
    const pid =
      readPidFile(path.join(ROOT, pidFile)) ??
      (port ? findPidListeningOn(port) : undefined) ??
      findPidByCmdline(cmdline);
    if (pid !== undefined) cached.set(pidFile, pid);
    return pid ? [pid] : [];
  };
  // The cluster profile's three RabbitMQ nodes (scripts/provision/rabbitmq-cluster.sh), counted as one group.
  const clusterNodes = () =>
    [1, 2, 3].flatMap((i) => readPidFile(path.join(ROOT, `.data/rabbitmq-cluster/node${i}/node.pid`)) ?? []);
  return [
    { name: 'temporal', roots: temporal.roots },
    { name: 'trade-worker', roots: () => pidsOf(scope, 'trade-worker'), threads: true },
    { name: 'signal-intake', roots: () => pidsOf(scope, 'signal-intake'), threads: true },
    { name: 'exchange-sim', roots: () => pidsOf(scope, 'exchange-sim'), threads: true },
    { name: 'postgres', roots: stackPid('.data/postgres/postmaster.pid', /postgres -D|postmaster/, ports.postgres) },
    {
      name: 'rabbitmq',
      roots:
        profile === 'cluster' ? clusterNodes : stackPid('.data/rabbitmq/node.pid', /beam\.smp.*rabbit/, ports.rabbitmq),
    },
    { name: 'bench', roots: () => [process.pid] },
  ];
}

/**
 * Where intake runs unless --intake says: INTAKE_IN_WORKER's default (inside the worker), except for services of a
 * checkout whose trade worker cannot run it (e.g. the baseline d77fd4c), which get their signal-intake process.
 */
function defaultIntake(inWorker: boolean, servicesFrom: string | undefined): 'worker' | 'process' {
  if (!inWorker) return 'process';
  if (!servicesFrom) return 'worker';
  const worker = path.join(servicesFrom, SCRIPTS['trade-worker'].script);
  return fs.existsSync(worker) && fs.readFileSync(worker, 'utf8').includes('intakeInWorker') ? 'worker' : 'process';
}
