/**
 * `npm run bench:trades [-- options]` (= scripts/with-stack.sh tsx src/cli/bench-trades.ts): the trade pipeline's
 * latency and throughput on the local stack, end to end on the real processes.
 *
 *   bench ──publish (confirms)──► RabbitMQ ──► signal-intake ──start──► Temporal dev server ──► trade-worker
 *         ──► evaluateRisk (PostgreSQL) ──► submitOrder (exchange-sim over the Alpaca v2 wire, ledger) ──► fills
 *
 * Isolation: a fresh migrated PostgreSQL database, a private RabbitMQ vhost, a private Temporal task queue and a
 * private venue port, so the run neither sees nor disturbs anybody else's work on the shared stack.
 *
 * Phases: warm-up (excluded) → latency (fixed rate, default 200 signals at 10/s) → saturation (a burst, as fast as
 * publisher confirms allow). Every signal is timed from just before its publish (this process's clock) to Temporal
 * recording the completion of its submitOrder activity (the server's clock, same host): at that moment the venue
 * has accepted the order and the ledger row carries the broker's order id. The workflow histories give the same
 * path stage by stage. After each phase every signal must have exactly one workflow, one ledger trade (FILLED),
 * one order at the venue, nothing dead-lettered and nothing left in the queue ("zero loss").
 *
 * A benchmark prints figures; it never asserts timings (see docs/benchmarks.md).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { EPHEMERAL_OPS_ENV, loadConfig, parseEnv, type Config } from '../config';
import { createLogger } from '../logging';
import { runMigrations } from '../adapters/postgres/migrate';
import { createClient, createPool } from '../adapters/postgres/pool';
import { createBroker } from '../adapters/brokers';
import {
  ConfirmPublisher,
  INTAKE_SIGNALS_QUEUE,
  MARKET_BARS_EXCHANGE,
  RabbitConnection,
  TRADE_SIGNALS_EXCHANGE,
  assertTopologyOn,
  barRoutingKey,
  dlqName,
  signalRoutingKey,
} from '../adapters/rabbitmq';
import type { Bar } from '../contracts/bar';
import { barMessageId } from '../contracts/ids';
import type { TradeSignalInput } from '../contracts/signal';
import { clientOrderIdFor, tradeWorkflowId } from '../contracts/trade-ids';
import { EXCHANGE_BARS_QUEUE } from '../workers/exchange-sim';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const SELF = path.join(ROOT, 'src/cli/bench-trades.ts');
const SYMBOL = 'NVDA';
/** temporal.api.enums.v1.TaskQueueKind.NORMAL and TaskQueueType.WORKFLOW. */
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE_WORKFLOW = 1;
const STRATEGY = 'bench';
/** A phase that makes no progress at all for this long is given up (the services' logs say why). */
const STALL_MS = 30_000;
const BENCH_APP_NAME = 'bench-trades';

const USAGE = `Usage: npm run bench:trades [-- options]
       scripts/with-stack.sh tsx src/cli/bench-trades.ts [options]

Pushes trade signals through RabbitMQ → signal-intake → one Temporal workflow per signal → RiskOps
(PostgreSQL) → the simulated venue (Alpaca v2 wire) → ledger, on the local stack, with the real processes
(exchange-sim, trade-worker, signal-intake) started as children on a fresh database, a private RabbitMQ vhost,
a private task queue and a private venue port. Prints a report and writes bench-results/trades-<time>.json.

Latency = publish (just before basic.publish) → Temporal records submitOrder completed (order accepted by
the venue and its broker id written to the ledger). Throughput = signals per second from the first publish,
overall and sustained (between 10 % and 90 % of the signals done).

Options:
  --signals N           latency phase: signals at the fixed rate (default 200; 0 skips the phase)
  --rate R              latency phase: signals per second (default 10)
  --warmup N            signals before the latency phase, excluded from the figures (default 20)
  --saturation N        saturation phase: a burst of N signals as fast as confirms allow (default 600; 0 skips)
  --window N            saturation: publishes awaiting their confirm at most (default 200)
  --bar-interval-ms MS  a market bar every MS ms while a phase runs, so orders fill and trades settle (default 500)
  --drain-timeout S     give up waiting for a phase to settle after S seconds (default 120)
  --prefetch N          SIGNAL_PREFETCH of the intake = workflow starts in flight (default: env or 32)
  --intake worker|process
                        signal intake inside the trade worker(s), starting trades eagerly on the worker's
                        connection, or as separate signal-intake processes (default: INTAKE_IN_WORKER, false)
  --intakes N           signal-intake processes with --intake process (default 1)
  --workers N           trade-worker processes (default 1)
  --worker-tuning K=V,… run the worker(s) with these Worker.create options overridden, e.g.
                        maxConcurrentWorkflowTaskPollers=20,maxCachedWorkflows=2000 (default: product settings)
  --log-level L         LOG_LEVEL of the services (default info, as in production)
  --private-temporal "FLAGS"
                        run this benchmark against a private \`temporal server start-dev\` (in-memory SQLite
                        unless FLAGS has --db-filename) with FLAGS added, e.g.
                        "--db-filename /tmp/t.sqlite --sqlite-pragma journal_mode=WAL --sqlite-pragma synchronous=OFF"
  --floor N             engine floor on the same server afterwards: N one-activity workflows in a burst, then
                        --signals of them at --rate (default 300; 0 skips)
  --services-from DIR   run the services (trade-worker, signal-intake, exchange-sim) from another checkout,
                        e.g. a git worktree of a baseline commit, measured by this benchmark the same way
  --label TEXT          a name for this run in the report and the JSON file
  --out DIR             where to write the JSON (default bench-results)
  --keep-db             keep the database and the RabbitMQ vhost afterwards (printed) for inspection
  -h, --help            this help

Exit code: 0 when the run completed with zero loss (whatever the figures), 1 on loss or failure, 2 on bad usage.
Absolute figures depend on what else the machine is doing: the report shows the CPU used by each process and
by everything else during each phase, CPU ms per trade, and the Temporal server's SQLite calls per trade.
Ctrl-C stops the services and removes what the run created; a run that was killed outright is cleaned up by the
next one (bench-results/.runs/). Details and results: docs/benchmarks.md.`;

// ------------------------------------------------------------------------------------------------ options

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
  /** A checkout whose services run instead of this one's (e.g. the baseline commit); the bench itself stays. */
  servicesFrom?: string;
  label?: string;
  out: string;
  keepDb: boolean;
}

export function parseOptions(argv: readonly string[]): BenchOptions | { help: true } | { error: string } {
  const o: BenchOptions = {
    signals: 200,
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
  };
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
  if (o.signals + o.saturation === 0) return { error: 'nothing to do: --signals and --saturation are both 0' };
  return o;
}

