import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '@temporalio/worker';
import { SIM_PLACEHOLDER_KEY, SIM_PLACEHOLDER_SECRET } from '../../src/adapters/brokers';
import type { TradeSignal } from '../../src/contracts/signal';
import type { TradeStatus } from '../../src/workflows/shared';
import { historyFromFixtureJson } from '../../scripts/record-histories';
import { PipelineHarness } from '../support/pipeline';
import { devServerAddress, quietTemporalRuntime, tradeWorkflowBundle } from '../support/temporal';

/**
 * The command lines of docs/temporal-cli.md, run for real: the `temporal` CLI binary against the dev server, with
 * the venue (exchange-sim) and a trade worker of this file's own (PipelineHarness: private task queue, database and
 * venue port). The templates below are the single source: the doc check asserts that each one, rendered with the
 * doc's example values (DOC), appears verbatim in the doc; the tests render them with this run's task queue,
 * workflow ids and signals and execute the text through bash.
 */

// ---------------------------------------------------------------------------------------------------------------
// Command templates (shared text with docs/temporal-cli.md)

interface Params {
  address: string;
  taskQueue: string;
  signal: TradeSignal;
  /** For `show … --output json > FILE`. */
  historyFile?: string;
  query?: string;
}

const workflowIdOf = (p: Params) => `trade-${p.signal.signal_id}`;
/** The workflow input, on one line, inside single quotes: `{"signal":{…}}`. */
const inputOf = (p: Params) => JSON.stringify({ signal: p.signal });

/** What a producer would send: the signal without the fields the contract defaults. */
const rawSignalOf = (p: Params) => {
  const { schema_version: _v, asset_class: _a, order, ...rest } = p.signal;
  const { type: _t, time_in_force: _tif, ...orderRest } = order ?? {};
  return JSON.stringify(order ? { ...rest, order: { type: order.type, ...orderRest } } : rest);
};

const COMMANDS = {
  /** Validate a signal with the contract (defaults applied) and print the workflow input: run from the repo root. */
  validate: (p: Params) =>
    `echo '${rawSignalOf(p)}' | npx tsx -e 'const { parseTradeSignal } = require("./src/contracts/signal"); ` +
    `const r = parseTradeSignal(require("fs").readFileSync(0)); ` +
    `console.log(r.ok ? JSON.stringify({ signal: r.value }) : "invalid signal: " + r.reason); process.exitCode = r.ok ? 0 : 1;'`,
  /** Minimal manual start: the flags that matter for exactly-once (id + reuse policy + --fail-existing). */
  start: (p: Params) =>
    [
      `temporal workflow start \\`,
      `  --address ${p.address} \\`,
      `  --type tradeWorkflowV2 \\`,
      `  --task-queue ${p.taskQueue} \\`,
      `  --workflow-id ${workflowIdOf(p)} \\`,
      `  --id-reuse-policy RejectDuplicate \\`,
      `  --fail-existing \\`,
      `  --input '${inputOf(p)}'`,
    ].join('\n'),
  /** The same start with everything signal intake also sets (memo, search attributes, summary). */
  startFull: (p: Params) =>
    [
      `temporal workflow start \\`,
      `  --address ${p.address} \\`,
      `  --type tradeWorkflowV2 \\`,
      `  --task-queue ${p.taskQueue} \\`,
      `  --workflow-id ${workflowIdOf(p)} \\`,
      `  --id-reuse-policy RejectDuplicate \\`,
      `  --id-conflict-policy Fail \\`,
      `  --fail-existing \\`,
      `  --memo 'correlation_id="${p.signal.correlation_id}"' \\`,
      `  --memo 'signal_id="${p.signal.signal_id}"' \\`,
      `  --search-attribute 'Symbol="${p.signal.symbol}"' \\`,
      `  --search-attribute 'Side="${p.signal.side}"' \\`,
      `  --search-attribute 'Strategy="${p.signal.strategy}"' \\`,
      `  --search-attribute 'TradeStatus="RECEIVED"' \\`,
      `  --static-summary '${p.signal.side.toUpperCase()} ${p.signal.symbol} @ ${p.signal.price} (${p.signal.strategy}, by hand)' \\`,
      `  --input '${inputOf(p)}'`,
    ].join('\n'),
  query: (p: Params) => `temporal workflow query --address ${p.address} --workflow-id ${workflowIdOf(p)} --name status`,
  describe: (p: Params) => `temporal workflow describe --address ${p.address} --workflow-id ${workflowIdOf(p)}`,
  show: (p: Params) => `temporal workflow show --address ${p.address} --workflow-id ${workflowIdOf(p)}`,
  showExport: (p: Params) =>
    `temporal workflow show --address ${p.address} --workflow-id ${workflowIdOf(p)} --output json > ${p.historyFile}`,
  result: (p: Params) => `temporal workflow result --address ${p.address} --workflow-id ${workflowIdOf(p)}`,
  list: (p: Params) => `temporal workflow list --address ${p.address} --query '${p.query}'`,
  count: (p: Params) => `temporal workflow count --address ${p.address} --query '${p.query}'`,
  stack: (p: Params) => `temporal workflow stack --address ${p.address} --workflow-id ${workflowIdOf(p)}`,
  cancel: (p: Params) => `temporal workflow cancel --address ${p.address} --workflow-id ${workflowIdOf(p)}`,
} as const;

