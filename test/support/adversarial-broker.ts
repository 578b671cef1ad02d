import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect } from 'vitest';
import { createBroker } from '../../src/adapters/brokers';
import type { AlpacaBroker } from '../../src/adapters/brokers/alpaca';
import { OrderTracker } from '../../src/adapters/brokers/order-tracker';
import { EPHEMERAL_OPS_ENV, parseEnv, type Config } from '../../src/config';
import type { OrderSpec, TradeSignal } from '../../src/contracts/signal';
import { createLogger } from '../../src/logging';
import { tradeStartOptions } from '../../src/workers/signal-intake';
import { tradeActivities } from '../../src/workers/trade-activities';
import type { tradeWorkflowV2 } from '../../src/workflows';
import type { TradeStatus } from '../../src/workflows/shared';
import { FakeAlpaca } from '../fakes/fake-alpaca';
import { createTestDatabase, type TestDatabase } from './pg';
import {
  connectDevServer,
  quietTemporalRuntime,
  tradeWorkflowBundle,
  uniqueTaskQueue,
  type DevServer,
} from './temporal';
import { auditTrades, fakeAlpacaTruth, printAudit, type TradeUnderAudit } from './trade-audit';

/**
 * Issue 8, adversarial broker suite (test/integration/trade-adversarial-broker*.test.ts): the REAL trade path — a
 * Temporal Worker on the shared dev server running the real trade workflow and the real activities
 * (tradeActivities, as the trade worker builds them) with the production AlpacaBroker (createBroker,
 * BROKER=alpaca) pointed at the fake Alpaca,
 * booking into a real PostgreSQL ledger — runs trades through the fake's adversarial modes. After every mode,
 * every trade so far is audited order by order against the broker (test/support/trade-audit.ts): exactly one
 * broker order; Σ ledger fills = the broker's filled quantity; ledger position = broker position; cash = Σ cash
 * movements and = the broker's cash to the cent; every workflow closed with a result that matches its ledger trade
 * row; no reservation HELD.
 *
 * The fake charges a fee per fill (FakeAlpacaOptions.feePerFill) so the ledger's cash only matches the broker's
 * when every fee was taken from the broker, never assumed 0.
 *
 * Each file gets a rig of its own (database, fake, task queue, worker): the fake's modes are global to the fake,
 * so the tests of one rig run one after another, and the files run beside each other.
 */
export const SYMBOL = 'NVDA';
const PRICE = 20;
const FEE = 0.01;
const KEY = 'adv-key';
const SECRET = 'adv-secret';
/** Short, so a POST held by the fake times out on our side within the test's patience. */
export const HTTP_TIMEOUT_MS = 2000;
const MARKET_2: OrderSpec = { type: 'market', time_in_force: 'day', quantity_hint: 2 };

export interface AdversarialRig {
  /** The fake Alpaca (set by the rig's beforeAll). */
  readonly fake: FakeAlpaca;
  /** The rig's Temporal client (set by the rig's beforeAll), for reading the trades' histories. */
  readonly client: Client;
  /** Every trade this rig started, with its kind and expected outcomes. */
  readonly trades: TradeUnderAudit[];
  /** Start a trade of this kind (a market buy of 2 unless `order` says otherwise); its workflow id. */
  start(kind: string, opts?: { order?: OrderSpec; deadlineMs?: number; expected?: string[] }): Promise<string>;
  /** Every workflow's result, failing clearly (with the last status of the laggards) after `ms`. */
  results(ids: string[], ms?: number): Promise<TradeStatus[]>;
  /** The audit of every trade so far: no problem anywhere (the account's position and cash are cumulative). */
  expectAllReconciled(title: string, opts?: { knownFees?: string[] }): ReturnType<typeof auditTrades>;
  /** The ledger's fill rows of one order. */
  fillRowsOf(workflowId: string): Promise<Array<{ execution_id: string; qty: string; cum_qty: string }>>;
}