// ------------------------------------------------------------------------------------------------ statistics

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Dist {
  n: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function dist(values: readonly number[]): Dist {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return {
    n: s.length,
    min: s[0] ?? NaN,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN,
  };
}

/**
 * Rates from event times (ms) relative to `t0`: overall = n / (last − t0); sustained = the slope between the
 * 10th and 90th percentile of completions (ramp-up and the drain tail excluded).
 */
export function rates(times: readonly number[], t0: number): { overall: number; sustained: number; spanS: number } {
  const s = [...times].sort((a, b) => a - b);
  if (s.length === 0) return { overall: 0, sustained: 0, spanS: 0 };
  const last = s[s.length - 1]!;
  const spanS = (last - t0) / 1000;
  const i10 = Math.floor(s.length * 0.1);
  const i90 = Math.max(i10 + 1, Math.ceil(s.length * 0.9) - 1);
  const dt = ((s[Math.min(i90, s.length - 1)] ?? last) - s[i10]!) / 1000;
  return {
    overall: spanS > 0 ? s.length / spanS : 0,
    sustained: dt > 0 ? (Math.min(i90, s.length - 1) - i10) / dt : 0,
    spanS,
  };
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '–');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
const mean = (v: readonly number[]) => dist(v).mean;

function table(head: string[], rows: string[][], alignLeft = 1): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i < alignLeft ? c.padEnd(w[i]!) : c.padStart(w[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

// ------------------------------------------------------------------------------------------------ environment

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

interface BenchDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

/** A fresh, migrated database (like test/support/pg.ts): the benchmark never touches the working ledger. */
async function createBenchDatabase(baseUrl: string, name: string): Promise<BenchDatabase> {
  const admin = createClient(baseUrl);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  await runMigrations(url.toString());
  // Its own application_name, so the activity sampler can leave the benchmark's own queries out.
  const pool = createPool(url.toString(), 4, { applicationName: BENCH_APP_NAME });
  return {
    name,
    url: url.toString(),
    pool,
    async drop() {
      await pool.end().catch(() => undefined);
      const c = createClient(baseUrl);
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A private RabbitMQ vhost (management API; the project user has the administrator tag). */
class PrivateVhost {
  private readonly base: string;
  private readonly auth: string;
  constructor(
    private readonly cfg: Config,
    private readonly pass: string,
    readonly name: string,
  ) {
    this.base = `http://${cfg.rabbitmq.host}:${cfg.rabbitmq.managementPort}/api`;
    this.auth = `Basic ${Buffer.from(`${cfg.rabbitmq.user}:${pass}`).toString('base64')}`;
  }
  private async call(method: string, p: string, body?: unknown): Promise<Response> {
    const res = await fetch(`${this.base}${p}`, {
      method,
      headers: { authorization: this.auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok && res.status !== 404) throw new Error(`RabbitMQ management ${method} ${p}: HTTP ${res.status}`);
    return res;
  }
  async create(): Promise<void> {
    const v = encodeURIComponent(this.name);
    await this.call('PUT', `/vhosts/${v}`, { description: 'bench-trades (temporary)' });
    await this.call('PUT', `/permissions/${v}/${encodeURIComponent(this.cfg.rabbitmq.user)}`, {
      configure: '.*',
      write: '.*',
      read: '.*',
    });
  }
  async queueInfo(queue: string): Promise<{ messages: number; consumers: number } | undefined> {
    const res = await this.call('GET', `/queues/${encodeURIComponent(this.name)}/${encodeURIComponent(queue)}`);
    if (res.status === 404) return undefined;
    const q = (await res.json()) as { messages?: number; consumers?: number };
    return { messages: q.messages ?? 0, consumers: q.consumers ?? 0 };
  }
  async queueDepth(queue: string): Promise<number | undefined> {
    return (await this.queueInfo(queue))?.messages;
  }
  async drop(): Promise<void> {
    await this.call('DELETE', `/vhosts/${encodeURIComponent(this.name)}`);
  }
}

// ------------------------------------------------------------------------------------------------ processes

type ServiceKind = 'exchange-sim' | 'trade-worker' | 'signal-intake' | 'temporal-dev';

interface Service {
  name: string;
  kind: ServiceKind;
  child: ChildProcess;
  exited: Promise<number | null>;
  tail(): string;
}

const SCRIPTS: Record<Exclude<ServiceKind, 'temporal-dev'>, { script: string; ready: RegExp }> = {
  'exchange-sim': { script: 'src/workers/exchange-sim.ts', ready: /simulated exchange listening/ },
  'trade-worker': { script: 'src/workers/trade-worker.ts', ready: /trade worker running/ },
  'signal-intake': { script: 'src/workers/signal-intake.ts', ready: /signal intake running/ },
};

function spawnLogged(
  name: string,
  kind: ServiceKind,
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logDir: string,
): Service {
  const child = spawn(cmd, args, { cwd: env.BENCH_SERVICES_ROOT ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = fs.createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
  log.on('error', () => undefined); // a log file problem must not take the benchmark down
  let tail = '';
  const onData = (d: Buffer) => {
    if (!log.writableEnded) log.write(d);
    tail = (tail + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.on('error', () => undefined); // spawn failures surface as an exit before ready
  // 'close' comes after the last output ('exit' may come before it).
  child.on('close', () => log.end());
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { name, kind, child, exited, tail: () => tail };
}

/**
 * Wait until the service is ready: its ready log line (LOG_LEVEL info) or, whatever the log level, `probe`
 * (it consumes its queue / polls its task queue).
 */
async function waitReady(svc: Service, ready: RegExp, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!ready.test(svc.tail()) && !(await probe().catch(() => false))) {
    if (svc.child.exitCode !== null || svc.child.signalCode !== null)
      throw new Error(
        `${svc.name} exited (${svc.child.exitCode ?? svc.child.signalCode}) before ready:\n${svc.tail().slice(-3000)}`,
      );
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`${svc.name} not ready after ${timeoutMs} ms:\n${svc.tail().slice(-3000)}`);
    await sleep(100);
  }
}

async function stopService(svc: Service, timeoutMs = 15_000): Promise<void> {
  if (svc.child.exitCode !== null || svc.child.signalCode !== null) return;
  svc.child.kill('SIGTERM');
  const done = await Promise.race([svc.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
  if (!done) {
    svc.child.kill('SIGKILL');
    await svc.exited;
  }
}

/** The `temporal` CLI the stack uses (on PATH under with-stack.sh, else the cached one). */
function temporalCli(): string {
  const cached = path.join(ROOT, '.tools/bin/temporal');
  return fs.existsSync(cached) ? cached : 'temporal';
}

async function startPrivateTemporal(
  flags: string,
  logDir: string,
): Promise<{ svc: Service; address: string; metricsUrl: string }> {
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
  const svc = spawnLogged('temporal-dev', 'temporal-dev', temporalCli(), args, process.env, logDir);
  const address = `127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (svc.child.exitCode !== null) throw new Error(`private temporal dev server exited:\n${svc.tail().slice(-2000)}`);
    try {
      const c = await Connection.connect({ address, connectTimeout: 1000 });
      await c.workflowService.getSystemInfo({});
      await c.close();
      break;
    } catch {
      if (Date.now() - t0 > 60_000)
        throw new Error(`private temporal dev server not healthy:\n${svc.tail().slice(-2000)}`);
      await sleep(250);
    }
  }
  return { svc, address, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}

// ------------------------------------------------------------------------------------------------ Temporal metrics

/**
 * The dev server's Prometheus endpoint. start-dev serves it on a random port unless --metrics-port is given, so
 * for the stack's server: probe the TCP ports the process listens on (from /proc) for one that answers /metrics.
 */
async function findMetricsUrl(pid: number | undefined): Promise<string | undefined> {
  if (!pid) return undefined;
  const inodes = new Set<string>();
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' });
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]!);
    }
  } catch {
    return undefined;
  }
  const ports: number[] = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').slice(1) : [];
    for (const line of lines) {
      const c = line.trim().split(/\s+/);
      if (c[3] === '0A' && c[9] && inodes.has(c[9])) ports.push(parseInt(c[1]!.split(':')[1]!, 16));
    }
  }
  for (const port of ports) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
      if (res.ok && (await res.text()).includes('persistence_latency')) return `http://127.0.0.1:${port}/metrics`;
    } catch {
      // not it
    }
  }
  return undefined;
}

/** `service:operation` → [count, seconds] of persistence calls (the SQLite work of the dev server). */
type PersistenceCounters = Map<string, [number, number]>;

async function scrapePersistence(url: string | undefined): Promise<PersistenceCounters | undefined> {
  if (!url) return undefined;
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
    const out: PersistenceCounters = new Map();
    const re = /^persistence_latency_(sum|count)\{([^}]*)\} (\S+)$/gm;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const labels = m[2]!;
      const op = /operation="([^"]*)"/.exec(labels)?.[1] ?? '?';
      const svc = /service_name="([^"]*)"/.exec(labels)?.[1] ?? '?';
      const key = `${svc}:${op}`;
      const cur = out.get(key) ?? [0, 0];
      if (m[1] === 'count') cur[0] += Number(m[3]);
      else cur[1] += Number(m[3]);
      out.set(key, cur);
    }
    return out;
  } catch {
    return undefined;
  }
}

/** Persistence work of the Temporal server during a phase. */
export interface PersistenceReport {
  /** Σ call durations / wall time: SQLite work (and waits for its single connection) per second. */
  busyPerSecond: number;
  callsPerTrade: number;
  msPerTrade: number;
  top: Array<{ op: string; callsPerTrade: number; msPerTrade: number }>;
}

function persistenceBetween(
  a: PersistenceCounters | undefined,
  b: PersistenceCounters | undefined,
  wallS: number,
  trades: number,
): PersistenceReport | undefined {
  if (!a || !b || wallS <= 0) return undefined;
  const rows: Array<{ op: string; calls: number; s: number }> = [];
  for (const [k, [c, sec]] of b) {
    const [c0, s0] = a.get(k) ?? [0, 0];
    if (c - c0 > 0) rows.push({ op: k, calls: c - c0, s: sec - s0 });
  }
  rows.sort((x, y) => y.s - x.s);
  const calls = rows.reduce((t, r) => t + r.calls, 0);
  const sec = rows.reduce((t, r) => t + r.s, 0);
  const n = Math.max(1, trades);
  return {
    busyPerSecond: sec / wallS,
    callsPerTrade: calls / n,
    msPerTrade: (sec * 1000) / n,
    top: rows.slice(0, 8).map((r) => ({ op: r.op, callsPerTrade: r.calls / n, msPerTrade: (r.s * 1000) / n })),
  };
}

// ------------------------------------------------------------------------------------------------ CPU sampling

interface CpuGroup {
  name: string;
  /** Also sample each thread (Node processes: is one thread — the JS main thread, the workflow thread — the limit?). */
  threads?: boolean;
  /** Root pids: the group is each root and all its descendants. */
  roots: () => number[];
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').split('\n')[0]!.trim());
    return Number.isInteger(pid) && pid > 0 && fs.existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function findPidByCmdline(re: RegExp): number | undefined {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (re.test(cmd)) return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}

interface ProcSnapshot {
  at: number;
  /** busy / total jiffies of the whole machine. */
  machineBusy: number;
  machineTotal: number;
  /** group name → jiffies (utime + stime of live members). */
  groups: Record<string, number>;
  /** `group|pid/tid|thread name` → jiffies, for groups with `threads`. */
  threads: Record<string, number>;
}

export interface HotThread {
  thread: string;
  cores: number;
}

/** Per-process-group CPU time from /proc: which process burns the two cores during each phase. */
class CpuSampler {
  constructor(private readonly groups: CpuGroup[]) {}

  snapshot(): ProcSnapshot {
    const ppid = new Map<number, number>();
    const ticks = new Map<number, number>();
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        // rest[0] = state (field 3); ppid field 4 → rest[1]; utime 14 → rest[11]; stime 15 → rest[12]
        ppid.set(Number(d), Number(rest[1]));
        ticks.set(Number(d), Number(rest[11]) + Number(rest[12]));
      } catch {
        // exited meanwhile
      }
    }
    const children = new Map<number, number[]>();
    for (const [pid, parent] of ppid) {
      const l = children.get(parent) ?? [];
      l.push(pid);
      children.set(parent, l);
    }
    const groups: Record<string, number> = {};
    const threads: Record<string, number> = {};
    const claimed = new Set<number>();
    for (const g of this.groups) {
      let sum = 0;
      const stack = g.roots().filter((p) => ppid.has(p));
      while (stack.length) {
        const p = stack.pop()!;
        if (claimed.has(p)) continue;
        claimed.add(p);
        sum += ticks.get(p) ?? 0;
        stack.push(...(children.get(p) ?? []));
        if (g.threads) {
          try {
            for (const tid of fs.readdirSync(`/proc/${p}/task`)) {
              const st = fs.readFileSync(`/proc/${p}/task/${tid}/stat`, 'utf8');
              const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
              const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
              threads[`${g.name}|${p}/${tid}|${comm}`] = Number(rest[11]) + Number(rest[12]);
            }
          } catch {
            // exited meanwhile
          }
        }
      }
      groups[g.name] = sum;
    }
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    return { at: Date.now(), machineBusy: total - idle, machineTotal: total, groups, threads };
  }

  /** The busiest thread of each sampled group between two snapshots (cores; 1.0 = one thread always running). */
  static hottestThreads(a: ProcSnapshot, b: ProcSnapshot): Record<string, HotThread> {
    const wall = (b.at - a.at) / 1000;
    const out: Record<string, HotThread> = {};
    if (wall <= 0) return out;
    for (const [k, v] of Object.entries(b.threads)) {
      const [group, , name] = k.split('|') as [string, string, string];
      const cores = Math.max(0, v - (a.threads[k] ?? 0)) / CLK_TCK / wall;
      if (!out[group] || cores > out[group].cores) out[group] = { thread: name, cores };
    }
    return out;
  }

  /** Cores used per group between two snapshots, plus `others` (everything not in a group) and the machine. */
  static between(a: ProcSnapshot, b: ProcSnapshot): Record<string, number> {
    const wall = (b.at - a.at) / 1000;
    const out: Record<string, number> = {};
    if (wall <= 0) return out;
    let ours = 0;
    for (const k of Object.keys(b.groups)) {
      const d = Math.max(0, (b.groups[k] ?? 0) - (a.groups[k] ?? 0));
      out[k] = d / CLK_TCK / wall;
      ours += d;
    }
    const cores = os.cpus().length;
    const machine = ((b.machineBusy - a.machineBusy) / Math.max(1, b.machineTotal - a.machineTotal)) * cores;
    out.machine = machine;
    out.others = Math.max(0, machine - ours / CLK_TCK / wall);
    return out;
  }
}

// ------------------------------------------------------------------------------------------------ histories

/** Temporal event types used here (temporal.api.enums.v1.EventType). */
const EV = {
  WF_STARTED: 1,
  WF_COMPLETED: 2,
  WFT_SCHEDULED: 5,
  WFT_STARTED: 6,
  WFT_COMPLETED: 7,
  ACT_SCHEDULED: 10,
  ACT_STARTED: 11,
  ACT_COMPLETED: 12,
  MARKER_RECORDED: 25,
} as const;

interface TsLike {
  seconds?: number | { toNumber(): number } | null;
  nanos?: number | null;
}
const tsMs = (t: TsLike | null | undefined): number => {
  if (!t) return NaN;
  const s = t.seconds;
  const sec = s === null || s === undefined ? 0 : typeof s === 'number' ? s : s.toNumber();
  return sec * 1000 + (t.nanos ?? 0) / 1e6;
};

/** Server-side times (ms since the epoch) of one trade's path. NaN when the history lacks the event. */
export interface TradeTimes {
  wfStarted: number;
  wft1Started: number;
  wft1Completed: number;
  riskScheduled: number;
  riskStarted: number;
  riskCompleted: number;
  wft2Started: number;
  wft2Completed: number;
  submitScheduled: number;
  submitStarted: number;
  submitCompleted: number;
  wfCompleted: number;
  events: number;
  /** Workflow tasks completed over the whole trade. */
  wfts: number;
  /** Workflow tasks completed up to the one that scheduled submitOrder (inclusive). */
  wftsToOrder: number;
  /**
   * Tasks (workflow and activity) dispatched through matching up to submitOrder's start (inclusive). A task
   * handed over eagerly (eager workflow start, eager activity execution) starts in the same server request
   * that scheduled it; one dispatched through matching waits for a poll: schedule-to-start ≥ 1 ms.
   */
  dispatchesToOrder: number;
  /** Risk ran as a local activity (a marker in the first workflow task), not as an activity task. */
  riskLocal: boolean;
}

/** Below this schedule-to-start a task was handed over eagerly, not through matching (see dispatchesToOrder). */
const EAGER_MAX_MS = 1;

interface HistoryEventLike {
  eventId?: number | { toNumber(): number } | null;
  eventTime?: TsLike | null;
  eventType?: number | null;
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null } | null;
  activityTaskStartedEventAttributes?: { scheduledEventId?: number | { toNumber(): number } | null } | null;
  activityTaskCompletedEventAttributes?: { scheduledEventId?: number | { toNumber(): number } | null } | null;
  markerRecordedEventAttributes?: { markerName?: string | null } | null;
}

const idNum = (v: number | { toNumber(): number } | null | undefined): number =>
  v === null || v === undefined ? NaN : typeof v === 'number' ? v : v.toNumber();

export function tradeTimes(events: readonly HistoryEventLike[]): TradeTimes {
  const t: TradeTimes = {
    wfStarted: NaN,
    wft1Started: NaN,
    wft1Completed: NaN,
    riskScheduled: NaN,
    riskStarted: NaN,
    riskCompleted: NaN,
    wft2Started: NaN,
    wft2Completed: NaN,
    submitScheduled: NaN,
    submitStarted: NaN,
    submitCompleted: NaN,
    wfCompleted: NaN,
    events: events.length,
    wfts: 0,
    wftsToOrder: NaN,
    dispatchesToOrder: 0,
    riskLocal: false,
  };
  const activityOf = new Map<number, string>();
  const scheduledAt = new Map<number, number>();
  let wftStarts = 0;
  let wftCompletes = 0;
  let wftScheduledAt = NaN;
  let orderStarted = false;
  for (const e of events) {
    const at = tsMs(e.eventTime);
    switch (e.eventType) {
      case EV.WFT_SCHEDULED:
        wftScheduledAt = at;
        break;
      case EV.WF_STARTED:
        t.wfStarted = at;
        break;
      case EV.WF_COMPLETED:
        t.wfCompleted = at;
        break;
      case EV.WFT_STARTED:
        if (!orderStarted && !(at - wftScheduledAt < EAGER_MAX_MS)) t.dispatchesToOrder++;
        wftStarts++;
        if (wftStarts === 1) t.wft1Started = at;
        if (wftStarts === 2) t.wft2Started = at;
        break;
      case EV.WFT_COMPLETED:
        t.wfts++;
        wftCompletes++;
        if (wftCompletes === 1) t.wft1Completed = at;
        if (wftCompletes === 2) t.wft2Completed = at;
        break;
      case EV.ACT_SCHEDULED: {
        const name = e.activityTaskScheduledEventAttributes?.activityType?.name ?? '';
        activityOf.set(idNum(e.eventId), name);
        scheduledAt.set(idNum(e.eventId), at);
        if (name === 'evaluateRisk' && Number.isNaN(t.riskScheduled)) t.riskScheduled = at;
        if (name === 'submitOrder' && Number.isNaN(t.submitScheduled)) {
          t.submitScheduled = at;
          t.wftsToOrder = wftCompletes;
        }
        break;
      }
      case EV.ACT_STARTED: {
        const sched = idNum(e.activityTaskStartedEventAttributes?.scheduledEventId);
        const name = activityOf.get(sched);
        // Activity started events are written at completion, so they are counted here up to the order's own.
        if (!orderStarted && !(at - (scheduledAt.get(sched) ?? NaN) < EAGER_MAX_MS)) t.dispatchesToOrder++;
        if (name === 'submitOrder') orderStarted = true;
        if (name === 'evaluateRisk' && Number.isNaN(t.riskStarted)) t.riskStarted = at;
        if (name === 'submitOrder' && Number.isNaN(t.submitStarted)) t.submitStarted = at;
        break;
      }
      case EV.ACT_COMPLETED: {
        const name = activityOf.get(idNum(e.activityTaskCompletedEventAttributes?.scheduledEventId));
        if (name === 'evaluateRisk') t.riskCompleted = at;
        if (name === 'submitOrder') t.submitCompleted = at;
        break;
      }
      case EV.MARKER_RECORDED:
        if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity' && wftCompletes <= 1) {
          t.riskLocal = true;
        }
        break;
      default:
    }
  }
  if (t.riskLocal && Number.isNaN(t.riskScheduled)) {
    // Risk ran inside workflow task 1 (its run is in that stage): the activity stages are empty.
    t.riskScheduled = t.riskStarted = t.riskCompleted = t.wft1Completed;
  }
  return t;
}