/** Visibility queries the doc offers as Web UI saved views / `list --query` filters (each runs on the server). */
const SAVED_VIEWS = [
  'WorkflowType IN ("tradeWorkflowV2", "tradeWorkflow") AND ExecutionStatus="Running"',
  'TradeStatus IN ("WORKING", "PARTIALLY_FILLED", "BRACKET_ACTIVE")',
  'TradeStatus="FILLED" AND Symbol="NVDA"',
  'TradeStatus="REJECTED"',
  'TradeStatus IN ("BROKER_REJECTED", "ORDER_LOST")',
  'TradeStatus IN ("CANCELLED", "EXPIRED", "EXPIRED_PARTIAL")',
  'WorkflowType IN ("tradeWorkflowV2", "tradeWorkflow") AND ExecutionStatus="Failed"',
  'Strategy="sma-cross" AND Side="buy" AND StartTime > "2025-01-02T00:00:00Z"',
  'WorkflowId STARTS_WITH "trade-manual-"',
];

/** The doc's example values. */
const DOC_SIGNAL_MARKET: TradeSignal = {
  schema_version: 1,
  signal_id: 'manual-nvda-0001',
  correlation_id: 'manual-nvda-0001',
  symbol: 'NVDA',
  side: 'buy',
  price: 20,
  confidence: 0.9,
  strategy: 'manual',
  created_at: '2025-01-02T15:30:00Z',
  asset_class: 'equity',
  order: { type: 'market', time_in_force: 'day', quantity_hint: 10 },
};
const DOC_SIGNAL_LIMIT: TradeSignal = {
  ...DOC_SIGNAL_MARKET,
  signal_id: 'manual-nvda-0002',
  correlation_id: 'manual-nvda-0002',
  created_at: '2025-01-02T15:35:00Z',
  order: { type: 'limit', time_in_force: 'gtc', limit_price: 1, quantity_hint: 10 },
};
const DOC = { address: '127.0.0.1:7233', taskQueue: 'trades' };
const DOC_MARKET: Params = { ...DOC, signal: DOC_SIGNAL_MARKET };
const DOC_LIMIT: Params = { ...DOC, signal: DOC_SIGNAL_LIMIT };
const DOC_FILLED_QUERY = 'TradeStatus="FILLED" AND Symbol="NVDA"';
const DOC_CANCELLED_QUERY = 'TradeStatus="CANCELLED" AND Symbol="NVDA"';

