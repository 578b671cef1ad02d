/**
 * The main job (`npm start`): every part of the pipeline on the local stack, on replayed real market data
 * and the simulated exchange, with no API keys.
 *
 *   exchange-sim   simulated venue (Alpaca v2 wire) fed by bars
 *   trade-worker   the trade workflow + RiskOps/ExecConnect/ledger activities, and the signal intake:
 *                  trade_signals → one workflow per signal, started eagerly (INTAKE_IN_WORKER, default true)
 *   signal-intake  the intake as its own process instead, only with INTAKE_IN_WORKER=false
 *   bar-store      bars → market_bars (RiskOps reads realised volatility and ATR from it)
 *   quant          bars → strategy → trade_signals
 *   dataflow       watchlist replay (NVDA+ORCL) → market.bars   (runs last; its end ends the replay)
 *
 * Every run trades a fresh paper account (`paper-<time>-<pid>`, unless `--account` names one): the venue starts empty, and
 * signal ids are scoped to the account (signalIdFor), so a second run trades the same bars again instead of
 * finding every signal already taken by the first run's workflows.
 *
 * Ending, normally or on Ctrl-C, loses nothing: the producers stop first and each consumer is stopped only once
 * its queue is empty (every bar became a signal or not, every signal a workflow), then trades that can no longer
 * fill (the replay is over) are cancelled through their workflows, so the ledger and the venue agree before the
 * venue, whose order book lives in memory, goes away. A second Ctrl-C stops at once (workflows stay in Temporal).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { childEnv, loadConfig, strategyTypes } from '../config';
import { createPool } from '../adapters/postgres/pool';
import { accountSummary } from '../adapters/postgres/run-summary';
import { createBroker, type Broker } from '../adapters/brokers';
import {
  INTAKE_SIGNALS_QUEUE,
  QUANT_BARS_QUEUE,
  RabbitConnection,
  STORE_BARS_QUEUE,
  withChannel,
} from '../adapters/rabbitmq';
import { STRATEGY_NAMES, SMA_CROSS } from '../domain/strategies';
import { isTradeComplete } from '../domain/trade-lifecycle';
import { clientOrderIdFor } from '../contracts/trade-ids';
import { createLogger } from '../logging';
import { sleep } from '../lib/sleep';
import { scrapeMetrics, sumOf, type Sample } from '../metrics/scrape';
import { EXCHANGE_BARS_QUEUE } from '../workers/exchange-sim';
import { TRADE_WORKFLOW_TYPE } from '../workflows/shared';
import { ServiceRunner, type ServiceProcess } from './service-runner';

const ROOT = path.resolve(__dirname, '../..');

const USAGE = `Usage: npm start -- [options]

Runs the whole pipeline on the local stack: replayed market data (WATCHLIST, default NVDA and ORCL daily
bars from ../shared/data, interleaved by time) → quant (STRATEGY_TYPE, default SMA crossover) → signal intake → one Temporal trade
workflow per signal → RiskOps → simulated exchange → ledger. Prints a progress line while it runs and a
summary when every trade has settled. Each run trades a fresh paper account, so every run trades.

Options:
  --symbols <A,B>     tickers to replay (default WATCHLIST=NVDA,ORCL; data: REPLAY_DATA_DIR/<ticker>-*.csv)
  --strategy <a,b>    quant strategies, comma-separated (${STRATEGY_NAMES.join(', ')});
                      default STRATEGY_TYPE (${SMA_CROSS})
  --bars <n>          bars to replay per symbol (default REPLAY_BARS=300)
  --from <date>       first bar date (default 2012-12-19: 2013-2014)
  --speed <x>         replay speed against market time (86400 = one daily bar per second; 0 = as fast as
                      possible); default: a fixed pause of --interval-ms between bars
  --interval-ms <ms>  pause between bars when --speed is not given (default REPLAY_INTERVAL_MS=50)
  --account <id>      trade this ledger account instead of a fresh paper-<time> one (a second run on the
                      same account finds its signals already traded: the summary says so)
  --keep-running      leave the services running after the summary (Ctrl-C stops them)
  --verbose           print every service's log lines (default: warnings and errors; all lines are in
                      .data/logs/<account>/<service>.log)
  -h, --help          this help

Environment: every variable is in .env.example (ACCOUNT_ID is replaced by the run's account).
Ctrl-C: stops the replay, lets every published bar and signal through, cancels trades that can no longer fill,
prints the summary. A second Ctrl-C stops at once (trade workflows stay in Temporal and resume with a worker).

Watch trades live in the Temporal Web UI: http://localhost:8233  (filter: TradeStatus="FILLED")
`;

type Role = 'exchange-sim' | 'trade-worker' | 'signal-intake' | 'bar-store' | 'quant' | 'dataflow';

/** A running service, its last /metrics scrape (kept after the process exits) and its plain (non-JSON) lines. */
interface Service {
  name: Role;
  proc: ServiceProcess<Role>;
  metrics: Sample[];
  plain: string[];
  /** Its '<name> stopped' log line: the final counters, which the last scrape (taken before SIGTERM) can miss. */
  stopped?: Record<string, unknown>;
}