/** The path of one trade split into stages (ms). Their sum is the signal → order-submitted latency. */
export const STAGES: Array<{ key: string; label: string; of: (pub: number, t: TradeTimes) => number }> = [
  {
    key: 'intake',
    label: 'publish → workflow started (RabbitMQ, intake, StartWorkflowExecution)',
    of: (p, t) => t.wfStarted - p,
  },
  { key: 'wft1Queue', label: 'workflow task 1 schedule-to-start', of: (_p, t) => t.wft1Started - t.wfStarted },
  {
    key: 'wft1Run',
    label: 'workflow task 1 run + respond (with risk if local)',
    of: (_p, t) => t.wft1Completed - t.wft1Started,
  },
  { key: 'riskQueue', label: 'evaluateRisk schedule-to-start', of: (_p, t) => t.riskStarted - t.riskScheduled },
  { key: 'riskRun', label: 'evaluateRisk run (PostgreSQL)', of: (_p, t) => t.riskCompleted - t.riskStarted },
  {
    key: 'wft2',
    label: 'risk done → submitOrder scheduled (workflow task 2)',
    of: (_p, t) => t.submitScheduled - t.riskCompleted,
  },
  { key: 'submitQueue', label: 'submitOrder schedule-to-start', of: (_p, t) => t.submitStarted - t.submitScheduled },
  {
    key: 'submitRun',
    label: 'submitOrder run (venue HTTP + ledger)',
    of: (_p, t) => t.submitCompleted - t.submitStarted,
  },
];

