/**
 * Record the event histories of representative trades as replay fixtures (test/fixtures/histories/*.json).
 *
 *   tsx scripts/record-histories.ts [--out DIR] [--only NAME[,NAME…]] [--workflows PATH]
 *
 * Each scenario runs the real trade workflow (the current src/workflows bundle, as the type signal intake starts)
 * on Temporal's time-skipping test server against a scripted in-memory broker (the same mock activities as test/workflow/trade-workflow.test.ts),
 * checks that the trade ended the way the scenario intends, and writes `handle.fetchHistory()` as the JSON that
 * `historyFromJSON` / `Worker.runReplayHistories` read (the format of `temporal workflow show --output json`).
 * test/workflow/replay.test.ts replays every file in the directory against the current workflow code, so a
 * change that is not replay-safe fails CI (docs/workflow-versioning.md).
 *
 * Re-record ONLY when the histories themselves should change (a new scenario, or after a versioned change
 * has been rolled out and the old code paths are gone): re-recording after an unversioned change hides exactly
 * the break the fixtures exist to catch.
 *
 * The time-skipping server comes from TEMPORAL_TEST_SERVER_PATH, else `bash scripts/provision/test-server.sh`.
 */
import { ScriptedBroker, type Scenario } from '../test/support/scripted-broker';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ApplicationFailure } from '@temporalio/activity';
import type { History } from '@temporalio/common/lib/proto-utils';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { TradeSignal } from '../src/contracts/signal';
import type { RiskDecision } from '../src/domain/risk';
import type { tradeWorkflowV2 } from '../src/workflows';
import { tradeStartOptions } from '../src/workers/signal-intake';
import { tradeWorkflowBundleOptions } from '../src/workers/workflow-bundle';
import { SEARCH_ATTRIBUTES, TRADE_WORKFLOW_TYPE, type TradeStatus } from '../src/workflows/shared';
import { sleep } from '../src/lib/sleep';

const ROOT = path.resolve(__dirname, '..');
export const HISTORIES_DIR = path.join(ROOT, 'test/fixtures/histories');

