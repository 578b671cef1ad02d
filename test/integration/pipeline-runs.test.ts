import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { EPHEMERAL_OPS_ENV, parseEnv } from '../../src/config';
import { loadBars } from '../../src/adapters/postgres/bars';
import { riskLimits } from '../../src/domain/risk';
import { createTestDatabase, type TestDatabase } from '../support/pg';
import { expectSizedFromBars, type AtrSizedDecision } from '../support/risk-decisions';
import { createPrivateVhost, dropPrivateVhost, freePort } from '../support/pipeline';
import { devServerAddress, uniqueTaskQueue } from '../support/temporal';

/**
 * `npm start` (src/cli/pipeline.ts) for real, several times, on the real servers: the whole chain of real processes
 * (dataflow replay of real NVDA bars → quant → intake → trade worker → simulated venue, plus the bar store).
 * Isolated by a fresh database, a private RabbitMQ vhost, a private task queue, a free venue port and free
 * metrics ports.
 */

const ROOT = path.resolve(__dirname, '../..');
const REPLAY = ['--symbols', 'NVDA', '--bars', '70', '--interval-ms', '25'];

interface Run {
  code: number;
  out: string;
  account: string;
  barsPublished: number;
  barsIn: number;
  signals: number;
  started: number;
  duplicates: number;
  /** Trades by final status, as the worker's /metrics counted them (the last progress line). */
  metricTrades: Record<string, number>;
  logDir: string;
}

function parseRun(code: number, out: string): Run {
  const account = /paper account (\S+);/.exec(out)?.[1] ?? '';
  const q = /quant: (\d+) bars in, (\d+) signals; intake: (\d+) trades started, (\d+) duplicates/.exec(out);
  const df = /dataflow summary: round 1: (\d+) bars/.exec(out);
  const progress = out.split('\n').filter((l) => l.includes('progress:'));
  const metricTrades: Record<string, number> = {};
  for (const m of (progress.at(-1) ?? '').matchAll(/(\d+) ([A-Z_]+)\b/g)) metricTrades[m[2]!] = Number(m[1]);
  return {
    code,
    out,
    account,
    barsPublished: Number(df?.[1] ?? 0),
    barsIn: Number(q?.[1] ?? -1),
    signals: Number(q?.[2] ?? -1),
    started: Number(q?.[3] ?? -1),
    duplicates: Number(q?.[4] ?? -1),
    metricTrades,
    logDir: path.join(ROOT, '.data/logs', account),
  };
}

function temporalBinary(): string {
  if (process.env.TEMPORAL_CLI) return process.env.TEMPORAL_CLI;
  const cached = path.join(ROOT, '.tools/bin/temporal');
  if (fs.existsSync(cached)) return cached;
  return execFileSync('bash', [path.join(ROOT, 'scripts/provision/temporal-cli.sh')], { encoding: 'utf8' }).trim();
}