// ------------------------------------------------------------------------------------------------ the run

interface SignalRecord {
  signalId: string;
  workflowId: string;
  phase: PhaseName;
  pubAt: number;
  confirmedAt?: number;
  publishError?: string;
  times?: TradeTimes;
}

type PhaseName = 'warmup' | 'latency' | 'saturation';

interface PhaseResult {
  name: PhaseName;
  signals: number;
  firstPublish: number;
  lastConfirm: number;
  settledAt: number;
  drained: boolean;
  publishErrors: number;
  cpu: Record<string, number>;
  /** Busiest thread per Node service: over the phase, and the highest 2-second window. */
  hotThreads: Record<string, HotThread>;
  hotThreadsPeak: Record<string, HotThread>;
  pg: PgActivity;
  persistence: PersistenceReport | undefined;
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

interface ProgressRow {
  t: number;
  published: number;
  evaluated: number;
  submitted: number;
  settled: number;
  rejected: number;
  cpu: Record<string, number>;
}

class Bench {
  readonly records: SignalRecord[] = [];
  private seq = 0;
  private barDay = 0;
  private barTimer: NodeJS.Timeout | undefined;
  private barChain: Promise<void> = Promise.resolve();
  barsPublished = 0;

  constructor(
    readonly runId: string,
    readonly opts: BenchOptions,
    readonly db: BenchDatabase,
    readonly publisher: ConfirmPublisher,
    readonly sampler: CpuSampler,
    readonly metricsUrl: string | undefined,
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

  async counts(prefix: string): Promise<{ evaluated: number; rejected: number; submitted: number; settled: number }> {
    const r = await this.db.pool.query(
      `SELECT (SELECT count(*) FROM trades WHERE signal_id LIKE $1) AS evaluated,
              (SELECT count(*) FROM trades WHERE signal_id LIKE $1 AND status = 'REJECTED') AS rejected,
              (SELECT count(*) FROM orders WHERE workflow_id LIKE $2 AND parent_client_order_id IS NULL
                                             AND broker_order_id IS NOT NULL) AS submitted,
              (SELECT count(*) FROM reservations WHERE workflow_id LIKE $2 AND status = 'RELEASED') AS settled`,
      [`${prefix}%`, `${tradeWorkflowId(prefix)}%`],
    );
    const row = r.rows[0] as Record<string, string>;
    return {
      evaluated: Number(row.evaluated),
      rejected: Number(row.rejected),
      submitted: Number(row.submitted),
      settled: Number(row.settled),
    };
  }

  /** Publish a phase's signals (fixed rate, or a confirm-windowed burst), then wait until every trade settled. */
  async runPhase(name: PhaseName, n: number, mode: { rate: number } | { window: number }): Promise<PhaseResult> {
    const prefix = `bench-${this.runId}-${name[0]}`;
    const progress: ProgressRow[] = [];
    const persist0 = await scrapePersistence(this.metricsUrl);
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
        const r = await this.db.pool
          .query(
            `SELECT count(*) FILTER (WHERE state = 'active') AS active,
                    count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waits
               FROM pg_stat_activity WHERE datname = $1 AND application_name <> $2`,
            [this.db.name, BENCH_APP_NAME],
          )
          .catch(() => undefined);
        if (r) {
          const row = r.rows[0] as { active: string; lock_waits: string };
          pgActivity.samples++;
          active += Number(row.active);
          waits += Number(row.lock_waits);
          pgActivity.lockWaitMax = Math.max(pgActivity.lockWaitMax, Number(row.lock_waits));
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
    return {
      name,
      signals: n,
      firstPublish: Math.min(...recs.map((r) => r.pubAt)),
      lastConfirm,
      settledAt,
      drained,
      publishErrors,
      cpu: CpuSampler.between(cpu0, cpu1),
      hotThreads: CpuSampler.hottestThreads(cpu0, cpu1),
      hotThreadsPeak: hotPeak,
      pg: pgActivity,
      persistence: persistenceBetween(persist0, persist1, (cpu1.at - cpu0.at) / 1000, n),
      wallS: (cpu1.at - cpu0.at) / 1000,
      progress,
    };
  }
}

/** Fetch the histories of the given trades (bounded concurrency) and attach their server-side times. */
async function attachHistories(client: Client, recs: SignalRecord[], concurrency = 8): Promise<number> {
  let next = 0;
  let missing = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < recs.length) {
        const rec = recs[next++]!;
        try {
          const h = await client.workflow.getHandle(rec.workflowId).fetchHistory();
          rec.times = tradeTimes((h.events ?? []) as HistoryEventLike[]);
        } catch {
          missing++;
        }
      }
    }),
  );
  return missing;
}

