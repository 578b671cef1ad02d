import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type AlpacaBroker, type Broker } from '../../src/adapters/brokers';
import { ensureAccount } from '../../src/adapters/postgres/risk-store';
import {
  ledgerInvariants,
  recordFills,
  recordOrderIntent,
  syncOrder,
  type OrderRecord,
} from '../../src/adapters/postgres/ledger';
import { parseEnv } from '../../src/config';
import type { BrokerOrder, OrderRequest } from '../../src/contracts/order';
import { createLogger } from '../../src/logging';
import { reconcileWithBroker, type ReconcileRunOptions } from '../../src/services/reconciliation';
import { startFakeAlpaca, type FakeAlpaca, type FakeAlpacaOptions } from '../fakes/fake-alpaca';
import { createTestDatabase, type TestDatabase } from '../support/pg';

/**
 * Reconciliation against a real PostgreSQL ledger and the fake Alpaca (reached through the production
 * AlpacaBroker over HTTP, exactly as BROKER=alpaca would), then the CLI as a child process.
 */

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const KEY = 'reconcile-test-key';
const SECRET = 'reconcile-test-secret';
const logger = createLogger('reconcile-test', { level: 'silent' });

let db: TestDatabase;
let fake: FakeAlpaca;
let broker: AlpacaBroker;
let accountId: string;
let seq = 0;
/** Client order ids are unique per world: every test shares this file's database. */
const cid = (name: string) => `${name}.${seq}`;

beforeAll(async () => {
  db = await createTestDatabase('sat_reconcile');
});
afterAll(async () => {
  await db?.drop();
});

/** A fresh broker account (fake) and ledger account per test: the two start in agreement ($100k, flat). */
async function freshWorld(fakeOpts: Partial<FakeAlpacaOptions> = {}): Promise<void> {
  fake = await startFakeAlpaca({ apiKey: KEY, apiSecret: SECRET, startingCash: 100_000, ...fakeOpts });
  const config = parseEnv({
    BROKER: 'alpaca',
    ALPACA_BASE_URL: fake.url,
    BROKER_API_KEY: KEY,
    BROKER_API_SECRET: SECRET,
    DATABASE_URL: db.url,
  });
  broker = createBroker(config.broker, logger);
  accountId = `acct-rec-${++seq}`;
  await ensureAccount(db.pool, accountId, 100_000);
}
afterEach(async () => {
  await broker?.close();
  await fake?.close();
});

const limitBuy = (clientOrderId: string, symbol: string, qty: number, price = 100): OrderRequest => ({
  clientOrderId,
  symbol,
  side: 'buy',
  qty,
  type: 'limit',
  timeInForce: 'day',
  limitPrice: price,
});

