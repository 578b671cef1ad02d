/**
 * The main job (`npm start`): every part of the pipeline on the local stack, on replayed real market data
 * and the simulated exchange, with no API keys.
 *
 *   exchange-sim   simulated venue (Alpaca v2 wire) fed by bars
 *   trade-worker   tradeWorkflow + RiskOps/ExecConnect/ledger activities
 *   signal-intake  trade_signals → one workflow per signal
 *   bar-store      bars → market_bars (RiskOps reads realised volatility and ATR from it)
 *   quant          bars → strategy → trade_signals
 *   dataflow       watchlist replay (NVDA+ORCL) → market.bars   (runs last; its end ends the replay)
 *
 * When the replay has been published and every trade has settled it prints a summary from the ledger and
 * stops the processes (the stack stays up; `--keep-running` leaves the services running for more signals).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../config';
import { createPool } from '../adapters/postgres/pool';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

const USAGE = `Usage: npm start -- [options]

Runs the whole pipeline on the local stack: replayed market data (WATCHLIST, default NVDA and ORCL daily
bars from ../shared/data, interleaved by time) → quant (STRATEGY_TYPE, default SMA crossover) → signal intake → one Temporal trade
workflow per signal → RiskOps → simulated exchange → ledger. Prints a summary when every trade has settled.

Options:
  --bars <n>          bars to replay per symbol (default REPLAY_BARS=300)
  --from <date>       first bar date (default 2012-12-19: 2013-2014)
  --interval-ms <ms>  pause between bars (default REPLAY_INTERVAL_MS=50)
  --keep-running      leave the services running after the summary (Ctrl-C stops them)
  -h, --help          this help

Watch trades live in the Temporal Web UI: http://localhost:8233  (filter: TradeStatus="FILLED")
`;

interface Service {
  name: string;
  child: ChildProcess;
  exited: Promise<number>;
}

function startService(name: string, script: string, args: string[], env: NodeJS.ProcessEnv): Service {
  const child = spawn(TSX, [path.join(ROOT, script), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = `${name.padEnd(13)}|`;
  const forward = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) => {
    let buf = '';
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        out.write(`${prefix} ${buf.slice(0, i)}\n`);
        buf = buf.slice(i + 1);
      }
    });
  };
  forward(child.stdout!, process.stdout);
  forward(child.stderr!, process.stderr);
  const exited = new Promise<number>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1))));
  return { name, child, exited };
}

async function stopService(s: Service): Promise<void> {
  if (s.child.exitCode !== null) return;
  s.child.kill('SIGTERM');
  const timeout = new Promise<number>((r) => setTimeout(() => r(-1), 15_000).unref());
  if ((await Promise.race([s.exited, timeout])) === -1) s.child.kill('SIGKILL');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bars: { type: 'string' },
      from: { type: 'string', default: '2012-12-19' },
      'interval-ms': { type: 'string' },
      'keep-running': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const cfg = loadConfig();
  // The simulated venue starts empty on every run, so each run trades a fresh paper account in the ledger
  // (earlier runs' accounts stay there for inspection). Set ACCOUNT_ID to keep trading one account.
  const accountId = process.env.ACCOUNT_ID || `paper-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
  const childEnv = { ACCOUNT_ID: accountId };
  const pool = createPool(cfg.databaseUrl, 2);
  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();

  const say = (msg: string) => process.stdout.write(`pipeline      | ${msg}\n`);
  say(`starting services for paper account ${accountId} (Web UI: http://localhost:${cfg.temporal.uiPort})`);
  const services = [
    startService('exchange-sim', 'src/workers/exchange-sim.ts', [], childEnv),
    startService('trade-worker', 'src/workers/trade-worker.ts', [], childEnv),
    startService('signal-intake', 'src/workers/signal-intake.ts', [], childEnv),
    startService('bar-store', 'src/workers/bar-store.ts', [], childEnv),
    startService('quant', 'src/workers/quant.ts', [], childEnv),
  ];
  const stopAll = async () => {
    for (const s of [...services].reverse()) await stopService(s);
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  process.once('SIGTERM', () => void stopAll().then(() => process.exit(143)));

  // Give the consumers time to subscribe before bars flow (queues are durable, so nothing would be lost
  // either way; this only keeps the first trades' latency honest).
  await new Promise((r) => setTimeout(r, 4000));
  for (const s of services) {
    if (s.child.exitCode !== null) throw new Error(`${s.name} exited with code ${s.child.exitCode} during start-up`);
  }
  const dfArgs = ['--from', values.from!];
  if (values.bars) dfArgs.push('--bars', values.bars);
  if (values['interval-ms']) dfArgs.push('--interval-ms', values['interval-ms']);
  const dataflow = startService('dataflow', 'src/workers/dataflow.ts', dfArgs, childEnv);
  const dfCode = await dataflow.exited;
  if (dfCode !== 0) {
    await stopAll();
    throw new Error(`dataflow exited with code ${dfCode}`);
  }
  say('replay published; waiting for every trade to settle');

  // Settled = no trade workflow started during this run is still running. An order submitted after the last
  // replayed bar has nothing left to fill against: it rests at the venue until its time-in-force deadline, so
  // stop waiting once nothing has changed for a while and say which trades are still open.
  const query = `WorkflowType="tradeWorkflow" AND ExecutionStatus="Running" AND TaskQueue="${cfg.temporal.taskQueue}" AND StartTime >= "${startedAt}"`;
  let last = -1;
  let unchanged = 0;
  for (let i = 0; i < 300; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const { count } = await client.workflow.count(query);
    if (count === 0) break;
    unchanged = count === last ? unchanged + 1 : 0;
    last = count;
    if (unchanged >= 20) break;
    if (i % 5 === 4) say(`${count} trade(s) still running`);
  }
  const open: string[] = [];
  for await (const wf of client.workflow.list({ query })) open.push(wf.workflowId);
  if (open.length) {
    say(`${open.length} order(s) still resting at the venue (no later bar to fill against); they end at their`);
    say('time-in-force deadline, or cancel one by hand:');
    for (const id of open.slice(0, 5)) say(`  temporal workflow cancel --workflow-id ${id}`);
    say('(a cancel is carried out by a running worker: use `npm start -- --keep-running`, or run');
    say(' `npm run exchange-sim` and `npm run worker` beside it)');
  }

  const trades = await pool.query<{ status: string; reason_code: string | null; n: string }>(
    `SELECT status, reason_code, count(*) AS n FROM trades WHERE account_id = $1 GROUP BY 1, 2 ORDER BY 3 DESC`,
    [accountId],
  );
  const positions = await pool.query<{
    symbol: string;
    qty: string;
    avg_cost: string;
    realized_pnl: string;
    last_price: string | null;
  }>(`SELECT symbol, qty, avg_cost, realized_pnl, last_price FROM positions WHERE account_id = $1 ORDER BY symbol`, [
    accountId,
  ]);
  const account = await pool.query<{ cash: string; starting_cash: string }>(
    `SELECT cash, starting_cash FROM accounts WHERE account_id = $1`,
    [accountId],
  );
  const fills = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM fills WHERE account_id = $1`, [accountId]);

  say(`summary after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  say('trades this run (ledger):');
  if (trades.rows.length === 0) say('  (none: the strategy produced no signal in this window)');
  for (const r of trades.rows) say(`  ${r.status.padEnd(18)} ${(r.reason_code ?? '').padEnd(24)} ${r.n}`);
  say(`fills booked this run: ${fills.rows[0]?.n ?? 0}`);
  let marked = 0;
  for (const p of positions.rows) {
    const qty = Number(p.qty);
    marked += qty * Number(p.last_price ?? p.avg_cost);
    say(
      `  position ${p.symbol}: ${qty} @ avg ${Number(p.avg_cost).toFixed(4)}, realised P&L ${Number(p.realized_pnl).toFixed(2)}`,
    );
  }
  const cash = Number(account.rows[0]?.cash ?? 0);
  say(
    `cash ${cash.toFixed(2)}, equity (marked at last fill) ${(cash + marked).toFixed(2)}, started with ${Number(account.rows[0]?.starting_cash ?? 0).toFixed(2)}`,
  );
  say(
    `inspect trades: temporal workflow list --query 'WorkflowType="tradeWorkflow"'   or http://localhost:${cfg.temporal.uiPort}`,
  );

  await pool.end();
  await connection.close();
  if (values['keep-running']) {
    say('services keep running (Ctrl-C to stop)');
    await Promise.race(services.map((s) => s.exited));
    await stopAll();
    return;
  }
  await stopAll();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`pipeline: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