/** Registers the rig's beforeAll/afterAll in the calling describe block. */
export function adversarialRig(account: string): AdversarialRig {
  let db: TestDatabase;
  let fake: FakeAlpaca;
  let dev: DevServer;
  let client: Client;
  let cfg: Config;
  let broker: AlpacaBroker;
  let tracker: OrderTracker;
  let worker: Worker;
  let running: Promise<void>;
  let taskQueue: string;
  const trades: TradeUnderAudit[] = [];
  // Unique across the files that run this rig at once (parallel vitest workers start in the same millisecond):
  // workflow ids are the namespace's, not the task queue's.
  const runTag = randomBytes(4).toString('hex');
  let seq = 0;

  function signal(order: OrderSpec = MARKET_2): TradeSignal {
    seq++;
    return {
      schema_version: 1,
      signal_id: `adv-${runTag}-${seq}`,
      correlation_id: `corr-adv-${runTag}-${seq}`,
      symbol: SYMBOL,
      side: 'buy',
      price: PRICE,
      confidence: 0.9,
      strategy: 'adversarial',
      // One market day apart: the duplicate-signal cooldown runs on the signal's own time.
      created_at: new Date(Date.UTC(2014, 0, 2) + seq * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      asset_class: 'equity',
      order,
    };
  }

  beforeAll(async () => {
    // Activity failures are this suite's daily bread: keep the SDK's per-failure warnings out of the log.
    quietTemporalRuntime('ERROR');
    db = await createTestDatabase('sat_adv');
    fake = await FakeAlpaca.start({ apiKey: KEY, apiSecret: SECRET, feePerFill: FEE, defaultPrice: PRICE });
    fake.setPrice(SYMBOL, PRICE);
    cfg = parseEnv({
      ...process.env,
      ...EPHEMERAL_OPS_ENV,
      DATABASE_URL: db.url,
      BROKER: 'alpaca',
      ALPACA_BASE_URL: fake.url,
      ALPACA_STREAM_URL: fake.streamUrl,
      BROKER_API_KEY: KEY,
      BROKER_API_SECRET: SECRET,
      BROKER_HTTP_TIMEOUT_MS: String(HTTP_TIMEOUT_MS),
      // The request budget paces every call; at Alpaca's 200/min the ~60 trades here would spend minutes
      // queueing, which is not under test (the fake's 429 modes are, and the budget's pause on a 429 is).
      BROKER_RATE_LIMIT_PER_MIN: '1200',
      ACCOUNT_ID: account,
      // Trades start together and reach risk in any order; the duplicate-signal cooldown (market time per
      // symbol + strategy) would reject the later-evaluated earlier signal. Not what this suite is about.
      RISK_DUPLICATE_COOLDOWN_SEC: '0',
    });
    const log = createLogger('adversarial-worker', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    // What src/workers/trade-worker.ts builds for this config (BROKER=alpaca): the same tradeActivities.
    broker = createBroker(cfg.broker, log.child({ component: 'broker' }));
    tracker = new OrderTracker(broker);
    dev = await connectDevServer();
    client = dev.client;
    taskQueue = uniqueTaskQueue('adversarial');
    worker = await Worker.create({
      connection: dev.nativeConnection,
      namespace: dev.namespace,
      taskQueue,
      workflowBundle: await tradeWorkflowBundle(),
      activities: tradeActivities(cfg, { pool: db.pool, broker, tracker, logger: log }),
      maxConcurrentActivityTaskExecutions: 200,
      maxConcurrentWorkflowTaskExecutions: 40,
    });
    running = worker.run();
    await broker.waitForStream(10_000);
  });

  afterAll(async () => {
    if (worker) {
      worker.shutdown();
      await running.catch(() => undefined);
    }
    tracker?.close();
    await broker?.close();
    await fake?.close();
    await dev?.close();
    await db?.drop();
  });

  return {
    get fake() {
      return fake;
    },
    get client() {
      return client;
    },
    trades,

    async start(kind, opts = {}) {
      const sig = signal(opts.order);
      const o = tradeStartOptions(sig, taskQueue);
      const args: Parameters<typeof tradeWorkflowV2> = [
        { signal: sig, ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}) },
      ];
      await client.workflow.start('tradeWorkflowV2', { ...o, args });
      trades.push({ workflowId: o.workflowId, kind, expectedOutcomes: opts.expected ?? ['FILLED'] });
      return o.workflowId;
    },

    async results(ids, ms = 120_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          void Promise.all(
            ids.map((id) =>
              client.workflow
                .getHandle(id)
                .query<TradeStatus>('status')
                .then((s) => `${id}: ${s.phase} ${s.filledQty}/${s.requestedQty}`)
                .catch((e: unknown) => `${id}: ${String(e)}`),
            ),
          ).then((s) => reject(new Error(`trades not finished after ${ms} ms:\n${s.join('\n')}`)));
        }, ms);
      });
      try {
        return await Promise.race([
          Promise.all(ids.map((id) => client.workflow.getHandle(id).result() as Promise<TradeStatus>)),
          timeout,
        ]);
      } finally {
        clearTimeout(timer);
      }
    },

    async expectAllReconciled(title, opts = {}) {
      const report = await auditTrades(db.pool, client, cfg.accountId, fakeAlpacaTruth(fake), trades);
      printAudit(title, report, { rows: false });
      expect(report.problems).toEqual([]);
      expect(report.totals).toMatchObject({
        duplicates: 0,
        fillMismatches: 0,
        heldReservations: 0,
        openWorkflows: 0,
        cashMinusMovements: 0,
        cashVsBrokerCents: 0,
        positionBreaks: 0,
      });
      // Fees come from the broker: a trade of these kinds has every fee known.
      for (const kind of opts.knownFees ?? []) {
        const unknown = report.rows.filter((r) => r.kind === kind && r.unknownFeeFills > 0);
        expect(unknown, `${kind}: fills booked without the broker's fee`).toEqual([]);
      }
      return report;
    },

    async fillRowsOf(workflowId) {
      return (
        await db.pool.query<{ execution_id: string; qty: string; cum_qty: string; fee: string | null }>(
          `SELECT execution_id, qty::text, cum_qty::text, fee::text FROM fills WHERE client_order_id = $1 ORDER BY cum_qty`,
          [workflowId],
        )
      ).rows;
    },
  };
}