interface PhaseReport {
  name: PhaseName;
  signals: number;
  publishErrors: number;
  drained: boolean;
  latencyMs: Dist;
  publishConfirmMs: Dist;
  stagesMs: Record<string, Dist>;
  rates?: {
    publishPerS: number;
    intakeStarts: { overall: number; sustained: number };
    ordersSubmitted: { overall: number; sustained: number; spanS: number };
    tradesCompleted: { overall: number; sustained: number; spanS: number };
  };
  cpuCores: Record<string, number>;
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
  /** Pipeline and stack CPU (Temporal, worker, intake, venue, PostgreSQL, RabbitMQ; not the bench). */
  cpuMs: number;
}

/** The `per trade:` line (issue 12). */
export function perTradeLine(c: PerTradeCounts): string {
  return (
    `per trade: ${f1(c.workflowTasks)} workflow tasks, ${f1(c.matchingDispatchesToOrder)} matching dispatches before ` +
    `the order, ${f1(c.historyEvents)} history events, ${f1(c.persistenceCalls)} persistence calls, ${f0(c.cpuMs)} ms CPU`
  );
}

function analysePhase(res: PhaseResult, recs: SignalRecord[], withRates: boolean): PhaseReport {
  const ok = recs.filter((r) => r.times && Number.isFinite(r.times.submitCompleted));
  const stagesMs: Record<string, Dist> = {};
  for (const s of STAGES) stagesMs[s.key] = dist(ok.map((r) => s.of(r.pubAt, r.times!)));
  const report: PhaseReport = {
    name: res.name,
    signals: res.signals,
    publishErrors: res.publishErrors,
    drained: res.drained,
    latencyMs: dist(ok.map((r) => r.times!.submitCompleted - r.pubAt)),
    publishConfirmMs: dist(recs.map((r) => (r.confirmedAt ?? NaN) - r.pubAt)),
    stagesMs,
    cpuCores: res.cpu,
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
      ordersSubmitted: rates(
        ok.map((r) => r.times!.submitCompleted),
        t0,
      ),
      tradesCompleted: rates(recs.map((r) => r.times?.wfCompleted ?? NaN).filter(Number.isFinite), t0),
    };
  }
  return report;
}

interface LossReport {
  published: number;
  publishErrors: number;
  workflowsOnTaskQueue: number;
  workflowsRunning: number;
  historiesMissing: number;
  ledgerTrades: number;
  ledgerTradesDistinctSignals: number;
  ledgerFilled: number;
  ledgerNotFilled: Record<string, number>;
  ledgerEntryOrders: number;
  ledgerEntryOrdersWithBrokerId: number;
  tradesWithOrderCountNot1: number;
  venueOrdersFound: number;
  venueOrdersFilled: number;
  venueMissing: string[];
  venuePositionQty: number | null;
  ledgerPositionQty: number;
  intakeQueueDepth: number | undefined;
  intakeDlqDepth: number | undefined;
  zeroLoss: boolean;
}