const say = (msg: string) => process.stdout.write(`pipeline      | ${msg}\n`);
const WARN_LEVELS = new Set(['warn', 'error', 'fatal']);

/** Start a service; its log lines go to its log file, and warnings, errors and summaries to this terminal. */
function startService(
  runner: ServiceRunner<Role>,
  name: Role,
  args: string[],
  env: NodeJS.ProcessEnv,
  verbose: boolean,
): Service {
  const svc: Service = { name, metrics: [], plain: [], proc: undefined as unknown as ServiceProcess<Role> };
  const stoppedMessage = `${name} stopped`;
  const prefix = `${name.padEnd(13)}|`;
  svc.proc = runner.start(name, {
    script: path.join(ROOT, 'src/workers', `${name}.ts`),
    args,
    env,
    onLine: (line, isErr) => {
      let show = verbose || isErr;
      try {
        const entry = JSON.parse(line) as { level?: string; message?: string };
        show ||= WARN_LEVELS.has(entry.level ?? '');
        if (entry.message === stoppedMessage) svc.stopped = entry;
      } catch {
        svc.plain.push(line);
        show ||= line.startsWith('summary:');
      }
      if (show) (isErr ? process.stderr : process.stdout).write(`${prefix} ${line}\n`);
    },
  });
  return svc;
}

const running = (s: Service) => s.proc.running;

async function refreshMetrics(s: Service): Promise<void> {
  const url = s.proc.opsUrl();
  if (!url || !running(s)) return;
  try {
    s.metrics = await scrapeMetrics(url);
  } catch {
    // between start and listen, or stopping: keep the last scrape
  }
}

/** SIGTERM (each service finishes what it holds), SIGKILL only if it does not exit within the grace period. */
async function stopService(s: Service, graceMs = 30_000): Promise<void> {
  if (!running(s)) return;
  await refreshMetrics(s);
  await s.proc.stop({
    graceMs,
    onKill: () => say(`${s.name} did not stop within ${graceMs / 1000} s; killing it`),
  });
}

/** Ready = its /readyz answers 200 (its real connections work). */
async function waitReady(services: Service[], timeoutMs = 120_000): Promise<void> {
  await Promise.all(
    services.map((s) =>
      s.proc.waitReady({ probe: () => s.proc.readyz(), timeoutMs, intervalMs: 300 }).catch((err: unknown) => {
        throw new Error(
          running(s) ? `not ready after ${timeoutMs / 1000} s: ${s.name}` : `${s.name} exited during start-up`,
          { cause: err },
        );
      }),
    ),
  );
}

async function queueDepth(rabbit: RabbitConnection, queue: string): Promise<number> {
  const conn = await rabbit.waitForConnection();
  return withChannel(conn, async (ch) => (await ch.checkQueue(queue)).messageCount);
}

/**
 * Stop a consumer once its queue is empty: the messages still queued are processed first, and the consumer's own
 * shutdown waits for the ones it holds un-acked. Its producers must already be stopped.
 */
/** Messages the quant published to the signals exchange (new signals and re-publications), from its final counters. */
function publishedSignalMessages(quant: Service): number | undefined {
  const s = quant.stopped;
  return typeof s?.signals === 'number' && typeof s.republished === 'number' ? s.signals + s.republished : undefined;
}

async function drainAndStop(s: Service, rabbit: RabbitConnection, queue: string, abort: AbortSignal): Promise<void> {
  await s.proc.waitDrained(async () => (await queueDepth(rabbit, queue)) === 0, abort);
  await stopService(s);
}