/** Every command as the doc shows it. */
function docCommands(): string[] {
  return [
    COMMANDS.validate(DOC_MARKET),
    COMMANDS.start(DOC_MARKET),
    COMMANDS.startFull(DOC_LIMIT),
    COMMANDS.query(DOC_MARKET),
    COMMANDS.describe(DOC_MARKET),
    COMMANDS.show(DOC_MARKET),
    COMMANDS.showExport({ ...DOC_MARKET, historyFile: 'trade-manual-nvda-0001.history.json' }),
    COMMANDS.result(DOC_MARKET),
    COMMANDS.list({ ...DOC, signal: DOC_SIGNAL_MARKET, query: DOC_FILLED_QUERY }),
    COMMANDS.count({ ...DOC, signal: DOC_SIGNAL_MARKET, query: DOC_FILLED_QUERY }),
    COMMANDS.list({ ...DOC, signal: DOC_SIGNAL_MARKET, query: DOC_CANCELLED_QUERY }),
    COMMANDS.stack(DOC_LIMIT),
    COMMANDS.cancel(DOC_LIMIT),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Running the CLI

const ROOT = path.resolve(__dirname, '../..');
const DOC_PATH = path.join(ROOT, 'docs/temporal-cli.md');

function temporalBinary(): string {
  if (process.env.TEMPORAL_CLI) return process.env.TEMPORAL_CLI;
  const cached = path.join(ROOT, '.tools/bin/temporal');
  if (fs.existsSync(cached)) return cached;
  return execFileSync('bash', [path.join(ROOT, 'scripts/provision/temporal-cli.sh')], { encoding: 'utf8' }).trim();
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

let cliEnv: NodeJS.ProcessEnv;

/** Run a command line exactly as a user would paste it: through bash, with `temporal` on PATH. */
function sh(command: string): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', command],
      { cwd: ROOT, env: cliEnv, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function ok(command: string): Promise<string> {
  const r = await sh(command);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${command}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** The same command with `--output json`, parsed. */
async function json<T = unknown>(command: string): Promise<T> {
  return JSON.parse(await ok(`${command} --output json`)) as T;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `temporal workflow query … --output json` prints {"queryResult": [<result>]}. */
async function queryStatus(p: Params): Promise<TradeStatus> {
  const out = await json<{ queryResult: TradeStatus[] }>(COMMANDS.query(p));
  return out.queryResult[0]!;
}

interface DescribeJson {
  workflowExecutionInfo: {
    type: { name: string };
    status: string;
    taskQueue: string;
    memo?: { fields?: Record<string, unknown> };
    searchAttributes?: { indexedFields?: Record<string, { data: string }> };
  };
}

/** Search attribute values come back as base64 JSON payloads. */
function searchAttribute(d: DescribeJson, key: string): unknown {
  const f = d.workflowExecutionInfo.searchAttributes?.indexedFields?.[key];
  return f ? JSON.parse(Buffer.from(f.data, 'base64').toString('utf8')) : undefined;
}

// ---------------------------------------------------------------------------------------------------------------

describe('docs/temporal-cli.md command lines (real temporal CLI, dev server, venue, trade worker)', () => {
  let h: PipelineHarness;
  let day = 0;
  const run = `${Date.now().toString(36)}-${process.pid}`;
  const address = devServerAddress();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-commands-'));

  // Two trades on one symbol and strategy: the risk cooldown runs on the signals' created_at, a day apart here.
  const marketSignal: TradeSignal = {
    ...DOC_SIGNAL_MARKET,
    signal_id: `cli-${run}-m`,
    correlation_id: `corr-cli-${run}-m`,
    created_at: '2014-03-03T15:30:00Z',
  };
  const limitSignal: TradeSignal = {
    ...DOC_SIGNAL_LIMIT,
    signal_id: `cli-${run}-l`,
    correlation_id: `corr-cli-${run}-l`,
    created_at: '2014-03-04T15:30:00Z',
  };
  let market: Params;
  let limit: Params;

  const nextBar = async (open: number) => {
    day++;
    await h.publishBar({
      symbol: 'NVDA',
      timestamp: new Date(Date.UTC(2014, 2, 1) + day * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      open,
      high: open * 1.01,
      low: open * 0.99,
      close: open,
      volume: 5_000_000,
    });
  };

  const venueOrder = async (clientOrderId: string) => {
    const res = await fetch(
      `http://127.0.0.1:${h.simPort}/v2/orders:by_client_order_id?client_order_id=${encodeURIComponent(clientOrderId)}`,
      { headers: { 'APCA-API-KEY-ID': SIM_PLACEHOLDER_KEY, 'APCA-API-SECRET-KEY': SIM_PLACEHOLDER_SECRET } },
    );
    expect(res.status).toBe(200);
    return (await res.json()) as { status: string; client_order_id: string; filled_qty: string };
  };

  beforeAll(async () => {
    const bin = temporalBinary();
    cliEnv = { ...process.env, PATH: `${path.dirname(bin)}:${process.env.PATH ?? ''}` };
    h = await PipelineHarness.create();
    market = { address, taskQueue: h.taskQueue, signal: marketSignal };
    limit = { address, taskQueue: h.taskQueue, signal: limitSignal };
    await h.start('exchange-sim');
    await h.start('trade-worker');
    await nextBar(20); // the venue learns NVDA and a price
  });
  afterAll(async () => {
    await h?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the doc contains every command line and saved-view query verbatim', () => {
    const doc = fs.readFileSync(DOC_PATH, 'utf8');
    for (const c of docCommands()) expect(doc, `docs/temporal-cli.md is missing:\n${c}`).toContain(c);
    for (const q of SAVED_VIEWS) expect(doc, `docs/temporal-cli.md is missing the query ${q}`).toContain(q);
    // The literal input in the doc is a signal the contract accepts, defaults included.
    expect(inputOf(DOC_MARKET)).toContain('"schema_version":1');
  });

  it('the `temporal` on PATH is the project CLI (v1.5.1 flags: --fail-existing, query --name)', async () => {
    expect(await ok('temporal workflow start --help')).toContain('--fail-existing');
    expect(await ok('temporal workflow query --help')).toMatch(/--name string\s+Query Type\/Name/);
  });

  it('validate prints the complete workflow input (contract defaults applied), or the reason it is invalid', async () => {
    expect(JSON.parse(await ok(COMMANDS.validate(DOC_MARKET)))).toEqual({ signal: DOC_SIGNAL_MARKET });
    expect(JSON.parse(await ok(COMMANDS.validate(market)))).toEqual({ signal: marketSignal });
    const bad = await sh(COMMANDS.validate({ ...market, signal: { ...marketSignal, confidence: 2 } }));
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^invalid signal: confidence: /);
  });

  it('start → the workflow appears; status query answers; a bar fills it; show/describe/result/list/count', async () => {
    const workflowId = `trade-${marketSignal.signal_id}`;
    const started = await json<{ workflowId: string; runId: string; taskQueue: string; type: string }>(
      COMMANDS.start(market),
    );
    expect(started).toMatchObject({ workflowId, taskQueue: h.taskQueue, type: 'tradeWorkflowV2' });

    // describe: it exists, on our task queue.
    const d0 = await json<DescribeJson>(COMMANDS.describe(market));
    expect(d0.workflowExecutionInfo.type.name).toBe('tradeWorkflowV2');
    expect(d0.workflowExecutionInfo.taskQueue).toBe(h.taskQueue);

    // A re-run of the same start line is refused (RejectDuplicate + --fail-existing), not silently "started".
    const again = await sh(COMMANDS.start(market));
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already (running|started|finished)/i);

    // query: JSON with the phase; the order rests at the venue until the next bar.
    const working = await until('phase WORKING', async () => {
      const s = await queryStatus(market);
      return s.phase === 'WORKING' ? s : undefined;
    });
    expect(working).toMatchObject({ workflowId, symbol: 'NVDA', side: 'buy', requestedQty: 10 });
    expect(await ok(COMMANDS.query(market))).toContain('"phase"');

    // A bar fills the market order (re-published each few seconds until it has: bars are at-least-once).
    let open = 20.1;
    let lastBar = Date.now();
    await nextBar(open);
    const done = await until(
      'the trade to complete',
      async () => {
        const d = await json<DescribeJson>(COMMANDS.describe(market));
        if (d.workflowExecutionInfo.status === 'WORKFLOW_EXECUTION_STATUS_COMPLETED') return d;
        if (Date.now() - lastBar > 5_000) {
          lastBar = Date.now();
          await nextBar((open += 0.1));
        }
        return undefined;
      },
      90_000,
    );
    // The minimal start sets no memo and no search attributes: the workflow upserts Symbol/Side/Strategy/TradeStatus.
    expect(searchAttribute(done, 'TradeStatus')).toBe('FILLED');
    expect(searchAttribute(done, 'Symbol')).toBe('NVDA');

    const status = await queryStatus(market);
    expect(status).toMatchObject({ phase: 'FILLED', filledQty: 10 });
    // result: the workflow's return value (the final status).
    const result = await json<{
      status: string;
      closeEvent: { workflowExecutionCompletedEventAttributes: { result: TradeStatus[] } };
    }>(COMMANDS.result(market));
    expect(result.status).toBe('COMPLETED');
    expect(result.closeEvent.workflowExecutionCompletedEventAttributes.result[0]).toMatchObject({
      phase: 'FILLED',
      filledQty: 10,
    });
    expect(await ok(COMMANDS.result(market))).toMatch(/Status\s+COMPLETED/);

    // show: the event history, text and JSON.
    const text = await ok(COMMANDS.show(market));
    expect(text).toContain('WorkflowExecutionCompleted');
    expect(text).toContain('ActivityTaskCompleted');
    const history = await json<{
      events: Array<{ eventType: string; activityTaskScheduledEventAttributes?: { activityType: { name: string } } }>;
    }>(COMMANDS.show(market));
    expect(history.events.at(-1)!.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
    const activities = history.events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType.name ?? []);
    // Risk runs as a local activity (a marker in the history); fills are booked by the activities that learn them,
    // and the follow that sees the order filled also closes the trade (patch finalize-joins-follow): no
    // finalizeTrade activity for a filled trade.
    expect(activities).toEqual(expect.arrayContaining(['submitOrder', 'followOrder']));
    expect(activities).not.toContain('finalizeTrade');
    expect(activities).not.toContain('evaluateRisk');

    // list / count by search attributes: visibility is eventually consistent, so poll.
    const listParams = { ...market, query: DOC_FILLED_QUERY };
    await until('list to show the filled trade', async () => {
      const rows = await json<Array<{ execution: { workflowId: string } }>>(COMMANDS.list(listParams));
      return rows.some((r) => r.execution.workflowId === workflowId) ? true : undefined;
    });
    expect(await ok(COMMANDS.list(listParams))).toContain(workflowId);
    const count = await json<{ count: string | number }>(COMMANDS.count(listParams));
    expect(Number(count.count)).toBeGreaterThanOrEqual(1);

    // The ledger agrees.
    const trade = await h.db.pool.query(`SELECT status, filled_qty FROM trades WHERE workflow_id = $1`, [workflowId]);
    expect(trade.rows[0]).toMatchObject({ status: 'FILLED' });
  });

  it('show --output json exports a history that replays against the current workflow code', async () => {
    const historyFile = path.join(tmp, 'market.history.json');
    await ok(COMMANDS.showExport({ ...market, historyFile }));
    const history = historyFromFixtureJson(JSON.parse(fs.readFileSync(historyFile, 'utf8')));
    expect(history.events?.length).toBeGreaterThan(10);
    quietTemporalRuntime();
    const workflowBundleForReplay = await tradeWorkflowBundle();
    await Worker.runReplayHistory(
      { workflowBundle: workflowBundleForReplay, replayName: 'cli-export' },
      history,
      `trade-${marketSignal.signal_id}`,
    );
  });

  it('a resting limit order cancelled with `temporal workflow cancel`: workflow cancelled, ledger CANCELLED, venue canceled', async () => {
    const workflowId = `trade-${limitSignal.signal_id}`;
    const started = await json<{ workflowId: string }>(COMMANDS.startFull(limit));
    expect(started.workflowId).toBe(workflowId);
    const d0 = await json<DescribeJson>(COMMANDS.describe(limit));
    expect(d0.workflowExecutionInfo.memo?.fields).toMatchObject({
      correlation_id: limitSignal.correlation_id,
      signal_id: limitSignal.signal_id,
    });
    expect(searchAttribute(d0, 'Strategy')).toBe('manual');

    await until('phase WORKING', async () => ((await queryStatus(limit)).phase === 'WORKING' ? true : undefined));
    await nextBar(20.2); // trades far above the $1 limit: no fill
    expect((await venueOrder(workflowId)).status).not.toMatch(/filled|canceled|expired|rejected/);
    // stack: where the workflow is waiting (the follow activity racing the time-in-force timer).
    expect(await ok(COMMANDS.stack(limit))).toMatch(/src\/workflows\/trade\.ts:\d+/);

    expect(await ok(COMMANDS.cancel(limit))).toMatch(/cancel/i);
    await until('the workflow to end cancelled', async () => {
      const d = await json<DescribeJson>(COMMANDS.describe(limit));
      return d.workflowExecutionInfo.status === 'WORKFLOW_EXECUTION_STATUS_CANCELED' ? true : undefined;
    });
    expect(await queryStatus(limit)).toMatchObject({
      phase: 'CANCELLED',
      filledQty: 0,
      reasonCode: 'cancelled_by_user',
    });
    const result = await sh(COMMANDS.result(limit));
    expect(result.code).not.toBe(0);
    expect(`${result.stdout}${result.stderr}`).toMatch(/cancel/i);

    const trade = await h.db.pool.query(`SELECT status FROM trades WHERE workflow_id = $1`, [workflowId]);
    expect(trade.rows[0]).toMatchObject({ status: 'CANCELLED' });
    const order = await h.db.pool.query(`SELECT status FROM orders WHERE client_order_id = $1`, [workflowId]);
    expect(order.rows[0]).toMatchObject({ status: 'canceled' });
    expect((await venueOrder(workflowId)).status).toBe('canceled');

    await until('list to show the cancelled trade', async () => {
      const rows = await json<Array<{ execution: { workflowId: string } }>>(
        COMMANDS.list({ ...limit, query: DOC_CANCELLED_QUERY }),
      );
      return rows.some((r) => r.execution.workflowId === workflowId) ? true : undefined;
    });
  });

  it('every saved-view query in the doc is accepted by the server', async () => {
    for (const query of SAVED_VIEWS) {
      const r = await sh(`${COMMANDS.list({ ...market, query })} --limit 1 --output json`);
      expect(r.code, `${query}: ${r.stderr}`).toBe(0);
      expect(Array.isArray(JSON.parse(r.stdout)), query).toBe(true);
    }
    // and the manual trades are found by id prefix (the doc's STARTS_WITH example, with this run's prefix)
    const rows = await json<Array<{ execution: { workflowId: string } }>>(
      COMMANDS.list({ ...market, query: `WorkflowId STARTS_WITH "trade-cli-${run}-"` }),
    );
    expect(rows.map((r) => r.execution.workflowId).sort()).toEqual(
      [`trade-${limitSignal.signal_id}`, `trade-${marketSignal.signal_id}`].sort(),
    );
  });
});