// ---------------------------------------------------------------------------------------------------------------
// History <-> JSON. The SDK's historyToJSON/historyFromJSON (@temporalio/common/lib/proto-utils) are what we
// would use, but with this lockfile npm installs three copies of protobufjs@8 (common, proto and worker each
// nest one, because grpc-js pins protobufjs@7 at the top level), and protojson's `type instanceof Type` check
// fails across copies ("TypeError: type must be a Type"). So convert with the protojson of the very protobufjs
// copy that built @temporalio/proto's types. The JSON is the same proto3 JSON (`temporal workflow show -o json`).

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}
// Resolve protobufjs from @temporalio/proto's own location: whichever copy npm gave it.
const requireFromProto = createRequire(require.resolve('@temporalio/proto'));
const protojson = requireFromProto('protobufjs/ext/protojson') as ProtoJson;
// The CommonJS module object itself: an ESM namespace wrapper (what vitest builds for `import * as`) is no Root.
const protoRoot = createRequire(__filename)('@temporalio/proto') as typeof proto;
const historyType = (patchProtobufRoot(protoRoot) as unknown as { lookupType(n: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

/** History (as fetchHistory returns it) → pretty proto3 JSON, ending in a newline. */
export function historyToFixtureJson(history: History): string {
  const json = protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history));
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** Proto3 JSON (a fixture, or `temporal workflow show --output json`) → History for Worker.runReplayHistories. */
export function historyFromFixtureJson(json: unknown): History {
  return protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History;
}

/** The trade's workflow id (`trade-<signal_id>`, from the start event's input), which replay needs. */
export function tradeWorkflowIdOf(history: History): string | undefined {
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload?.data) return undefined;
  const input = JSON.parse(Buffer.from(payload.data).toString('utf8')) as { signal?: { signal_id?: string } };
  return input.signal?.signal_id ? `trade-${input.signal.signal_id}` : undefined;
}

/** A fixed signal per fixture, so the workflow id (trade-hist-<name>) is the same on every recording. */
function signal(name: string, overrides: Partial<TradeSignal> = {}): TradeSignal {
  return {
    schema_version: 1,
    signal_id: `hist-${name}`,
    correlation_id: `corr-hist-${name}`,
    symbol: 'NVDA',
    side: 'buy',
    price: 100,
    confidence: 0.9,
    strategy: 'sma-cross',
    created_at: '2014-06-02T00:00:00Z',
    asset_class: 'equity',
    ...overrides,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The representative trades. Each name is a fixture file; `expect` refuses to record a run that went elsewhere.

interface Outcome {
  status: TradeStatus;
  cancelled: boolean;
  broker: ScriptedBroker;
}

interface Fixture {
  name: string;
  description: string;
  scenario: () => Scenario;
  signal: TradeSignal;
  deadlineMs?: number;
  /** Cancel the workflow (as `temporal workflow cancel` does) once this holds. */
  cancelWhen?: (s: TradeStatus) => boolean;
  expect: (o: Outcome) => string | null;
}

const want = (cond: boolean, what: string) => (cond ? null : what);

export const FIXTURES: Fixture[] = [
  {
    name: 'filled-at-submit',
    description: 'a fast broker fills the order before the submit returns: the submit books the fill, no follow',
    signal: signal('filled-at-submit'),
    scenario: () => ({ atSubmit: (o, b) => b.fill(o, 100, 100.25) }),
    expect: ({ status, broker }) =>
      want(
        status.phase === 'FILLED' && broker.booked.reduce((s, f) => s + f.qty, 0) === 100,
        'phase FILLED with 100 booked',
      ),
  },
  {
    name: 'rate-limited-submit',
    description: 'submit answered 429 five times (reset honoured as the next retry delay), then placed and filled',
    signal: signal('rate-limited-submit'),
    scenario: () => ({ rateLimited: { attempts: 5, retryAfterMs: 60_000 }, script: [(o, b) => b.fill(o, 100, 99.5)] }),
    expect: ({ status, broker }) =>
      want(status.phase === 'FILLED' && broker.submitAttempts === 6, 'phase FILLED after 6 submit attempts'),
  },
  {
    name: 'gave-up-failed',
    description: 'following fails with an unexpected non-retryable error after 40 filled: settled, ends FAILED',
    signal: signal('gave-up-failed', { order: { type: 'limit', limit_price: 100, time_in_force: 'gtc' } }),
    scenario: () => ({
      script: [
        (o, b) => b.fill(o, 40, 100),
        () => {
          throw ApplicationFailure.create({ type: 'Unexpected', message: 'venue sent garbage', nonRetryable: true });
        },
      ],
    }),
    expect: ({ status }) => want(status.phase === 'FAILED' && status.filledQty === 40, 'phase FAILED, 40 filled'),
  },
  {
    name: 'unresolved-submit',
    description: 'the first submit lands and fills but its answer is lost; resolved by client order id at the deadline',
    signal: signal('unresolved-submit'),
    deadlineMs: 5 * 60_000,
    scenario: () => ({ landsThenUnreachable: true }),
    expect: ({ status, broker }) =>
      want(status.phase === 'FILLED' && broker.submitted.length === 1, 'phase FILLED, one order'),
  },
  {
    name: 'filled-market',
    description: 'market buy approved by risk, filled in one fill, ledger finalised FILLED',
    signal: signal('filled-market'),
    scenario: () => ({ script: [(o, b) => b.fill(o, 100, 100.5)] }),
    expect: ({ status, broker }) =>
      want(status.phase === 'FILLED' && broker.finalized.at(-1)?.outcome === 'FILLED', 'phase FILLED'),
  },
  {
    name: 'risk-rejected',
    description: 'risk says no (low confidence): the workflow completes REJECTED without touching the broker',
    signal: signal('risk-rejected', { confidence: 0.5 }),
    scenario: () => ({
      decision: {
        decision: 'REJECTED',
        reasonCode: 'low_confidence',
        qty: 0,
        checks: [{ name: 'confidence', passed: false, value: 0.5, limit: 0.75 }],
      } as Partial<RiskDecision>,
    }),
    expect: ({ status, broker }) =>
      want(status.phase === 'REJECTED' && broker.submitAttempts === 0, 'phase REJECTED, no submit'),
  },
  {
    name: 'broker-rejected',
    description: 'two transient submit failures (retried), then a non-retryable BrokerRejected: BROKER_REJECTED',
    signal: signal('broker-rejected'),
    scenario: () => ({
      submitErrors: [
        () => new Error('ECONNRESET'),
        () => new Error('504 gateway timeout'),
        () =>
          ApplicationFailure.create({
            type: 'BrokerRejected',
            message: '40310000: insufficient buying power',
            nonRetryable: true,
          }),
      ],
    }),
    expect: ({ status, broker }) =>
      want(status.phase === 'BROKER_REJECTED' && broker.submitAttempts === 3, 'phase BROKER_REJECTED after 3 tries'),
  },
  {
    name: 'partial-fill-tif-expiry',
    description: 'limit day order fills 40/100, the time-in-force deadline passes, the remainder is cancelled',
    signal: signal('partial-fill-tif-expiry', { order: { type: 'limit', limit_price: 101, time_in_force: 'day' } }),
    // Time skipping does not jump while activities keep running, so the deadline is short and real.
    deadlineMs: 3_000,
    scenario: () => ({ script: [(o, b) => b.fill(o, 40, 101)] }),
    expect: ({ status, broker }) =>
      want(
        status.phase === 'EXPIRED_PARTIAL' && status.filledQty === 40 && broker.cancels.length > 0,
        'phase EXPIRED_PARTIAL with 40 filled and a broker cancel',
      ),
  },
  {
    name: 'cancelled',
    description: 'gtc limit order fills 30/100, then the workflow is cancelled: broker cancel, ends cancelled',
    signal: signal('cancelled', { order: { type: 'limit', limit_price: 100, time_in_force: 'gtc' } }),
    scenario: () => ({ script: [(o, b) => b.fill(o, 30, 100)] }),
    cancelWhen: (s) => s.filledQty === 30,
    expect: ({ status, cancelled, broker }) =>
      want(
        cancelled && status.phase === 'CANCELLED' && broker.finalized.at(-1)?.outcome === 'CANCELLED',
        'workflow cancelled, phase CANCELLED',
      ),
  },
  {
    name: 'bracket',
    description: 'bracket: entry fills, take-profit leg fills, the broker cancels the stop-loss leg',
    signal: signal('bracket', {
      order: {
        type: 'market',
        time_in_force: 'gtc',
        take_profit: { limit_price: 110 },
        stop_loss: { stop_price: 95 },
      },
    }),
    scenario: () => ({
      script: [
        (o, b) => {
          b.fill(o, 100, 100);
          for (const l of o.legs!) l.status = 'new';
        },
        (o, b) => {
          b.fill(o.legs![0]!, 100, 110);
          o.legs![1]!.status = 'canceled';
        },
      ],
    }),
    expect: ({ status }) =>
      want(
        status.phase === 'FILLED' && status.legs.map((l) => l.status).join() === 'filled,canceled',
        'phase FILLED with legs filled,canceled',
      ),
  },
];

// ---------------------------------------------------------------------------------------------------------------

function timeSkippingServerPath(): string {
  if (process.env.TEMPORAL_TEST_SERVER_PATH) return process.env.TEMPORAL_TEST_SERVER_PATH;
  return execFileSync('bash', [path.join(ROOT, 'scripts/provision/test-server.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

/** Record one fixture on a fresh time-skipping server (a clean clock per trade: no timers left by another). */
async function recordFixture(bundle: WorkflowBundleWithSourceMap, f: Fixture, timeoutMs: number): Promise<string> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: timeSkippingServerPath() } },
  });
  try {
    // The time-skipping server validates search attributes like a real one: register the trade's.
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(
        Object.keys(SEARCH_ATTRIBUTES).map((k) => [
          k,
          proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        ]),
      ),
    });
    const broker = new ScriptedBroker(f.scenario());
    const taskQueue = `record-histories-${f.name}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: broker.activities(),
    });
    const workflowId = `trade-${f.signal.signal_id}`;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${f.name}: no result within ${timeoutMs} ms`)), timeoutMs);
    });
    const run = async (): Promise<string> => {
      // Started exactly as signal intake starts a trade (id, memo, search attributes, summary).
      const handle = await env.client.workflow.start<typeof tradeWorkflowV2>(TRADE_WORKFLOW_TYPE, {
        ...tradeStartOptions(f.signal, taskQueue),
        args: [{ signal: f.signal, ...(f.deadlineMs ? { deadlineMs: f.deadlineMs } : {}) }],
      });
      if (handle.workflowId !== workflowId) throw new Error(`unexpected workflow id ${handle.workflowId}`);
      if (f.cancelWhen) {
        for (let i = 0; ; i++) {
          const s = await handle.query<TradeStatus>('status');
          if (f.cancelWhen(s)) break;
          if (i > 400) throw new Error(`${f.name}: never reached the cancel point (${JSON.stringify(s)})`);
          await sleep(25);
        }
        await handle.cancel(); // what `temporal workflow cancel` does
      }
      let cancelled = false;
      let status: TradeStatus;
      try {
        status = await handle.result();
      } catch (err) {
        const cause = (err as { cause?: { name?: string } }).cause;
        if (cause?.name !== 'CancelledFailure') throw err;
        cancelled = true;
        status = await handle.query<TradeStatus>('status');
      }
      const problem = f.expect({ status, cancelled, broker });
      if (problem) throw new Error(`${f.name}: expected ${problem}, got ${JSON.stringify(status)}`);
      return historyToFixtureJson(await handle.fetchHistory());
    };
    try {
      return await worker.runUntil(Promise.race([run(), timeout]));
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await env.teardown();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      only: { type: 'string' },
      workflows: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(
      `Usage: tsx scripts/record-histories.ts [--out DIR] [--only NAME,...] [--workflows PATH]\n\n` +
        `  --out DIR         where to write NAME.json (default test/fixtures/histories)\n` +
        `  --only NAME,...   record only these fixtures\n` +
        `  --workflows PATH  workflow code to run (default src/workflows; e.g. a candidate change in a scratch copy)\n\n` +
        `Fixtures: ${FIXTURES.map((f) => f.name).join(', ')}\n`,
    );
    return;
  }
  const outDir = path.resolve(values.out ?? HISTORIES_DIR);
  const only = values.only?.split(',').map((s) => s.trim());
  const selected = only ? FIXTURES.filter((f) => only.includes(f.name)) : FIXTURES;
  const unknown = only?.filter((n) => !FIXTURES.some((f) => f.name === n)) ?? [];
  if (unknown.length) throw new Error(`unknown fixture(s): ${unknown.join(', ')}`);

  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const t0 = Date.now();
  const bundle = await bundleWorkflowCode({
    ...tradeWorkflowBundleOptions(
      values.workflows ? path.resolve(values.workflows) : require.resolve('../src/workflows'),
    ),
    logger: new DefaultLogger('WARN'),
  });
  fs.mkdirSync(outDir, { recursive: true });
  for (const f of selected) {
    const t = Date.now();
    let json: string | undefined;
    // A loaded machine can stall a time-skipping run (the TIF scenario depends on a short real deadline):
    // one retry on a fresh server, then fail loudly rather than hang.
    for (let attempt = 1; !json; attempt++) {
      try {
        json = await recordFixture(bundle, f, 60_000);
      } catch (err) {
        if (attempt >= 2) throw err;
        process.stderr.write(`${f.name}: attempt ${attempt} failed (${String(err)}); retrying\n`);
      }
    }
    const file = path.join(outDir, `${f.name}.json`);
    fs.writeFileSync(file, json);
    const events = (JSON.parse(json) as { events: unknown[] }).events.length;
    process.stdout.write(`${path.relative(ROOT, file)}: ${events} events (${f.description}) in ${Date.now() - t} ms\n`);
  }
  process.stdout.write(`recorded ${selected.length} histories in ${Date.now() - t0} ms\n`);
}

// Run only as a script (tsx scripts/record-histories.ts), not when the replay test imports the helpers.
if (process.argv[1] && path.resolve(process.argv[1]) === __filename) {
  main().catch((err: unknown) => {
    process.stderr.write(`record-histories: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