async function verifyZeroLoss(
  bench: Bench,
  client: Client,
  taskQueue: string,
  venueEnv: NodeJS.ProcessEnv,
  vhost: PrivateVhost,
  historiesMissing: number,
): Promise<LossReport> {
  const recs = bench.records.filter((r) => !r.publishError);
  const pool = bench.db.pool;
  const prefix = `bench-${bench.runId}-`;
  // Visibility on the dev server is eventually consistent: give it a moment to catch up.
  let onQueue = 0;
  let running = 0;
  for (let i = 0; i < 20; i++) {
    onQueue = (await client.workflow.count(`TaskQueue = "${taskQueue}"`)).count;
    running = (await client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`)).count;
    if (onQueue === recs.length && running === 0) break;
    await sleep(500);
  }
  const t = await pool.query(
    `SELECT count(*) AS n, count(DISTINCT signal_id) AS distinct_signals, count(*) FILTER (WHERE status = 'FILLED') AS filled
       FROM trades WHERE signal_id LIKE $1`,
    [`${prefix}%`],
  );
  const notFilled = await pool.query(
    `SELECT status, count(*) AS n FROM trades WHERE signal_id LIKE $1 AND status <> 'FILLED' GROUP BY status`,
    [`${prefix}%`],
  );
  const o = await pool.query(
    `SELECT count(*) AS n, count(broker_order_id) AS with_broker FROM orders
      WHERE workflow_id LIKE $1 AND parent_client_order_id IS NULL`,
    [`${tradeWorkflowId(prefix)}%`],
  );
  const per = await pool.query(
    `SELECT count(*) AS n FROM trades t
      WHERE t.signal_id LIKE $1
        AND (SELECT count(*) FROM orders o WHERE o.workflow_id = t.workflow_id AND o.parent_client_order_id IS NULL) <> 1`,
    [`${prefix}%`],
  );
  const pos = await pool.query(`SELECT coalesce(sum(qty), 0) AS q FROM positions WHERE symbol = $1`, [SYMBOL]);

  // The venue: every signal's order, by its client order id (the venue refuses a second order with the same id).
  const broker = createBroker(parseEnv(venueEnv).broker, createLogger('bench-venue-check', { level: 'warn' }));
  let found = 0;
  let filled = 0;
  const missing: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < recs.length) {
        const rec = recs[next++]!;
        const order = await broker.getOrderByClientOrderId(clientOrderIdFor(rec.workflowId)).catch(() => null);
        if (!order) missing.push(rec.signalId);
        else {
          found++;
          if (order.status === 'filled') filled++;
        }
      }
    }),
  );
  const venuePos = await broker
    .getPositions()
    .then((ps) => ps.find((p) => p.symbol === SYMBOL)?.qty ?? 0)
    .catch(() => null);
  await broker.close();

  const intakeQueueDepth = await vhost.queueDepth(INTAKE_SIGNALS_QUEUE).catch(() => undefined);
  const intakeDlqDepth = await vhost.queueDepth(dlqName(INTAKE_SIGNALS_QUEUE)).catch(() => undefined);

  const row = t.rows[0] as Record<string, string>;
  const orow = o.rows[0] as Record<string, string>;
  const r: LossReport = {
    published: recs.length,
    publishErrors: bench.records.length - recs.length,
    workflowsOnTaskQueue: onQueue,
    workflowsRunning: running,
    historiesMissing,
    ledgerTrades: Number(row.n),
    ledgerTradesDistinctSignals: Number(row.distinct_signals),
    ledgerFilled: Number(row.filled),
    ledgerNotFilled: Object.fromEntries(
      (notFilled.rows as Array<{ status: string; n: string }>).map((x) => [x.status, Number(x.n)]),
    ),
    ledgerEntryOrders: Number(orow.n),
    ledgerEntryOrdersWithBrokerId: Number(orow.with_broker),
    tradesWithOrderCountNot1: Number((per.rows[0] as { n: string }).n),
    venueOrdersFound: found,
    venueOrdersFilled: filled,
    venueMissing: missing.slice(0, 20),
    venuePositionQty: venuePos,
    ledgerPositionQty: Number((pos.rows[0] as { q: string }).q),
    intakeQueueDepth,
    intakeDlqDepth,
    zeroLoss: false,
  };
  const n = recs.length;
  r.zeroLoss =
    r.publishErrors === 0 &&
    r.workflowsOnTaskQueue === n &&
    r.workflowsRunning === 0 &&
    r.historiesMissing === 0 &&
    r.ledgerTrades === n &&
    r.ledgerTradesDistinctSignals === n &&
    r.ledgerFilled === n &&
    r.ledgerEntryOrders === n &&
    r.ledgerEntryOrdersWithBrokerId === n &&
    r.tradesWithOrderCountNot1 === 0 &&
    r.venueOrdersFound === n &&
    r.venueOrdersFilled === n &&
    r.venuePositionQty === r.ledgerPositionQty &&
    r.intakeQueueDepth === 0 &&
    (r.intakeDlqDepth ?? 0) === 0;
  return r;
}

// ------------------------------------------------------------------------------------------------ report

function formatReport(j: BenchJson): string {
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

  const lat = j.phases.find((p) => p.name === 'latency');
  const sat = j.phases.find((p) => p.name === 'saturation');
  const headline: string[][] = [];
  if (lat) {
    headline.push([
      `signal → order submitted at ${f1(j.options.rate)}/s (n=${lat.latencyMs.n})`,
      `p50 ${f0(lat.latencyMs.p50)} ms  p95 ${f0(lat.latencyMs.p95)} ms  p99 ${f0(lat.latencyMs.p99)} ms`,
      'p99 ≤ 250 ms',
      lat.latencyMs.p99 <= 250 ? 'met' : 'NOT met',
    ]);
  }
  if (sat?.rates) {
    headline.push([
      `trades/s at saturation (n=${sat.signals}), orders submitted`,
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
    const rows: string[][] = [
      ['signal → order submitted (total)', ...ms(p.latencyMs)],
      ...STAGES.map((s) => [`  ${s.label}`, ...ms(p.stagesMs[s.key]!)]),
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
              'orders submitted (submitOrder done)',
              f1(p.rates.ordersSubmitted.overall),
              f1(p.rates.ordersSubmitted.sustained),
              f1(p.rates.ordersSubmitted.spanS),
            ],
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

interface BenchJson {
  label?: string;
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
  phases: PhaseReport[];
  loss: LossReport;
  floor?: FloorReport;
  barsPublished: number;
  totalS: number;
}

/** The engine floor: a one-activity workflow on the same server, started by a client, run by a TS worker. */
interface FloorReport {
  burst: { n: number; perS: number };
  /** Start request → the activity's ActivityTaskCompleted (server time), like signal → order submitted. */
  atRate: { n: number; rate: number; latencyMs: Dist };
}

/**
 * Run the floor: a Worker in this process on a private task queue, N workflows started as fast as the client
 * can (window 200) and timed to their results, then workflows at the latency phase's rate.
 */
async function measureFloor(client: Client, address: string, runId: string, opts: BenchOptions): Promise<FloorReport> {
  const { NativeConnection, Worker } = await import('@temporalio/worker');
  const connection = await NativeConnection.connect({ address });
  const taskQueue = `bench-floor-${runId}`;
  try {
    const worker = await Worker.create({
      connection,
      taskQueue,
      workflowsPath: require.resolve('./bench-floor-workflow'),
      activities: { floorStep: async (n: number) => n },
    });
    return await worker.runUntil(async () => {
      const start = (id: string) =>
        client.workflow.start('oneActivityWorkflow', { taskQueue, workflowId: id, args: [1] });
      // Warm-up (bundle caches, sticky queues), excluded.
      await Promise.all(Array.from({ length: 10 }, (_, i) => start(`floor-${runId}-w${i}`).then((h) => h.result())));
      let next = 0;
      const t0 = Date.now();
      let last = t0;
      await Promise.all(
        Array.from({ length: 200 }, async () => {
          while (next < opts.floor) {
            const h = await start(`floor-${runId}-b${next++}`);
            await h.result();
            last = Math.max(last, Date.now());
          }
        }),
      );
      const burst = { n: opts.floor, perS: opts.floor / Math.max(0.001, (last - t0) / 1000) };
      const n = opts.signals;
      const startedAt: number[] = [];
      const handles: Array<Promise<string>> = [];
      const tr = Date.now();
      for (let i = 0; i < n; i++) {
        const due = tr + (i * 1000) / opts.rate;
        if (due > Date.now()) await sleep(due - Date.now());
        startedAt[i] = Date.now();
        handles.push(start(`floor-${runId}-r${i}`).then(async (h) => (await h.result(), h.workflowId)));
      }
      const ids = await Promise.all(handles);
      const latencies = await Promise.all(
        ids.map(async (id, i) => {
          const h = await client.workflow.getHandle(id).fetchHistory();
          const done = (h.events ?? []).find((e) => e.eventType === EV.ACT_COMPLETED);
          return done ? tsMs(done.eventTime as TsLike) - startedAt[i]! : NaN;
        }),
      );
      return { burst, atRate: { n, rate: opts.rate, latencyMs: dist(latencies) } };
    });
  } finally {
    await connection.close();
  }
}

// ------------------------------------------------------------------------------------------------ interrupted runs

/**
 * What a run created, on disk while it runs. Ctrl-C normally cleans up (services stopped, database and vhost
 * dropped, unfinished workflows terminated), but the tsx wrapper SIGKILLs a child that does not acknowledge a
 * signal within 30 ms (easy on a busy machine), so the next run cleans up after any run whose process is gone.
 */
interface RunMarker {
  pid: number;
  runId: string;
  database: string;
  vhost: string;
  taskQueue: string;
  temporalAddress: string;
  /** Service processes (tsx wrappers and their node children). */
  pids: number[];
}

const RUNS_DIR = path.join(ROOT, 'bench-results', '.runs');

function cmdlineOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function childPids(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

class RunRecord {
  private readonly file: string;
  constructor(private readonly m: RunMarker) {
    fs.mkdirSync(RUNS_DIR, { recursive: true });
    this.file = path.join(RUNS_DIR, `${m.runId}.json`);
    this.save();
  }
  addService(pid: number | undefined): void {
    if (!pid) return;
    this.m.pids = [...new Set([...this.m.pids, pid, ...childPids(pid)])];
    this.save();
  }
  remove(): void {
    fs.rmSync(this.file, { force: true });
  }
  private save(): void {
    fs.writeFileSync(this.file, `${JSON.stringify(this.m)}\n`);
  }
}

async function cleanUpInterruptedRuns(cfg: Config, vhostFor: (name: string) => PrivateVhost, say: (m: string) => void) {
  if (!fs.existsSync(RUNS_DIR)) return;
  for (const f of fs.readdirSync(RUNS_DIR).filter((x) => x.endsWith('.json'))) {
    let m: RunMarker;
    try {
      m = JSON.parse(fs.readFileSync(path.join(RUNS_DIR, f), 'utf8')) as RunMarker;
    } catch {
      continue;
    }
    if (cmdlineOf(m.pid).includes('bench-trades')) continue; // still running
    for (const pid of m.pids) {
      const cmd = cmdlineOf(pid);
      if (/src\/workers\/|bench-trades\.ts --internal-worker|start-dev/.test(cmd)) process.kill(pid, 'SIGTERM');
    }
    const admin = createClient(cfg.databaseUrl);
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${m.database} WITH (FORCE)`).finally(() => admin.end());
    await vhostFor(m.vhost)
      .drop()
      .catch(() => undefined);
    let terminated = 0;
    try {
      const connection = await Connection.connect({ address: m.temporalAddress, connectTimeout: 2000 });
      const client = new Client({ connection, namespace: cfg.temporal.namespace });
      for await (const w of client.workflow.list({
        query: `TaskQueue = "${m.taskQueue}" AND ExecutionStatus = "Running"`,
      })) {
        await client.workflow
          .getHandle(w.workflowId)
          .terminate('bench-trades: the run was interrupted')
          .then(
            () => terminated++,
            () => undefined,
          );
      }
      await connection.close();
    } catch {
      // a private dev server of that run is gone with its workflows
    }
    fs.rmSync(path.join(RUNS_DIR, f), { force: true });
    say(`cleaned up after interrupted run ${m.runId}: database, vhost, ${terminated} unfinished workflows`);
  }
}