interface Progress {
  t: number;
  bars: number;
}

function progressLine(
  svc: Map<Role, Service>,
  intake: Role,
  runningTrades: number,
  prev: Progress,
): [string, Progress] {
  const m = (r: Role) => svc.get(r)?.metrics ?? [];
  // The dataflow exits when its replay is published; the quant has seen every bar by then.
  const bars = Math.max(sumOf(m('dataflow'), 'sat_bars_published_total'), sumOf(m('quant'), 'sat_bars_received_total'));
  const now = Date.now();
  const rate = now > prev.t ? ((bars - prev.bars) / (now - prev.t)) * 1000 : 0;
  const signals = sumOf(m('quant'), 'sat_signals_published_total');
  const started = sumOf(m(intake), 'sat_signals_received_total', { outcome: 'started' });
  const dups = sumOf(m(intake), 'sat_signals_received_total', { outcome: 'duplicate' });
  const byStatus = new Map<string, number>();
  for (const s of m('trade-worker')) {
    if (s.name !== 'sat_trades_finished_total') continue;
    const k = s.labels.status ?? '?';
    byStatus.set(k, (byStatus.get(k) ?? 0) + s.value);
  }
  const trades = [...byStatus].map(([k, v]) => `${v} ${k}`).join(', ');
  const line =
    `progress: ${bars} bars (${rate.toFixed(0)}/s) · ${signals} signals · ${started} trades started` +
    `${dups ? ` (${dups} duplicate signals)` : ''} · ${runningTrades} running${trades ? ` · ${trades}` : ''}`;
  return [line, { t: now, bars }];
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      symbols: { type: 'string' },
      account: { type: 'string' },
      strategy: { type: 'string' },
      bars: { type: 'string' },
      from: { type: 'string', default: '2012-12-19' },
      speed: { type: 'string' },
      'interval-ms': { type: 'string' },
      'keep-running': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.speed !== undefined && !(Number(values.speed) >= 0)) {
    throw new Error(`--speed must be a number >= 0 (got "${values.speed}")`);
  }
  const cfg = loadConfig();
  // --strategy is the quant's STRATEGY_TYPE: checked here by the same rules, so a typo fails before anything starts.
  if (values.strategy !== undefined) {
    try {
      strategyTypes(values.strategy);
    } catch (err) {
      throw new Error(`--strategy: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  // The simulated venue starts empty on every run, so each run trades a fresh paper account in the ledger
  // (earlier runs' accounts stay there for inspection). ACCOUNT_ID (often set from .env) is not used here on
  // purpose: it would make every run after the first find its signals already traded. --account asks for that.
  const accountId =
    values.account ?? `paper-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${process.pid}`;
  const logDir = path.join(ROOT, '.data/logs', accountId);
  const runner = new ServiceRunner<Role>({ logDir, cwd: ROOT });
  // Each run is a fresh start on bars the shared bar store already holds from earlier runs: its quant starts cold
  // (a warm-up would feed it those runs' bars). Warm-up is for restarting a long-running quant (docs/quant.md).
  const env = childEnv({ logLevel: cfg.logLevel, accountId, quantWarmup: false });
  const pool = createPool(cfg.databaseUrl, 2);
  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  const rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    urls: cfg.rabbitmq.urls,
    name: `pipeline-${process.pid}`,
    logger: createLogger('pipeline', { level: 'warn' }),
  });
  await rabbit.start();
  // The broker the trade worker trades through (the simulated venue this job starts, unless BROKER says
  // otherwise), read-only here: whether each trade still open rests on an order there (settle).
  const venue = createBroker(cfg.broker, createLogger('pipeline', { level: 'warn' }));
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const thisRun = `WorkflowType="${TRADE_WORKFLOW_TYPE}" AND TaskQueue="${cfg.temporal.taskQueue}" AND StartTime >= "${startedAt}"`;
  const openQuery = `${thisRun} AND ExecutionStatus="Running"`;

  // First Ctrl-C: stop the replay and finish in order. Second: stop everything now.
  const interrupt = new AbortController();
  const hardStop = new AbortController();
  const services = new Map<Role, Service>();
  let firstInterruptAt = 0;
  const onInterrupt = () => {
    // npm and the terminal can both deliver one Ctrl-C: a repeat within a second is the same keypress.
    if (interrupt.signal.aborted && Date.now() - firstInterruptAt < 1000) return;
    if (!interrupt.signal.aborted) {
      firstInterruptAt = Date.now();
      say('Ctrl-C: stopping the replay; every published bar and signal is still processed (Ctrl-C again: stop now)');
      interrupt.abort();
      const df = services.get('dataflow');
      df?.proc.signal('SIGTERM');
    } else if (!hardStop.signal.aborted) {
      say('second Ctrl-C: stopping every service now; open trades stay in Temporal and resume with a worker');
      hardStop.abort();
      for (const s of services.values()) s.proc.signal('SIGTERM');
    }
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  // Whatever happens to this job, its services do not outlive it.
  process.on('exit', () => {
    for (const s of services.values()) s.proc.signal('SIGTERM');
  });

  say(`paper account ${accountId}; logs in ${path.relative(process.cwd(), logDir) || logDir}`);
  say(`Web UI: http://localhost:${cfg.temporal.uiPort}   (filter: TradeStatus="FILLED")`);
  // Where the signals become workflows: inside the trade worker (eager workflow start, the default), or a
  // signal-intake process of its own (INTAKE_IN_WORKER=false, e.g. to try the scale-out layout).
  const intakeRole: Role = cfg.rabbitmq.intakeInWorker ? 'trade-worker' : 'signal-intake';
  const roles: Role[] = ['exchange-sim', 'trade-worker', 'signal-intake', 'bar-store'];
  for (const name of roles.filter((r) => r !== 'signal-intake' || intakeRole === 'signal-intake')) {
    services.set(name, startService(runner, name, [], env, values.verbose));
  }
  const quantEnv = values.strategy ? childEnv({ strategyTypes: values.strategy }, env) : env;
  services.set('quant', startService(runner, 'quant', [], quantEnv, values.verbose));
  const progress = { prev: { t: Date.now(), bars: 0 } as Progress, last: '' };
  const tick = async (force = false) => {
    await Promise.all([...services.values()].map(refreshMetrics));
    const open = await client.workflow
      .count(openQuery)
      .then((r) => r.count)
      .catch(() => 0);
    const [line, next] = progressLine(services, intakeRole, open, progress.prev);
    progress.prev = next;
    if (force || line.replace(/\(\d+\/s\)/, '') !== progress.last.replace(/\(\d+\/s\)/, '')) say(line);
    progress.last = line;
  };
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    void tick().finally(() => (ticking = false));
  }, 2000);

  let exitCode = 0;
  try {
    await waitReady([...services.values()]);
    say('services ready: replaying');
    if (!interrupt.signal.aborted) {
      const dfArgs = ['--from', values.from!];
      if (values.symbols) dfArgs.push('--symbols', values.symbols);
      if (values.bars) dfArgs.push('--bars', values.bars);
      if (values.speed !== undefined) dfArgs.push('--speed', values.speed);
      if (values['interval-ms']) dfArgs.push('--interval-ms', values['interval-ms']);
      const dataflow = startService(runner, 'dataflow', dfArgs, env, values.verbose);
      services.set('dataflow', dataflow);
      // A signal (null) ended it: as a shell reports it, ≥ 128.
      const code = (await dataflow.proc.exited) ?? 128;
      if (code !== 0 && !interrupt.signal.aborted) throw new Error(`dataflow exited with code ${code}`);
    }
    if (values['keep-running'] && !interrupt.signal.aborted) {
      await settle({ client, openQuery, services, rabbit, venue }, interrupt.signal);
      await tick(true);
      await printSummary();
      say('services keep running (Ctrl-C to stop them in order)');
      await new Promise<void>((resolve) => interrupt.signal.addEventListener('abort', () => resolve()));
    }
    await finish();
    if (interrupt.signal.aborted) exitCode = 130;
  } catch (err) {
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
    exitCode = 1;
  } finally {
    clearInterval(timer);
    for (const s of [...services.values()].reverse()) await stopService(s, 15_000);
    await venue.close();
    await rabbit.close();
    await pool.end();
    await connection.close();
  }
  return exitCode;

  /** Stop in order, cancel what can no longer fill, summarise. */
  async function finish(): Promise<void> {
    const stop = hardStop.signal;
    say('replay over: letting queued bars and signals through');
    const get = (r: Role) => services.get(r)!;
    await drainAndStop(get('quant'), rabbit, QUANT_BARS_QUEUE, stop);
    if (intakeRole === 'signal-intake') await drainAndStop(get('signal-intake'), rabbit, INTAKE_SIGNALS_QUEUE, stop);
    // The worker's own intake (the worker stops only once trades settle).
    else await intakeTookEverySignal(get('trade-worker'), get('quant'), stop);
    await drainAndStop(get('bar-store'), rabbit, STORE_BARS_QUEUE, stop);
    if (!interrupt.signal.aborted) await settle({ client, openQuery, services, rabbit, venue }, stop);
    if (!stop.aborted) await cancelOpen();
    await tick(true);
    await printSummary();
    for (const r of ['trade-worker', 'exchange-sim'] as const) await stopService(get(r));
  }

  /**
   * The worker's own intake has taken every signal the quant published. An empty queue is not enough: a signal
   * delivered but not yet acked (its workflow start still in flight) is in no ready count, so the settle step would
   * not wait for its trade and the summary would not count it. So also wait until the intake's outcomes (started,
   * duplicate, invalid, refused) add up to the messages the quant published (its final counters: new signals and
   * re-publications). Bounded: without those counters, or after 60 s, the empty queue decides, as it used to.
   */
  async function intakeTookEverySignal(worker: Service, quant: Service, abort: AbortSignal): Promise<void> {
    const since = Date.now();
    let saidLate = false;
    await worker.proc.waitDrained(async () => {
      if ((await queueDepth(rabbit, INTAKE_SIGNALS_QUEUE)) !== 0) return false;
      // The quant's last line can trail its exit by a moment: its pipes close after the process exits.
      const published = publishedSignalMessages(quant);
      if (published === undefined) return Date.now() - since > 5_000;
      await refreshMetrics(worker);
      const taken = sumOf(worker.metrics, 'sat_signals_received_total');
      if (taken >= published) return true;
      if (Date.now() - since < 60_000) return false;
      if (!saidLate) {
        saidLate = true;
        say(`the intake took ${taken} of the quant's ${published} signal messages within 60 s; going on`);
      }
      return true;
    }, abort);
  }

  /** Trades still open when the replay is over have no later bar to fill against: cancel them, book what filled. */
  async function cancelOpen(): Promise<void> {
    const open: string[] = [];
    for await (const wf of client.workflow.list({ query: openQuery })) open.push(wf.workflowId);
    if (!open.length) return;
    say(`${open.length} trade(s) still open with no later bar to fill against: cancelling them`);
    for (const id of open) await client.workflow.getHandle(id).cancel();
    for (let i = 0; i < 120 && !hardStop.signal.aborted; i++) {
      if ((await client.workflow.count(openQuery)).count === 0) return;
      await sleep(500);
    }
    say('some trades did not close within 60 s; they stay in Temporal: temporal workflow list --query ' + openQuery);
  }

  async function printSummary(): Promise<void> {
    const m = (r: Role) => services.get(r)?.metrics ?? [];
    const dfSummary = services.get('dataflow')?.plain.filter((l) => l.startsWith('summary:')) ?? [];
    const barsIn = sumOf(m('quant'), 'sat_bars_received_total');
    const quantFinal = services.get('quant')?.stopped?.signals;
    const signals = typeof quantFinal === 'number' ? quantFinal : sumOf(m('quant'), 'sat_signals_published_total');
    const started = sumOf(m(intakeRole), 'sat_signals_received_total', { outcome: 'started' });
    const dups = sumOf(m(intakeRole), 'sat_signals_received_total', { outcome: 'duplicate' });
    const s = await accountSummary(pool, accountId, new Date(t0));
    say(`summary after ${((Date.now() - t0) / 1000).toFixed(1)} s (paper account ${accountId})`);
    for (const l of dfSummary) say(`  dataflow ${l}`);
    say(`  quant: ${barsIn} bars in, ${signals} signals; intake: ${started} trades started, ${dups} duplicates`);
    say('trades this run (ledger):');
    if (s.trades.length === 0) {
      if (dups > 0) {
        say(`  (none new: all ${dups} signals were duplicates of an earlier run on account ${accountId};`);
        say('   their trades exist already. Run without --account to trade a fresh paper account.)');
      } else if (!services.has('dataflow')) {
        say('  (none: stopped before the replay started)');
      } else if (signals === 0) {
        say('  (none: the strategy produced no signal on these bars; try more --bars or another --from)');
      } else {
        say(`  (none recorded, though ${signals} signals were published: see ${logDir})`);
      }
    }
    for (const r of s.trades) say(`  ${r.status.padEnd(18)} ${(r.reasonCode ?? '').padEnd(26)} ${r.count}`);
    say(`fills booked this run: ${s.fills}`);
    for (const p of s.positions) {
      say(`  position ${p.symbol}: ${p.qty} @ avg ${p.avgCost.toFixed(4)}, realised P&L ${p.realizedPnl.toFixed(2)}`);
    }
    say(
      `cash ${s.cash.toFixed(2)}, equity (marked at last fill) ${s.equity.toFixed(2)}, started with ${s.startingCash.toFixed(2)}`,
    );
    say(`inspect: temporal workflow list --query '${thisRun}'   or http://localhost:${cfg.temporal.uiPort}`);
  }
}