/** The trade row, its risk reservation and the order intent, as evaluateRisk + submitOrder would leave them. */
async function ledgerIntent(
  req: OrderRequest,
  opts: { finished?: boolean; createdMinutesAgo?: number } = {},
): Promise<OrderRecord> {
  const workflowId = `trade-${req.clientOrderId}`;
  const rec: OrderRecord = {
    workflowId,
    accountId,
    correlationId: `corr-${req.clientOrderId}`,
    broker: 'alpaca',
    request: req,
  };
  await db.pool.query(
    `INSERT INTO trades (workflow_id, signal_id, correlation_id, account_id, symbol, side, strategy, status)
     VALUES ($1, $2, $3, $4, $5, $6, 'test', $7)`,
    [
      workflowId,
      `sig-${req.clientOrderId}`,
      rec.correlationId,
      accountId,
      req.symbol,
      req.side,
      opts.finished ? 'FILLED' : 'SUBMITTED',
    ],
  );
  await db.pool.query(
    `INSERT INTO reservations (workflow_id, account_id, symbol, side, qty, notional, status) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      workflowId,
      accountId,
      req.symbol,
      req.side,
      req.qty,
      req.qty * (req.limitPrice ?? 100),
      opts.finished ? 'RELEASED' : 'HELD',
    ],
  );
  await recordOrderIntent(db.pool, rec);
  if (opts.createdMinutesAgo !== undefined) {
    await db.pool.query(`UPDATE orders SET created_at = now() - make_interval(mins => $2) WHERE client_order_id = $1`, [
      req.clientOrderId,
      opts.createdMinutesAgo,
    ]);
  }
  return rec;
}

/** Book a fill the way the trade workflow's recordFills does. */
async function bookFill(rec: OrderRecord, order: BrokerOrder, qty: number, price: number, cumQty: number) {
  await recordFills(db.pool, accountId, rec.correlationId, [
    {
      executionId: `exec-${order.clientOrderId}-${cumQty}`,
      clientOrderId: order.clientOrderId,
      brokerOrderId: order.brokerOrderId,
      symbol: order.symbol,
      side: order.side,
      qty,
      price,
      fee: 0,
      cumQty,
      timestamp: new Date().toISOString(),
    },
  ]);
}

const run = (opts: ReconcileRunOptions = {}, b: Broker = broker) =>
  reconcileWithBroker({ pool: db.pool, broker: b, accountId, logger }, opts);

async function orderRow(clientOrderId: string) {
  const r = await db.pool.query<{ status: string; filled_qty: string; broker_order_id: string | null }>(
    `SELECT status, filled_qty::text AS filled_qty, broker_order_id FROM orders WHERE client_order_id = $1`,
    [clientOrderId],
  );
  return r.rows[0];
}

async function issues(runId: string) {
  const r = await db.pool.query<{
    kind: string;
    symbol: string | null;
    client_order_id: string | null;
    action: string;
    detail: Record<string, unknown>;
  }>(`SELECT kind, symbol, client_order_id, action, detail FROM reconciliation_issues WHERE run_id = $1 ORDER BY id`, [
    runId,
  ]);
  return r.rows;
}

async function ledgerMoneyRows() {
  const r = await db.pool.query<{ fills: string; positions: string; cash: string; movements: string }>(
    `SELECT (SELECT count(*) FROM fills WHERE account_id = $1)::text AS fills,
            (SELECT COALESCE(json_agg(json_build_object('s', symbol, 'q', qty::text) ORDER BY symbol), '[]')::text
               FROM positions WHERE account_id = $1) AS positions,
            (SELECT cash::text FROM accounts WHERE account_id = $1) AS cash,
            (SELECT count(*) FROM cash_movements WHERE account_id = $1)::text AS movements`,
    [accountId],
  );
  return r.rows[0];
}

/**
 * The disagreeing ledger of the issue's test ("a ledger that disagrees with the broker is detected"):
 * - ok:        working at the broker, open in the ledger, in step                → nothing
 * - filled:    filled at the broker, fills booked, ledger row still `new`        → ADOPTED order_status
 * - unbooked:  filled at the broker, no fills booked, its trade finished         → FLAGGED unbooked_fills_trade_closed
 * - stale:     pending_submit 10 min ago, never reached the broker               → ADOPTED not_submitted
 * - young:     pending_submit 1 min ago, never reached the broker                → deferred (submit may be in flight)
 * - manual:    working at the broker, unknown to the ledger                      → FLAGGED external_order
 * - TSLA:      7 shares in the ledger's positions, none at the broker            → FLAGGED position_mismatch
 * - AMD:       3 shares at the broker (the unbooked fill), none in the ledger    → FLAGGED position_mismatch
 * - cash:      ledger $99,500 vs broker $99,350                                  → FLAGGED cash_drift
 */
async function buildDisagreeingLedger(): Promise<void> {
  const ok = limitBuy(cid('rec-ok'), 'NVDA', 10, 90);
  await syncOrder(db.pool, await ledgerIntent(ok), await broker.submitOrder(ok));

  const filled = limitBuy(cid('rec-filled'), 'NVDA', 5);
  const filledRec = await ledgerIntent(filled);
  const placed = await broker.submitOrder(filled);
  await syncOrder(db.pool, filledRec, placed); // ledger: new
  await fake.fill(cid('rec-filled'), 5, 100);
  await bookFill(filledRec, placed, 5, 100, 5); // the workflow booked the fill but never synced the final status

  const unbooked = limitBuy(cid('rec-unbooked'), 'AMD', 3, 50);
  const unbookedRec = await ledgerIntent(unbooked, { finished: true });
  await syncOrder(db.pool, unbookedRec, await broker.submitOrder(unbooked));
  await fake.fill(cid('rec-unbooked'), 3, 50); // the fill event was lost; the workflow finished without it

  await ledgerIntent(limitBuy(cid('rec-stale'), 'NVDA', 1), { createdMinutesAgo: 10 });
  await ledgerIntent(limitBuy(cid('rec-young'), 'NVDA', 1), { createdMinutesAgo: 1 });

  await fake.engine.submitOrder(limitBuy(cid('manual-1'), 'AAPL', 2, 150)); // placed by a human in the Alpaca UI

  await db.pool.query(
    `INSERT INTO positions (account_id, symbol, qty, avg_cost, last_price) VALUES ($1, 'TSLA', 7, 200, 200)`,
    [accountId],
  );
}

describe('reconciliation against PostgreSQL and a fake Alpaca', () => {
  it('reports nothing, and writes nothing, for a ledger that agrees with the broker', async () => {
    await freshWorld();
    const working = limitBuy(cid('agree-working'), 'NVDA', 10, 90);
    await syncOrder(db.pool, await ledgerIntent(working), await broker.submitOrder(working));
    const done = limitBuy(cid('agree-done'), 'NVDA', 4);
    const doneRec = await ledgerIntent(done);
    const placed = await broker.submitOrder(done);
    await fake.fill(cid('agree-done'), 4, 100);
    await bookFill(doneRec, placed, 4, 100, 4);
    await syncOrder(db.pool, doneRec, (await broker.getOrderByClientOrderId(cid('agree-done')))!);

    const report = await run();
    expect(report.adopted).toEqual([]);
    expect(report.flagged).toEqual([]);
    expect(report.skipped).toEqual([]);
    expect(report.deferred).toEqual([]);
    expect(report.checked).toMatchObject({
      ledgerOpenOrders: 1,
      brokerOpenOrders: 1,
      brokerLookups: 0,
      ledgerPositions: 1,
    });
    expect(report.summary).toMatch(/0 adopted, 0 FLAGGED — ledger agrees with the broker/);
    expect(await issues(report.runId)).toEqual([]);
  });

  it("books Alpaca's end-of-day regulatory fees once each, so ledger cash equals the broker's to the cent", async () => {
    await freshWorld({ regulatoryFees: true });
    const today = new Date().toISOString().slice(0, 10);
    // A round trip in NVDA, fills booked as the trade workflow books them: the ledger and broker agree.
    const buy = limitBuy(cid('fee-buy'), 'NVDA', 500);
    const buyRec = await ledgerIntent(buy, { finished: true });
    const bought = await broker.submitOrder(buy);
    await fake.fill(buy.clientOrderId, 500, 100);
    await bookFill(buyRec, bought, 500, 100, 500);
    await syncOrder(db.pool, buyRec, (await broker.getOrderByClientOrderId(buy.clientOrderId))!);
    const sell: OrderRequest = { ...limitBuy(cid('fee-sell'), 'NVDA', 500), side: 'sell' };
    const sellRec = await ledgerIntent(sell, { finished: true });
    const sold = await broker.submitOrder(sell);
    await fake.fill(sell.clientOrderId, 200, 100.25);
    await bookFill(sellRec, sold, 200, 100.25, 200);
    await fake.fill(sell.clientOrderId, 300, 100.25);
    await bookFill(sellRec, sold, 300, 100.25, 500);
    await syncOrder(db.pool, sellRec, (await broker.getOrderByClientOrderId(sell.clientOrderId))!);
    expect((await run()).flagged).toEqual([]);

    // The broker closes the day: SEC 50,125 × 27.80 / 1e6 = 1.393475 → 1.40; TAF 500 × 0.000166 = 0.083 → 0.09.
    expect(fake.engine.endOfDay(today)).toBe(1.49);
    // A dry run lists them and writes nothing: the cash gap is still there and flagged.
    const dry = await run({ dryRun: true });
    expect(dry.fees.map((f) => [f.description, f.netAmount, f.symbol, f.date])).toEqual([
      ['REG fee', -1.4, 'NVDA', today],
      ['TAF fee', -0.09, 'NVDA', today],
    ]);
    expect(dry.flagged.map((f) => [f.kind, f.detail.diff])).toEqual([['cash_drift', -1.49]]);
    const before = await ledgerMoneyRows();

    // The broker rate-limits the first read: the run waits for the reset and books both fees.
    fake.rateLimitNext(1, 1);
    const report = await run();
    expect(report.fees.map((f) => f.netAmount)).toEqual([-1.4, -0.09]);
    expect(report.flagged).toEqual([]);
    expect(report.summary).toMatch(/2 broker fee\(s\) booked \(-1\.49\) — ledger agrees with the broker/);
    const after = await ledgerMoneyRows();
    expect(Number(after!.movements)).toBe(Number(before!.movements) + 2);
    expect(after!.cash).toBe((await broker.getAccount()).cash.toFixed(6)); // to the cent, NUMERIC against the broker
    expect((await ledgerInvariants(db.pool, accountId)).cashMinusMovements).toBe(0);

    // Every later run re-reads the last days and books nothing twice.
    const again = await run();
    expect(again.fees).toEqual([]);
    expect(await ledgerMoneyRows()).toEqual(after);

    // More fees than one page (100): every one booked, summed exactly in cents.
    for (let i = 0; i < 150; i++) fake.engine.chargeFee(today, 'TAF fee', 'NVDA', 0.01 * ((i % 7) + 1));
    const bulk = await run();
    expect(bulk.fees).toHaveLength(150);
    expect(bulk.flagged).toEqual([]);
    expect((await ledgerMoneyRows())!.cash).toBe((await broker.getAccount()).cash.toFixed(6));
    expect(fake.count('GET', '/v2/account/activities/FEE')).toBeGreaterThanOrEqual(2);

    // The broker cancels a fee it had charged (listed again as canceled) and gives the money back: the next run
    // reverses the booked fee once, and the ledger's cash follows the broker's again, to the cent. A fee cancelled
    // before it was ever booked moves nothing.
    const taf = fake.engine.feeActivities.find((f) => f.description === 'TAF fee' && f.netAmount === -0.09)!;
    fake.engine.cancelFee(taf.activityId);
    fake.engine.chargeFee(today, 'REG fee', 'ORCL', 0.5);
    fake.engine.cancelFee(fake.engine.feeActivities.at(-1)!.activityId);
    const moneyBefore = await ledgerMoneyRows();
    const reversed = await run();
    expect(reversed.fees).toEqual([]);
    expect(reversed.feeReversals!.map((f) => [f.activityId, f.netAmount, f.cancelled])).toEqual([
      [taf.activityId, -0.09, true],
    ]);
    expect(reversed.flagged).toEqual([]);
    expect(reversed.summary).toMatch(
      /1 cancelled broker fee\(s\) reversed \(\+0\.09\) — ledger agrees with the broker/,
    );
    const moneyAfter = await ledgerMoneyRows();
    expect(Number(moneyAfter!.movements)).toBe(Number(moneyBefore!.movements) + 1);
    expect(moneyAfter!.cash).toBe((await broker.getAccount()).cash.toFixed(6));
    expect((await ledgerInvariants(db.pool, accountId)).cashMinusMovements).toBe(0);
    const kept = await db.pool.query<{ kind: string; amount: string }>(
      `SELECT kind, amount::text FROM cash_movements WHERE account_id = $1 AND broker_activity_id = $2 ORDER BY id`,
      [accountId, taf.activityId],
    );
    expect(kept.rows).toEqual([
      { kind: 'fee', amount: '-0.090000' },
      { kind: 'fee_reversal', amount: '0.090000' },
    ]);
    // Reading the cancelled activity again reverses nothing twice.
    const reread = await run();
    expect(reread.feeReversals).toEqual([]);
    expect(await ledgerMoneyRows()).toEqual(moneyAfter);
  });

  it('detects a ledger that disagrees with the broker: adopts the safe parts, flags the rest, never trades or books', async () => {
    await freshWorld();
    await buildDisagreeingLedger();
    const moneyBefore = await ledgerMoneyRows();
    const postsBefore = fake.postsReceived;

    const report = await run();

    // Adopted: only order bookkeeping.
    expect(report.adopted.map((a) => [a.kind, a.clientOrderId, a.update.status])).toEqual([
      ['order_status', cid('rec-filled'), 'filled'],
      ['not_submitted', cid('rec-stale'), 'not_submitted'],
    ]);
    expect(await orderRow(cid('rec-filled'))).toMatchObject({ status: 'filled', filled_qty: '5.000000' });
    expect(await orderRow(cid('rec-stale'))).toMatchObject({ status: 'not_submitted', filled_qty: '0.000000' });
    expect(await orderRow(cid('rec-young'))).toMatchObject({ status: 'pending_submit' });
    expect(await orderRow(cid('rec-unbooked'))).toMatchObject({ status: 'new' }); // left open: the gap stays visible
    expect(await orderRow(cid('rec-ok'))).toMatchObject({ status: 'new' });
    expect(report.deferred.map((d) => d.clientOrderId)).toEqual([cid('rec-young')]);

    // Flagged: everything that would need money to move.
    expect(report.flagged.map((f) => [f.kind, f.symbol, f.clientOrderId])).toEqual([
      ['unbooked_fills_trade_closed', 'AMD', cid('rec-unbooked')],
      ['external_order', 'AAPL', cid('manual-1')],
      ['position_mismatch', 'AMD', null],
      ['position_mismatch', 'TSLA', null],
      ['cash_drift', null, null],
      // The TSLA position has no fills behind it: the ledger disagrees with itself too.
      ['ledger_invariant', 'TSLA', null],
    ]);
    const byKind = Object.fromEntries(report.flagged.map((f) => [`${f.kind}:${f.symbol}`, f]));
    expect(byKind['unbooked_fills_trade_closed:AMD']!.detail).toMatchObject({
      unbookedQty: 3,
      broker: { status: 'filled', filledQty: 3 },
    });
    expect(byKind['position_mismatch:AMD']!.detail).toMatchObject({
      ledgerQty: 0,
      brokerQty: 3,
      explainedByUnbookedFills: true,
    });
    expect(byKind['position_mismatch:TSLA']!.detail).toMatchObject({ ledgerQty: 7, brokerQty: 0, diff: -7 });
    expect(byKind['cash_drift:null']!.detail).toMatchObject({ ledgerCash: 99_500, brokerCash: 99_350, diff: -150 });
    expect(report.summary).toMatch(/2 adopted, 6 FLAGGED .* NEEDS A HUMAN/);

    // Every finding is recorded under the run id, with both quantities where relevant.
    const rows = await issues(report.runId);
    expect(rows.map((r) => [r.action, r.kind, r.symbol, r.client_order_id])).toEqual([
      ['ADOPTED', 'order_status', 'NVDA', cid('rec-filled')],
      ['ADOPTED', 'not_submitted', 'NVDA', cid('rec-stale')],
      ['FLAGGED', 'unbooked_fills_trade_closed', 'AMD', cid('rec-unbooked')],
      ['FLAGGED', 'external_order', 'AAPL', cid('manual-1')],
      ['FLAGGED', 'position_mismatch', 'AMD', null],
      ['FLAGGED', 'position_mismatch', 'TSLA', null],
      ['FLAGGED', 'cash_drift', null, null],
      ['FLAGGED', 'ledger_invariant', 'TSLA', null],
    ]);
    expect(rows[5]!.detail).toMatchObject({ ledgerQty: 7, brokerQty: 0, severity: 'critical' });

    // Nothing was sent to the broker but reads, and no fill, position or cash row was written.
    expect(fake.postsReceived).toBe(postsBefore);
    expect(fake.count('DELETE', /^\/v2\/orders/)).toBe(0);
    expect((await broker.getOrderByClientOrderId(cid('manual-1')))?.status).toBe('new');
    expect(await ledgerMoneyRows()).toEqual(moneyBefore);

    // Idempotent: a second run adopts nothing and reports the same unresolved flags.
    const again = await run();
    expect(again.adopted).toEqual([]);
    expect(again.skipped).toEqual([]);
    expect(again.flagged.map((f) => [f.kind, f.symbol])).toEqual(report.flagged.map((f) => [f.kind, f.symbol]));
    expect((await issues(again.runId)).every((r) => r.action === 'FLAGGED')).toBe(true);
    expect(await orderRow(cid('rec-stale'))).toMatchObject({ status: 'not_submitted' });
  });

  it('a dry run reports the same findings but writes nothing', async () => {
    await freshWorld();
    await buildDisagreeingLedger();
    const report = await run({ dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.adopted.map((a) => a.clientOrderId)).toEqual([cid('rec-filled'), cid('rec-stale')]);
    expect(report.flagged).toHaveLength(6);
    expect(report.summary).toMatch(/\(dry run\): 2 would be adopted/);
    expect(await orderRow(cid('rec-filled'))).toMatchObject({ status: 'new' });
    expect(await orderRow(cid('rec-stale'))).toMatchObject({ status: 'pending_submit' });
    expect(await issues(report.runId)).toEqual([]);
  });

  it('skips an adoption when the trade workflow moved the row while the broker was being read', async () => {
    await freshWorld();
    const req = limitBuy(cid('rec-race'), 'NVDA', 5);
    const rec = await ledgerIntent(req);
    const placed = await broker.submitOrder(req);
    await syncOrder(db.pool, rec, placed);
    await broker.cancelOrder(cid('rec-race'));
    // Between the ledger read and the diff, the workflow records the cancel itself (and more).
    const racing = delegate(broker, {
      getPositions: async () => {
        await db.pool.query(`UPDATE orders SET status = 'pending_cancel' WHERE client_order_id = $1`, [
          cid('rec-race'),
        ]);
        return broker.getPositions();
      },
    });
    const report = await run({}, racing);
    expect(report.adopted).toEqual([]);
    expect(report.skipped.map((s) => s.clientOrderId)).toEqual([cid('rec-race')]);
    expect(await orderRow(cid('rec-race'))).toMatchObject({ status: 'pending_cancel' }); // the workflow's write stands
    expect(await issues(report.runId)).toEqual([]);
    // The next run sees the new row and adopts the broker's terminal status.
    const next = await run();
    expect(next.adopted.map((a) => [a.clientOrderId, a.update.status])).toEqual([[cid('rec-race'), 'canceled']]);
  });

  it('flags an order whose lookup fails instead of guessing, and fails without writing when the broker is unreadable', async () => {
    await freshWorld();
    await ledgerIntent(limitBuy(cid('rec-lookup'), 'NVDA', 1), { createdMinutesAgo: 30 });
    const flaky = delegate(broker, {
      getOrderByClientOrderId: () => Promise.reject(new Error('connection reset')),
    });
    const report = await run({}, flaky);
    expect(report.adopted).toEqual([]);
    expect(report.flagged.map((f) => [f.kind, f.clientOrderId])).toEqual([['order_unverified', cid('rec-lookup')]]);
    expect(report.checked.lookupFailures).toBe(1);
    expect(await orderRow(cid('rec-lookup'))).toMatchObject({ status: 'pending_submit' });

    const down = delegate(broker, { listOpenOrders: () => Promise.reject(new Error('503 from broker')) });
    const before = await db.pool.query(`SELECT count(*)::int AS n FROM reconciliation_issues`);
    await expect(run({}, down)).rejects.toThrow('503 from broker');
    const after = await db.pool.query(`SELECT count(*)::int AS n FROM reconciliation_issues`);
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });
});

describe('npm run reconcile (CLI as a child process, BROKER=alpaca against the fake)', () => {
  const cli = (args: string[]) =>
    // The tsx CLI that `npm run reconcile` runs, called directly: through npx each call also started npm (0.4 s of CPU).
    execFileAsync(path.join(ROOT, 'node_modules/.bin/tsx'), ['src/cli/reconcile.ts', ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        ACCOUNT_ID: accountId,
        BROKER: 'alpaca',
        ALPACA_BASE_URL: fake.url,
        ALPACA_STREAM_URL: '',
        BROKER_API_KEY: KEY,
        BROKER_API_SECRET: SECRET,
        LOG_LEVEL: 'info',
      },
      timeout: 90_000,
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({
        code: e.code ?? -1,
        stdout: e.stdout ?? '',
        stderr: e.stderr ?? '',
      }),
    );

  it('exits 3 with the JSON report when something is flagged, and logs the flags loudly', async () => {
    await freshWorld();
    await buildDisagreeingLedger();
    const r = await cli(['--json']);
    expect(r.code, r.stderr).toBe(3);
    const report = JSON.parse(r.stdout) as {
      runId: string;
      adopted: Array<{ kind: string }>;
      flagged: Array<{ kind: string }>;
    };
    expect(report.adopted.map((a) => a.kind)).toEqual(['order_status', 'not_submitted']);
    expect(report.flagged.map((f) => f.kind)).toEqual([
      'unbooked_fills_trade_closed',
      'external_order',
      'position_mismatch',
      'position_mismatch',
      'cash_drift',
      'ledger_invariant',
    ]);
    expect((await issues(report.runId)).length).toBe(8);
    // Flags at error level on stderr (one JSON line each, plus the summary); keys never logged.
    const errorLines = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: string; message: string })
      .filter((l) => l.level === 'error');
    expect(errorLines.filter((l) => l.message.startsWith('RECONCILIATION FLAGGED:'))).toHaveLength(6);
    expect(errorLines.some((l) => /6 FLAGGED .*NEEDS A HUMAN/.test(l.message))).toBe(true);
    expect(r.stderr).not.toContain(SECRET);

    // Table mode: the readable table and the summary; still exit 3 (flags persist), nothing left to adopt.
    const t = await cli([]);
    expect(t.code, t.stderr).toBe(3);
    expect(t.stdout).toMatch(/ACTION\s+SEVERITY\s+KIND\s+SYMBOL\s+CLIENT ORDER ID\s+WHAT/);
    expect(t.stdout).toMatch(new RegExp(`FLAGGED\\s+critical\\s+external_order\\s+AAPL\\s+${cid('manual-1')}`));
    expect(t.stdout).toMatch(/FLAGGED\s+critical\s+position_mismatch\s+TSLA\s+-\s+TSLA: ledger 7, broker 0/);
    expect(t.stdout).toMatch(/reconciliation rec-\S+: 0 adopted, 6 FLAGGED .* NEEDS A HUMAN\n$/);
  });

  it('exits 0 for a consistent ledger, and 2 on bad usage', async () => {
    await freshWorld();
    const r = await cli([]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/No differences\./);
    expect(r.stdout).toMatch(/0 adopted, 0 FLAGGED — ledger agrees with the broker/);
    const bad = await cli(['--nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown argument --nope/);
  });
});

/** A Broker that forwards to `target` except for the overridden methods. */
function delegate(target: Broker, overrides: Partial<Broker>): Broker {
  return new Proxy(target, {
    get(t, p, r) {
      if (p in overrides) return overrides[p as keyof Broker];
      const v = Reflect.get(t, p, r) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}