// ------------------------------------------------------------------------------------------------ main

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
  const tStart = Date.now();
  const cfg = loadConfig();
  const say = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/[:.]/g, '-');
  const logDir = path.join(opts.out, 'logs', stamp);
  fs.mkdirSync(logDir, { recursive: true });
  const loadBefore = os.loadavg();

  const cleanups: Array<() => Promise<void>> = [];
  const services: Service[] = [];
  let exitCode = 1;
  // Stop the services, then drop the database and the vhost: at the end, on a failure, and on Ctrl-C.
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      for (const name of ['signal-intake', 'trade-worker', 'exchange-sim'] as const) {
        await Promise.all(services.filter((s) => s.kind === name).map((s) => stopService(s)));
      }
      for (const c of cleanups.reverse()) await c().catch((err: unknown) => say(`cleanup: ${String(err)}`));
      await Promise.all(services.filter((s) => s.kind === 'temporal-dev').map((s) => stopService(s)));
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    say(`${sig}: stopping the services and cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // Temporal: the stack's dev server, or a private one for an experiment.
    let temporalAddress = cfg.temporal.address;
    let temporalDesc = `${temporalAddress} (stack dev server: SQLite file, WAL, synchronous=NORMAL)`;
    let metricsUrl: string | undefined;
    let temporalRoots = () => {
      const pid =
        readPidFile(path.join(ROOT, '.data/run/temporal.pid')) ?? findPidByCmdline(/temporal server start-dev/);
      return pid ? [pid] : [];
    };
    if (opts.privateTemporal !== undefined) {
      say(`starting a private Temporal dev server: ${opts.privateTemporal || '(in-memory SQLite)'}`);
      const pt = await startPrivateTemporal(opts.privateTemporal, logDir);
      services.push(pt.svc);
      temporalAddress = pt.address;
      temporalDesc = `${pt.address} (private dev server ${opts.privateTemporal || 'in-memory SQLite'})`;
      temporalRoots = () => (pt.svc.child.pid ? [pt.svc.child.pid] : []);
      metricsUrl = pt.metricsUrl;
    }
    metricsUrl ??= await findMetricsUrl(temporalRoots()[0]);
    if (!metricsUrl) say('Temporal metrics endpoint not found: no persistence figures');

    const rabbitPass = process.env.RABBITMQ_PASS || 'stockautotrader-local';
    await cleanUpInterruptedRuns(cfg, (name) => new PrivateVhost(cfg, rabbitPass, name), say);

    const runId = randomBytes(4).toString('hex');
    const dbName = `sat_bench_${runId}`;
    const taskQueue = `bench-${runId}`;
    const record = new RunRecord({
      pid: process.pid,
      runId,
      database: dbName,
      vhost: `sat-bench-${runId}`,
      taskQueue,
      temporalAddress,
      pids: services.map((s) => s.child.pid ?? 0).filter(Boolean),
    });
    cleanups.unshift(async () => record.remove()); // runs last
    say(`creating database ${dbName}`);
    const db = await createBenchDatabase(cfg.databaseUrl, dbName);
    cleanups.push(async () => {
      if (opts.keepDb) say(`kept database ${db.name}`);
      else await db.drop();
    });

    const vhost = new PrivateVhost(cfg, rabbitPass, `sat-bench-${runId}`);
    await vhost.create();
    cleanups.push(async () => {
      if (opts.keepDb) say(`kept RabbitMQ vhost ${vhost.name}`);
      else await vhost.drop();
    });

    const simPort = await freePort();
    const prefetch = opts.prefetch ?? cfg.rabbitmq.signalPrefetch;
    const intakeInWorker = (opts.intake ?? (cfg.rabbitmq.intakeInWorker ? 'worker' : 'process')) === 'worker';
    const intakes = intakeInWorker ? 0 : opts.intakes;
    // Generous risk limits so every signal is approved: the benchmark measures the path, not the limits.
    const childOverrides: Record<string, string> = {
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_TASK_QUEUE: taskQueue,
      RABBITMQ_VHOST: vhost.name,
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
      ...(opts.servicesFrom ? { BENCH_SERVICES_ROOT: opts.servicesFrom } : {}),
    };
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...childOverrides };
    const childCfg = parseEnv(childEnv);

    // CPU groups, measured from /proc during each phase.
    const pidsOf = (kind: ServiceKind) => () =>
      services.filter((s) => s.kind === kind && s.child.pid).map((s) => s.child.pid!);
    const sampler = new CpuSampler([
      { name: 'temporal', roots: temporalRoots },
      { name: 'trade-worker', roots: pidsOf('trade-worker'), threads: true },
      { name: 'signal-intake', roots: pidsOf('signal-intake'), threads: true },
      { name: 'exchange-sim', roots: pidsOf('exchange-sim'), threads: true },
      {
        name: 'postgres',
        roots: () => {
          const pid =
            readPidFile(path.join(ROOT, '.data/postgres/postmaster.pid')) ?? findPidByCmdline(/postgres -D|postmaster/);
          return pid ? [pid] : [];
        },
      },
      {
        name: 'rabbitmq',
        roots: () => {
          const pid = readPidFile(path.join(ROOT, '.data/rabbitmq/node.pid')) ?? findPidByCmdline(/beam\.smp.*rabbit/);
          return pid ? [pid] : [];
        },
      },
      { name: 'bench', roots: () => [process.pid] },
    ]);

    const connection = await Connection.connect({ address: temporalAddress });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace: cfg.temporal.namespace });
    // After a failure or Ctrl-C: end this run's unfinished trades, so nothing of it lingers on the shared server
    // (their task queue has no worker any more and their database is gone). A complete run has none.
    cleanups.push(async () => {
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

    // Readiness that does not depend on the log level: the venue and the intake consume their queues, the
    // worker polls the task queue.
    const consumers = async (queue: string) => (await vhost.queueInfo(queue))?.consumers ?? 0;
    const workflowPollers = async () => {
      const r = await client.workflowService.describeTaskQueue({
        namespace: cfg.temporal.namespace,
        taskQueue: { name: taskQueue, kind: TASK_QUEUE_KIND_NORMAL },
        taskQueueType: TASK_QUEUE_TYPE_WORKFLOW,
      });
      return new Set((r.pollers ?? []).map((p) => p.identity)).size;
    };
    const probes: Record<Exclude<ServiceKind, 'temporal-dev'>, (index: number) => Promise<boolean>> = {
      'exchange-sim': async () => (await consumers(EXCHANGE_BARS_QUEUE)) >= 1,
      'trade-worker': async (i) => (await workflowPollers()) >= i + 1,
      'signal-intake': async (i) => (await consumers(INTAKE_SIGNALS_QUEUE)) >= i + 1,
    };

    // Services: venue first (the worker reconciles against it at start), then the worker(s), then intake; one
    // at a time so that each probe counts only its predecessors.
    const start = async (kind: Exclude<ServiceKind, 'temporal-dev'>, index: number) => {
      const name = index > 0 ? `${kind}-${index + 1}` : kind;
      const tuned = kind === 'trade-worker' && Object.keys(opts.workerTuning).length > 0;
      const args = tuned ? [SELF, '--internal-worker'] : [path.join(opts.servicesFrom ?? ROOT, SCRIPTS[kind].script)];
      const env = tuned ? { ...childEnv, BENCH_WORKER_TUNING: JSON.stringify(opts.workerTuning) } : childEnv;
      const svc = spawnLogged(name, kind, TSX, args, env, logDir);
      services.push(svc);
      record.addService(svc.child.pid);
      const ready = SCRIPTS[kind].ready;
      await waitReady(svc, index === 0 ? ready : /$^/, () => probes[kind](index), 120_000);
      record.addService(svc.child.pid); // now with the node process tsx started
    };
    say(
      `starting exchange-sim (port ${simPort}), ${opts.workers} trade-worker${
        intakeInWorker ? ' with intake inside (eager start)' : `, ${intakes} signal-intake`
      }; logs in ${path.relative(process.cwd(), logDir)}`,
    );
    await start('exchange-sim', 0);
    for (let i = 0; i < opts.workers; i++) await start('trade-worker', i);
    for (let i = 0; i < intakes; i++) await start('signal-intake', i);
    const rabbit = new RabbitConnection({
      url: childCfg.rabbitmq.url,
      name: `bench-trades-${process.pid}`,
      logger: createLogger('bench', { level: 'warn' }),
      // Services from another checkout declared their own topology (possibly older queue types): leave it.
      ...(opts.servicesFrom ? {} : { setup: assertTopologyOn }),
    });
    const publisher = new ConfirmPublisher(rabbit, { logger: createLogger('bench', { level: 'warn' }) });
    await rabbit.start();
    cleanups.push(async () => {
      await publisher.close().catch(() => undefined);
      await rabbit.close().catch(() => undefined);
    });

    const bench = new Bench(runId, opts, db, publisher, sampler, metricsUrl);
    await bench.publishBar(); // the venue learns the symbol and a price

    const phases: PhaseResult[] = [];
    if (opts.warmup > 0) {
      say(`warm-up: ${opts.warmup} signals at ${opts.rate}/s (excluded from the figures)`);
      phases.push(await bench.runPhase('warmup', opts.warmup, { rate: opts.rate }));
    }
    const healthy = () => phases.every((p) => p.drained);
    if (opts.signals > 0 && healthy()) {
      say(`latency phase: ${opts.signals} signals at ${opts.rate}/s`);
      phases.push(await bench.runPhase('latency', opts.signals, { rate: opts.rate }));
    }
    if (opts.saturation > 0 && healthy()) {
      await sleep(1000); // let the latency phase's tail leave the servers' queues
      say(`saturation phase: ${opts.saturation} signals as fast as confirms allow (window ${opts.window})`);
      phases.push(await bench.runPhase('saturation', opts.saturation, { window: opts.window }));
    }

    say(`reading ${bench.records.length} workflow histories`);
    const historiesMissing = await attachHistories(
      client,
      bench.records.filter((r) => !r.publishError),
    );
    say('checking zero loss: Temporal, ledger, venue, queues');
    const loss = await verifyZeroLoss(bench, client, taskQueue, childEnv, vhost, historiesMissing);
    let floor: FloorReport | undefined;
    if (opts.floor > 0) {
      say(`engine floor: ${opts.floor} one-activity workflows in a burst, then ${opts.signals} at ${opts.rate}/s`);
      floor = await measureFloor(client, temporalAddress, runId, opts).catch((err: unknown) => {
        say(`engine floor failed: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      });
    }

    const reports = phases.map((p) =>
      analysePhase(
        p,
        bench.records.filter((r) => r.phase === p.name),
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
        temporal: temporalDesc,
        vhost: vhost.name,
        database: db.name,
        taskQueue,
        prefetch,
        intakes,
        intakeInWorker,
        workers: opts.workers,
        workerTuning: opts.workerTuning,
        logLevel: opts.logLevel,
        barIntervalMs: opts.barIntervalMs,
        childEnv: Object.fromEntries(Object.entries(childOverrides).filter(([k]) => k !== 'DATABASE_URL')),
      },
      phases: reports,
      loss,
      ...(floor ? { floor } : {}),
      barsPublished: bench.barsPublished,
      totalS: (Date.now() - tStart) / 1000,
    };
    fs.mkdirSync(opts.out, { recursive: true });
    fs.writeFileSync(jsonPath, `${JSON.stringify({ ...json, signals: compactRecords(bench.records) }, null, 1)}\n`);
    process.stdout.write(`${formatReport(json)}\n`);
    exitCode = loss.zeroLoss && phases.every((p) => p.drained) ? 0 : 1;
  } finally {
    await cleanUp();
    say(`done in ${f1((Date.now() - tStart) / 1000)} s`);
  }
  return exitCode;
}