/** Bars the replay published, all confirmed by the broker: the sum of the dataflow's summary lines (one a round). */
function replayedBars(dataflow: Service | undefined): number | undefined {
  const rounds = (dataflow?.plain ?? []).map((l) => /^summary: round \d+: (\d+) bars/.exec(l)?.[1]).filter(Boolean);
  return rounds.length ? rounds.reduce((n, x) => n + Number(x), 0) : undefined;
}

interface SettleContext {
  client: Client;
  openQuery: string;
  services: Map<Role, Service>;
  rabbit: RabbitConnection;
  venue: Broker;
}

/**
 * Why the open trades are not all at rest yet, or null when they are: the venue has matched every bar the
 * replay published (it fills only against bars: docs/fill-model.md; nothing else moves an order but a cancel),
 * and it holds each open trade's order open. Such an order can never fill: `finish` cancels it. A trade still on
 * its way to the venue (risk, submit), or whose order the venue has completed while its workflow has not closed
 * yet, is still working.
 */
async function stillWorking(ctx: SettleContext, open: readonly string[]): Promise<string | null> {
  const { services, rabbit, venue } = ctx;
  const published = replayedBars(services.get('dataflow'));
  if (published === undefined) return 'the replay has not ended';
  const sim = services.get('exchange-sim');
  if (!sim || !running(sim)) return 'the venue is not running';
  await refreshMetrics(sim);
  const matched = sumOf(sim.metrics, 'sat_bars_received_total');
  // A bar delivered but not yet matched is in the venue's prefetch, not in the ready count: both must agree.
  if (matched < published || (await queueDepth(rabbit, EXCHANGE_BARS_QUEUE)) !== 0) {
    return `the venue has matched ${matched} of the ${published} bars`;
  }
  for (const workflowId of open) {
    const order = await venue.getOrderByClientOrderId(clientOrderIdFor(workflowId));
    if (!order) return `${workflowId} has no order at the venue yet`;
    if (isTradeComplete(order)) return `${workflowId}: its order is ${order.status} at the venue, its workflow closing`;
  }
  return null;
}

/**
 * Settled: no trade of this run is running, or every one still running rests on an order no later bar can fill
 * (stillWorking). Decided by what the services and the venue report, not by a quiet period (it used to wait for
 * 8 s without change, on every run). Bounded: after `timeoutMs` it says what is still working and goes on
 * (`finish` then cancels what is open).
 */
async function settle(ctx: SettleContext, stop: AbortSignal, timeoutMs = 300_000): Promise<void> {
  const since = Date.now();
  while (!stop.aborted) {
    const open: string[] = [];
    for await (const wf of ctx.client.workflow.list({ query: ctx.openQuery })) open.push(wf.workflowId);
    if (open.length === 0) return;
    const worker = ctx.services.get('trade-worker');
    if (!worker || !running(worker)) return;
    const why = await stillWorking(ctx, open).catch((err: unknown) =>
      err instanceof Error ? err.message : String(err),
    );
    if (why === null) return;
    if (Date.now() - since > timeoutMs) {
      say(`${open.length} trade(s) still working after ${timeoutMs / 1000} s (${why}); going on`);
      return;
    }
    await sleep(250);
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`pipeline: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