describe('npm start: the whole chain, run again and again, stopped with Ctrl-C', () => {
  let db: TestDatabase;
  let env: NodeJS.ProcessEnv;
  let taskQueue: string;
  let vhost: string | undefined;
  let connection: Connection;
  let client: Client;
  const runs: Run[] = [];

  /** Run the pipeline; `interruptWhen` sends one SIGINT as soon as the output matches it. */
  function runPipeline(args: string[], interruptWhen?: RegExp): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--require', 'tsx/preflight', '--import', 'tsx', path.join(ROOT, 'src/cli/pipeline.ts'), ...args],
        { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let interrupted = false;
      const onData = (d: Buffer) => {
        out += d.toString();
        if (interruptWhen && !interrupted && interruptWhen.test(out)) {
          interrupted = true;
          child.kill('SIGINT');
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', reject);
      child.on('close', (code) => resolve(parseRun(code ?? -1, out)));
    });
  }

  beforeAll(async () => {
    db = await createTestDatabase('sat_runs');
    taskQueue = uniqueTaskQueue('runs');
    const priv = await createPrivateVhost(taskQueue);
    vhost = priv.SAT_TEST_PRIVATE_VHOST;
    env = {
      ...process.env,
      ...priv,
      ...EPHEMERAL_OPS_ENV,
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: devServerAddress(),
      TEMPORAL_TASK_QUEUE: taskQueue,
      SIM_EXCHANGE_PORT: String(await freePort()),
      WORKER_SHUTDOWN_GRACE_MS: '2000',
      // Debug: every service logs each bar it handles with the bar's correlation_id.
      LOG_LEVEL: 'debug',
    };
    connection = await Connection.connect({ address: devServerAddress() });
    client = new Client({ connection });
    // Two runs one after the other, both from scratch: the second must trade as the first did.
    runs.push(await runPipeline(REPLAY));
    runs.push(await runPipeline(REPLAY));
  }, 400_000);
  afterAll(async () => {
    await connection?.close();
    await db?.drop();
    if (vhost) await dropPrivateVhost(vhost);
  });

  const tradesOf = async (account: string) =>
    (
      await db.pool.query<{ workflow_id: string; signal_id: string; status: string; correlation_id: string }>(
        `SELECT workflow_id, signal_id, status, correlation_id FROM trades WHERE account_id = $1`,
        [account],
      )
    ).rows;

  it('trades on every run: a second run on the same bars trades again, under new signal ids', async () => {
    const [a, b] = runs as [Run, Run];
    for (const r of [a, b]) {
      expect(r.code, r.out.slice(-3000)).toBe(0);
      expect(r.barsPublished).toBe(70);
      expect(r.barsIn).toBe(70);
      expect(r.signals).toBeGreaterThan(0);
      expect(r.started).toBe(r.signals);
      expect(r.duplicates).toBe(0);
    }
    expect(b.account).not.toBe(a.account);
    // The strategy is deterministic: the same bars give the same number of signals.
    expect(b.signals).toBe(a.signals);
    const ta = await tradesOf(a.account);
    const tb = await tradesOf(b.account);
    expect(ta).toHaveLength(a.signals);
    expect(tb).toHaveLength(b.signals);
    const idsA = new Set(ta.map((t) => t.signal_id));
    for (const t of tb) expect(idsA.has(t.signal_id)).toBe(false);
  });

  it('says when a run on an account that already traded these bars found only duplicates', async () => {
    const again = await runPipeline([...REPLAY, '--account', runs[1]!.account]);
    expect(again.code, again.out.slice(-3000)).toBe(0);
    expect(again.started).toBe(0);
    expect(again.duplicates).toBe(runs[1]!.signals);
    expect(again.out).toContain(`all ${runs[1]!.signals} signals were duplicates of an earlier run`);
    expect(again.out).not.toContain('the strategy produced no signal');
    expect(await tradesOf(runs[1]!.account)).toHaveLength(runs[1]!.signals);
  }, 200_000);

  it('gives every signal exactly one workflow, closed as completed, rejected or cancelled', async () => {
    const run = runs[0]!;
    const signalIds = new Set<string>();
    for (const line of fs.readFileSync(path.join(run.logDir, 'quant.log'), 'utf8').split('\n')) {
      if (!line.includes('"signal: ')) continue;
      signalIds.add((JSON.parse(line) as { signal_id: string }).signal_id);
    }
    expect(signalIds.size).toBe(run.signals);
    for (const id of signalIds) {
      const { count } = await client.workflow.count(`WorkflowId = "trade-${id}"`);
      expect(count, id).toBe(1);
      const desc = await client.workflow.getHandle(`trade-${id}`).describe();
      expect(['COMPLETED', 'CANCELLED'], id).toContain(desc.status.name);
      if (desc.status.name === 'COMPLETED') {
        const result = await client.workflow.getHandle(`trade-${id}`).result();
        expect(['FILLED', 'REJECTED', 'CANCELLED', 'PARTIALLY_FILLED', 'EXPIRED'], id).toContain(result.phase);
      }
    }
    const { count: open } = await client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`);
    expect(open).toBe(0);
  });

  it("books exactly the venue's fills in the ledger", async () => {
    for (const run of runs.slice(0, 2)) {
      const venue: string[] = [];
      for (const line of fs.readFileSync(path.join(run.logDir, 'exchange-sim.log'), 'utf8').split('\n')) {
        if (!line.includes('"message":"fill"')) continue;
        const f = JSON.parse(line) as { client_order_id: string; qty: number; price: number };
        venue.push(`${f.client_order_id} ${f.qty} ${f.price.toFixed(4)}`);
      }
      const ledger = await db.pool.query<{ client_order_id: string; qty: string; price: string }>(
        `SELECT client_order_id, qty, price FROM fills WHERE account_id = $1`,
        [run.account],
      );
      const booked = ledger.rows.map((r) => `${r.client_order_id} ${Number(r.qty)} ${Number(r.price).toFixed(4)}`);
      expect(booked.sort()).toEqual(venue.sort());
    }
  });

  it('sizes trades by ATR from the bar store: a decision records the ATR and volatility of the stored bars', async () => {
    // npm start runs the bar store beside the quant; RiskOps reads the stored bars of the signal's symbol. The first
    // signals come before 15 bars exist and fall back to the 5 % stop; a later one must be sized by the ATR stop.
    const run = runs[0]!;
    const { rows } = await db.pool.query<AtrSizedDecision>(
      `SELECT symbol, signal_at, result, checks FROM risk_decisions
        WHERE account_id = $1 AND result->'sizing'->>'method' = 'atr' ORDER BY signal_at`,
      [run.account],
    );
    expect(rows.length, 'risk decisions sized by ATR').toBeGreaterThan(0);
    const stored = await loadBars(db.pool, 'NVDA', '1d');
    expect(stored).toHaveLength(70); // both runs replayed the same bars: stored once each
    const limits = riskLimits(parseEnv(env).risk);
    let volatilityApplied = 0;
    for (const d of rows) if (expectSizedFromBars(d, stored, limits)) volatilityApplied++;
    expect(volatilityApplied, 'decisions that applied the realised-volatility check').toBeGreaterThan(0);
  });

  it('lists the trades with `temporal workflow list --query Symbol="NVDA"`', async () => {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        temporalBinary(),
        [
          'workflow',
          'list',
          '--address',
          devServerAddress(),
          '--query',
          `Symbol="NVDA" AND TaskQueue="${taskQueue}"`,
          '--output',
          'json',
        ],
        { maxBuffer: 16 * 1024 * 1024 },
        (err, out) => (err ? reject(err) : resolve(out)),
      ),
    );
    const listed = new Set(
      (JSON.parse(stdout) as Array<{ execution: { workflowId: string } }>).map((w) => w.execution.workflowId),
    );
    const trades = [...(await tradesOf(runs[0]!.account)), ...(await tradesOf(runs[1]!.account))];
    expect(listed.size).toBe(trades.length);
    for (const t of trades) expect(listed.has(t.workflow_id)).toBe(true);
  });

  it('/metrics counted what the ledger holds', async () => {
    for (const run of runs.slice(0, 2)) {
      const byStatus: Record<string, number> = {};
      for (const t of await tradesOf(run.account)) byStatus[t.status] = (byStatus[t.status] ?? 0) + 1;
      // The progress line is read from the worker's /metrics (sat_trades_finished_total by status).
      for (const [status, n] of Object.entries(byStatus)) expect(run.metricTrades[status], status).toBe(n);
    }
  });

  it("follows one correlation_id through every service's logs, the workflow memo and the ledger rows", async () => {
    const run = runs[0]!;
    const trades = await tradesOf(run.account);
    const traded = trades.find((t) => t.status === 'FILLED') ?? trades[0]!;
    const corr = traded.correlation_id;
    const linesOf = (service: string) =>
      fs
        .readFileSync(path.join(run.logDir, `${service}.log`), 'utf8')
        .split('\n')
        .filter((l) => l.includes(`"correlation_id":"${corr}"`));
    for (const service of ['dataflow', 'bar-store', 'exchange-sim', 'quant', 'trade-worker']) {
      expect(linesOf(service).length, `${service} logs ${corr}`).toBeGreaterThan(0);
    }
    // npm start runs the intake inside the trade worker (INTAKE_IN_WORKER's default): its lines are there.
    expect(fs.existsSync(path.join(run.logDir, 'signal-intake.log'))).toBe(false);
    expect(
      linesOf('trade-worker').filter((l) => l.includes('"component":"signal-intake"')).length,
      `the worker's intake logs ${corr}`,
    ).toBeGreaterThan(0);
    const desc = await client.workflow.getHandle(traded.workflow_id).describe();
    expect(desc.memo?.correlation_id).toBe(corr);
    const orders = await db.pool.query(`SELECT correlation_id FROM orders WHERE workflow_id = $1`, [
      traded.workflow_id,
    ]);
    for (const o of orders.rows as Array<{ correlation_id: string }>) expect(o.correlation_id).toBe(corr);
    if (traded.status === 'FILLED') {
      const fills = await db.pool.query(`SELECT correlation_id FROM fills WHERE client_order_id = $1`, [
        traded.workflow_id,
      ]);
      expect(fills.rows.length).toBeGreaterThan(0);
      for (const f of fills.rows as Array<{ correlation_id: string }>) expect(f.correlation_id).toBe(corr);
    }
  });

  it('Ctrl-C stops everything cleanly and loses nothing: every published bar and signal is processed', async () => {
    // Interrupted mid-replay: as soon as the progress line shows bars flowing.
    const run = await runPipeline(
      ['--symbols', 'NVDA', '--bars', '300', '--interval-ms', '40'],
      /progress: [1-9]\d* bars/,
    );
    expect(run.code, run.out.slice(-3000)).toBe(130);
    expect(run.out).toContain('Ctrl-C: stopping the replay');
    // Stopped part-way: some bars, not all.
    expect(run.barsPublished).toBeGreaterThan(0);
    expect(run.barsPublished).toBeLessThan(300);
    // Every confirmed bar reached the quant, every signal became a trade.
    expect(run.barsIn).toBe(run.barsPublished);
    expect(run.started + run.duplicates).toBe(run.signals);
    expect(await tradesOf(run.account)).toHaveLength(run.started);
    const { count: open } = await client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`);
    expect(open).toBe(0);
  }, 200_000);
});