function gitRevision(dir = ROOT): string {
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

/** Per-signal times for the JSON file (ms, relative to the signal's publish). */
function compactRecords(recs: SignalRecord[]): unknown[] {
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
            riskCompleted: rel(r.times.riskCompleted),
            submitCompleted: rel(r.times.submitCompleted),
            wfCompleted: rel(r.times.wfCompleted),
          }
        : {}),
    };
  });
}

/**
 * `--internal-worker`: the product trade worker (runTradeWorker, unchanged) with some Worker.create options
 * overridden from BENCH_WORKER_TUNING, to measure worker tunings without editing the worker.
 */
async function internalWorker(): Promise<void> {
  const tuning = JSON.parse(process.env.BENCH_WORKER_TUNING ?? '{}') as Record<string, unknown>;
  const workerModule = await import('@temporalio/worker');
  const W = workerModule.Worker as unknown as { create: (o: Record<string, unknown>) => Promise<unknown> };
  const original = W.create.bind(W);
  W.create = (o) => original({ ...o, ...tuning });
  const { runTradeWorker } = await import('../workers/trade-worker');
  const { installTemporalRuntime } = await import('../workers/temporal-runtime');
  const cfg = loadConfig();
  const log = createLogger('trade-worker', { level: cfg.logLevel });
  log.info({ tuning }, 'bench: worker options overridden');
  installTemporalRuntime(log);
  await runTradeWorker(cfg, log);
}

if (require.main === module) {
  if (process.argv.includes('--internal-worker')) {
    internalWorker().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(
          `bench worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
        );
        process.exit(1);
      },
    );
  } else {
    main(process.argv.slice(2)).then(
      (code) => process.exit(code),
      (err: unknown) => {
        process.stderr.write(
          `bench-trades failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
        );
        process.exit(1);
      },
    );
  }
}
