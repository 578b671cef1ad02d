import { execFile } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import type { Pool } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createRiskActivities } from '../../src/activities/risk';
import type { TradeSignal } from '../../src/contracts/signal';
import {
  ensureAccount,
  evaluateAndReserve,
  getTradingState,
  loadPortfolio,
  loadRecentBars,
  setTradingState,
} from '../../src/adapters/postgres/risk-store';
import { bookOrderProgress, recordOrderIntent, releaseReservation } from '../../src/adapters/postgres/ledger';
import { countRoundTrips, createPool } from '../../src/adapters/postgres/pool';
import {
  BAR_WAIT_ATTEMPTS,
  BarStoreBehindError,
  DEFAULT_RISK_LIMITS,
  IN_FLIGHT_WAIT_ATTEMPTS,
  TradesInFlightError,
  evaluate,
  waitDelayMs,
  type RiskDecision,
  type RiskLimits,
} from '../../src/domain/risk';
import { createLogger } from '../../src/logging';
import { createTestDatabase, type TestDatabase } from '../support/pg';

/** Against a real PostgreSQL: a fresh migrated database for this file (DATABASE_URL names the server). */

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const NOW = new Date('2025-01-02T15:00:00.000Z');
const LIMITS: RiskLimits = DEFAULT_RISK_LIMITS;

const quietLogger = createLogger('risk-store-test', { level: 'silent' });

let db: TestDatabase;
/** The pool evaluations run on: pipelined as the trade worker's, or one statement at a time (both must hold). */
let riskPool: Pool;
let pipelinedPool: Pool;
/** Round trips made on pipelinedPool (countRoundTrips, as the trade worker counts sat_pg_round_trips_total). */
const roundTrips = { count: 0 };
let seq = 0;

function tradeSignal(over: Record<string, unknown> = {}) {
  const id = `sig-it-${++seq}`;
  return {
    schema_version: 1 as const,
    signal_id: id,
    correlation_id: `corr-${id}`,
    symbol: 'AAPL',
    side: 'buy' as const,
    price: 100,
    confidence: 0.9,
    strategy: `strat-${id}`, // distinct by default: the duplicate cooldown is tested on purpose only
    created_at: NOW.toISOString(),
    asset_class: 'equity' as const,
    ...over,
  };
}

async function newAccount(cash = 100_000): Promise<string> {
  const id = `acct-${++seq}`;
  await ensureAccount(db.pool, id, cash);
  return id;
}

const decide = (
  accountId: string,
  signal: Record<string, unknown>,
  over: Partial<{ workflowId: string; now: Date; limits: RiskLimits }> = {},
) =>
  evaluateAndReserve(riskPool, {
    workflowId: over.workflowId ?? `trade-${String(signal.signal_id)}`,
    signal,
    market: {},
    limits: over.limits ?? LIMITS,
    accountId,
    now: over.now ?? NOW,
  });

async function heldReservations(accountId: string) {
  const r = await db.pool.query<{ n: string; qty: string; notional: string }>(
    `SELECT count(*)::text AS n, COALESCE(sum(qty), 0)::text AS qty, COALESCE(sum(notional), 0)::text AS notional
       FROM reservations WHERE account_id = $1 AND status = 'HELD'`,
    [accountId],
  );
  return { count: Number(r.rows[0]!.n), qty: Number(r.rows[0]!.qty), notional: Number(r.rows[0]!.notional) };
}

/** A filled position in the ledger (as the fill recorder would leave it). */
async function givePosition(accountId: string, symbol: string, qty: number, price: number) {
  await db.pool.query(
    `INSERT INTO positions (account_id, symbol, qty, avg_cost, last_price) VALUES ($1, $2, $3, $4, $4)`,
    [accountId, symbol, qty, price],
  );
  await db.pool.query(`UPDATE accounts SET cash = cash - $2 WHERE account_id = $1`, [accountId, qty * price]);
}

beforeAll(async () => {
  db = await createTestDatabase('sat_risk');
  // drop() ends the pool, then DROP DATABASE ... WITH (FORCE) may terminate a connection the pool is still
  // closing; the pool re-emits that as an 'error' event, which must not crash the test run.
  db.pool.on('error', () => undefined);
  pipelinedPool = createPool(db.url, 20, { pipeline: true, logger: quietLogger });
  pipelinedPool.on('error', () => undefined);
  countRoundTrips(pipelinedPool, () => roundTrips.count++);
  riskPool = pipelinedPool;
});
afterAll(async () => {
  await pipelinedPool?.end().catch(() => undefined);
  await db?.drop();
});

describe('ensureAccount', () => {
  it('is idempotent under concurrency: one account, one deposit, ACTIVE with one history row', async () => {
    const id = `acct-race-${++seq}`;
    await Promise.all(Array.from({ length: 8 }, () => ensureAccount(db.pool, id, 100_000)));
    const deposits = await db.pool.query(`SELECT amount::float8 AS amount FROM cash_movements WHERE account_id = $1`, [
      id,
    ]);
    expect(deposits.rows).toEqual([{ amount: 100_000 }]);
    expect(await getTradingState(db.pool, id)).toBe('ACTIVE');
    const history = await db.pool.query(`SELECT state FROM trading_state_history WHERE account_id = $1`, [id]);
    expect(history.rows).toEqual([{ state: 'ACTIVE' }]);
    const p = await loadPortfolio(db.pool, id);
    expect(p).toMatchObject({
      cash: 100_000,
      equity: 100_000,
      dayStartEquity: 100_000,
      tradingState: 'ACTIVE',
      reservations: [],
    });
  });
});

describe.each([
  ['on a pipelined pool (as the trade worker runs it)', true],
  ['one statement at a time', false],
])('evaluateAndReserve %s', (_, pipelined) => {
  beforeAll(() => {
    riskPool = pipelined ? pipelinedPool : db.pool;
  });

  it('approves, records the decision with its checks, the trade row and a HELD reservation', async () => {
    const acct = await newAccount();
    const sig = tradeSignal();
    const { decision, replayed } = await decide(acct, sig);
    expect(replayed).toBe(false);
    expect(decision).toMatchObject({ decision: 'APPROVED', qty: 100, notional: 10_000 });

    const rd = await db.pool.query(
      `SELECT decision, reason_code, qty::float8 AS qty, checks, strategy, asset_class, correlation_id FROM risk_decisions WHERE workflow_id = $1`,
      [`trade-${sig.signal_id}`],
    );
    expect(rd.rows[0]).toMatchObject({
      decision: 'APPROVED',
      reason_code: 'approved',
      qty: 100,
      strategy: sig.strategy,
      asset_class: 'equity',
      correlation_id: sig.correlation_id,
    });
    expect(rd.rows[0].checks.find((c: { name: string }) => c.name === 'exposure_limit_breach')).toMatchObject({
      passed: true,
      value: 10_000,
      limit: 10_000,
    });

    const trade = await db.pool.query(`SELECT status, reason_code, side, symbol FROM trades WHERE workflow_id = $1`, [
      `trade-${sig.signal_id}`,
    ]);
    expect(trade.rows[0]).toEqual({ status: 'APPROVED', reason_code: 'approved', side: 'buy', symbol: 'AAPL' });
    expect(await heldReservations(acct)).toEqual({ count: 1, qty: 100, notional: 10_000 });
  });

  it('a rejection writes the decision and a REJECTED trade, and reserves nothing', async () => {
    const acct = await newAccount();
    const sig = tradeSignal({ confidence: 0.5 });
    const { decision } = await decide(acct, sig);
    expect(decision).toMatchObject({ decision: 'REJECTED', reasonCode: 'low_confidence', qty: 0 });
    const trade = await db.pool.query(`SELECT status, reason_code FROM trades WHERE workflow_id = $1`, [
      `trade-${sig.signal_id}`,
    ]);
    expect(trade.rows[0]).toEqual({ status: 'REJECTED', reason_code: 'low_confidence' });
    expect((await heldReservations(acct)).count).toBe(0);
  });

  it('a malformed signal is rejected as invalid_signal and still audited', async () => {
    const acct = await newAccount();
    const { decision } = await decide(
      acct,
      { signal_id: `bad-${++seq}`, symbol: 'AAPL', side: 'buy', price: -150, confidence: 0.9, strategy: 's' },
      { workflowId: `trade-bad-${seq}` },
    );
    expect(decision.reasonCode).toBe('invalid_signal');
    const rd = await db.pool.query(`SELECT reason_code FROM risk_decisions WHERE workflow_id = $1`, [
      `trade-bad-${seq}`,
    ]);
    expect(rd.rows).toEqual([{ reason_code: 'invalid_signal' }]);
  });

  it('an activity retry returns the stored decision unchanged and never reserves twice (also when racing)', async () => {
    const acct = await newAccount();
    const sig = tradeSignal({ order: { quantity_hint: 30 } });
    const first = await decide(acct, sig);
    const retries = await Promise.all(Array.from({ length: 5 }, () => decide(acct, sig)));
    for (const r of retries) {
      expect(r.replayed).toBe(true);
      expect(r.decision).toEqual(first.decision);
    }
    // Even a retry after the market moved (a later clock, different bars) gets the original answer.
    const late = await decide(acct, { ...sig, price: 10 }, { now: new Date(NOW.getTime() + 3_600_000) });
    expect(late.decision).toEqual(first.decision);
    expect(await heldReservations(acct)).toEqual({ count: 1, qty: 30, notional: 3_000 });
    const rows = await db.pool.query(`SELECT count(*)::int AS n FROM risk_decisions WHERE workflow_id = $1`, [
      `trade-${sig.signal_id}`,
    ]);
    expect(rows.rows[0].n).toBe(1);
  });

  it('20 concurrent buys that each fit alone never together exceed the exposure limit', async () => {
    const acct = await newAccount();
    // Each asks for 15 shares at $100 = $1,500: alone, every one would be approved in full.
    const signals = Array.from({ length: 20 }, () => tradeSignal({ order: { quantity_hint: 15 } }));
    const empty = (await loadPortfolio(db.pool, acct, { now: NOW }))!;
    for (const s of signals) expect(evaluate(s, empty, {}, LIMITS)).toMatchObject({ decision: 'APPROVED', qty: 15 });

    const results = await Promise.all(signals.map((s) => decide(acct, s)));
    const approved = results.filter((r) => r.decision.decision === 'APPROVED');
    const rejected = results.filter((r) => r.decision.decision === 'REJECTED');
    const held = await heldReservations(acct);
    // The exposure limit is 10% of $100k = $10,000 = 100 shares: six full fills of 15, one capped to 10.
    expect(held.notional).toBeLessThanOrEqual(10_000);
    expect(held.notional).toBe(10_000);
    expect(held.count).toBe(approved.length);
    expect(approved.length).toBe(7);
    expect(approved.map((r) => r.decision.qty).sort((a, b) => a - b)).toEqual([10, 15, 15, 15, 15, 15, 15]);
    for (const r of rejected) expect(r.decision.reasonCode).toBe('exposure_limit_breach');
  });

  it('concurrent buys across symbols respect the portfolio-wide stress limit', async () => {
    const acct = await newAccount();
    // Ten symbols, each $10,000 (its own exposure limit): the stress test caps gross exposure at $50,000.
    const signals = Array.from({ length: 10 }, (_, i) => tradeSignal({ symbol: `SYM${i}` }));
    await Promise.all(signals.map((s) => decide(acct, s)));
    const held = await heldReservations(acct);
    expect(held.notional).toBe(50_000);
    const reasons = await db.pool.query(
      `SELECT reason_code, count(*)::int AS n FROM risk_decisions WHERE account_id = $1 GROUP BY 1 ORDER BY 1`,
      [acct],
    );
    expect(reasons.rows).toEqual([
      { reason_code: 'approved', n: 5 },
      { reason_code: 'stress_test_fail', n: 5 },
    ]);
  });

  it('releaseReservation is idempotent and frees the exposure', async () => {
    const acct = await newAccount();
    const a = tradeSignal();
    expect((await decide(acct, a)).decision.qty).toBe(100);
    expect((await decide(acct, tradeSignal())).decision.reasonCode).toBe('exposure_limit_breach');
    expect(await releaseReservation(db.pool, `trade-${a.signal_id}`)).toBe(true);
    expect(await releaseReservation(db.pool, `trade-${a.signal_id}`)).toBe(false);
    const r = await db.pool.query(`SELECT status, released_at FROM reservations WHERE workflow_id = $1`, [
      `trade-${a.signal_id}`,
    ]);
    expect(r.rows[0].status).toBe('RELEASED');
    expect(r.rows[0].released_at).toBeInstanceOf(Date);
    expect((await decide(acct, tradeSignal())).decision).toMatchObject({ decision: 'APPROVED', qty: 100 });
  });

  it('the duplicate cooldown reads the last approved signal time per symbol + strategy from the ledger', async () => {
    const acct = await newAccount();
    const strategy = 'ma_cross';
    const at = (ms: number) => ({
      strategy,
      created_at: new Date(NOW.getTime() + ms).toISOString(),
      order: { quantity_hint: 1 },
    });
    expect((await decide(acct, tradeSignal(at(0)))).decision.decision).toBe('APPROVED');
    expect((await decide(acct, tradeSignal(at(59_000)))).decision.reasonCode).toBe('duplicate_signal');
    expect((await decide(acct, tradeSignal({ ...at(59_000), strategy: 'rsi' }))).decision.decision).toBe('APPROVED');
    // Market time, not wall time: a bar a minute later is no duplicate, though decided in the same instant.
    expect((await decide(acct, tradeSignal(at(60_000)))).decision.decision).toBe('APPROVED');
    // ... and the same bar decided an hour later still is one.
    const late = await decide(acct, tradeSignal(at(60_000)), { now: new Date(NOW.getTime() + 3_600_000) });
    expect(late.decision.reasonCode).toBe('duplicate_signal');
  });

  it('builds the portfolio from ledger positions: a reducing sell passes, a buy over the limit does not', async () => {
    const acct = await newAccount();
    await givePosition(acct, 'AAPL', 150, 100); // $15,000: over the 10% exposure limit after a rally
    const p = (await loadPortfolio(db.pool, acct, { mark: { symbol: 'AAPL', price: 110 } }))!;
    expect(p.equity).toBeCloseTo(85_000 + 150 * 110);
    expect(p.unrealizedPnl).toBeCloseTo(1_500);
    expect((await decide(acct, tradeSignal())).decision.reasonCode).toBe('exposure_limit_breach');
    const sell = await decide(acct, tradeSignal({ side: 'sell', order: { quantity_hint: 200 } }));
    expect(sell.decision).toMatchObject({ decision: 'APPROVED', qty: 150 }); // capped at the holding: no shorting
    // The in-flight sell claims the shares: a second sell has nothing left to sell.
    expect((await decide(acct, tradeSignal({ side: 'sell' }))).decision.reasonCode).toBe('short_not_allowed');
  });

  it('rolls day-start equity at a new trading day and trips the circuit breaker on a 5% drawdown', async () => {
    const acct = await newAccount();
    await givePosition(acct, 'MSFT', 100, 100);
    await db.pool.query(
      `UPDATE accounts SET day_start_equity = 1, day_start_date = '2025-01-01' WHERE account_id = $1`,
      [acct],
    );
    await decide(acct, tradeSignal({ order: { quantity_hint: 1 } }));
    const rolled = await db.pool.query(
      `SELECT day_start_equity::float8 AS e, day_start_date::text AS d FROM accounts WHERE account_id = $1`,
      [acct],
    );
    expect(rolled.rows[0]).toEqual({ e: 100_000, d: '2025-01-02' });
    // MSFT marks down 50% (its last price): equity 95,000 vs 100,000 at the day start.
    await db.pool.query(`UPDATE positions SET last_price = 50 WHERE account_id = $1 AND symbol = 'MSFT'`, [acct]);
    expect((await decide(acct, tradeSignal({ order: { quantity_hint: 1 } }))).decision.reasonCode).toBe(
      'circuit_breaker',
    );
    // Exits are still allowed while the breaker is tripped.
    expect(
      (await decide(acct, tradeSignal({ symbol: 'MSFT', side: 'sell', price: 50, order: { quantity_hint: 10 } })))
        .decision.decision,
    ).toBe('APPROVED');
  });

  it('fails (retryably) when the account does not exist', async () => {
    await expect(decide('no-such-account', tradeSignal())).rejects.toThrow(/does not exist/);
  });
});

describe('loadPortfolio', () => {
  it("a held symbol's asset class is its latest approved decision's (rejected ones and other symbols aside)", async () => {
    const acct = await newAccount();
    const decision = (symbol: string, assetClass: string, minutes: number, verdict = 'APPROVED') =>
      db.pool.query(
        `INSERT INTO risk_decisions (workflow_id, signal_id, correlation_id, account_id, symbol, side, decision,
                                     reason_code, qty, notional, checks, asset_class, created_at)
         VALUES ($1, $1, $1, $2, $3, 'buy', $4, 'x', 1, 1, '[]', $5, $6)`,
        [`wf-class-${++seq}`, acct, symbol, verdict, assetClass, new Date(NOW.getTime() + minutes * 60_000)],
      );
    await decision('XYZ', 'futures', 1);
    await decision('XYZ', 'crypto', 2);
    await decision('XYZ', 'options', 3, 'REJECTED');
    await decision('ABC', 'crypto', 4);
    await givePosition(acct, 'XYZ', 2, 10);
    await givePosition(acct, 'DEF', 3, 10);
    const p = (await loadPortfolio(db.pool, acct))!;
    expect(p.positions.XYZ!.assetClass).toBe('crypto');
    expect(p.positions.DEF!.assetClass).toBe('equity'); // never decided here: the default
    expect(p.positions.ABC).toBeUndefined();
  });
});

describe("evaluateAndReserve on the trade worker's pipelined pool", () => {
  beforeAll(() => {
    riskPool = pipelinedPool;
  });

  it('takes two round trips: lock and reads, then writes and COMMIT; a replay too, and it writes nothing', async () => {
    const acct = await newAccount();
    const sig = tradeSignal({ order: { quantity_hint: 5 } });
    await db.pool.query(`UPDATE accounts SET day_start_date = '2025-01-01' WHERE account_id = $1`, [acct]);
    const before = roundTrips.count;
    expect((await decide(acct, sig)).decision).toMatchObject({ decision: 'APPROVED', qty: 5 });
    expect(roundTrips.count - before).toBe(2);

    const replayAt = roundTrips.count;
    // A retry on a later trading day: the day roll it reads under the lock is rolled back with the replay.
    const replay = await decide(acct, sig, { now: new Date('2025-01-03T15:00:00.000Z') });
    expect(replay.replayed).toBe(true);
    expect(roundTrips.count - replayAt).toBe(2);
    const day = await db.pool.query(`SELECT day_start_date::text AS d FROM accounts WHERE account_id = $1`, [acct]);
    expect(day.rows[0]).toEqual({ d: '2025-01-02' });
    expect(await heldReservations(acct)).toEqual({ count: 1, qty: 5, notional: 500 });
  });

  it('a write failing in the second round trip commits nothing, releases the lock, and the retry decides afresh', async () => {
    const acct = await newAccount();
    const sig = tradeSignal({ order: { quantity_hint: 7 } });
    const workflowId = `trade-${sig.signal_id}`;
    // Fault injection in the real server: the reservation (the last write, after the decision and the trade row
    // in the same pipelined batch as COMMIT) fails for this workflow only.
    const fn = `fail_reservation_${seq}`;
    await db.pool.query(
      `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.workflow_id = '${workflowId}' THEN RAISE EXCEPTION 'injected reservation failure'; END IF;
         RETURN NEW;
       END $$`,
    );
    await db.pool.query(`CREATE TRIGGER ${fn} BEFORE INSERT ON reservations FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
    try {
      await expect(decide(acct, sig)).rejects.toThrow(/injected reservation failure/);
      for (const table of ['risk_decisions', 'trades', 'reservations']) {
        const r = await db.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE workflow_id = $1`, [workflowId]);
        expect({ table, n: r.rows[0].n }).toEqual({ table, n: 0 });
      }
      // The account's lock went with the rollback: the next evaluation of the account is decided.
      expect((await decide(acct, tradeSignal({ order: { quantity_hint: 1 } }))).decision.decision).toBe('APPROVED');
    } finally {
      await db.pool.query(`DROP TRIGGER ${fn} ON reservations`);
      await db.pool.query(`DROP FUNCTION ${fn}()`);
    }
    // The activity's retry decides and reserves once.
    const retry = await decide(acct, sig);
    expect(retry).toMatchObject({ replayed: false, decision: { decision: 'APPROVED', qty: 7 } });
    expect(await heldReservations(acct)).toEqual({ count: 2, qty: 8, notional: 800 });
  });
});

describe('loadRecentBars and the risk activity', () => {
  it('loads the last bars (oldest first) at or before the signal time, one interval only; the activity sizes on them', async () => {
    const insert = (i: number, interval: string, range = 1) =>
      db.pool.query(
        `INSERT INTO market_bars (symbol, interval, ts, open, high, low, close, volume, source) VALUES ('BARS', $1, $2, 100, $3, $4, 100, 1000, 'test')`,
        [interval, new Date(Date.UTC(2024, 11, 1 + i)).toISOString(), 100 + range, 100 - range],
      );
    for (let i = 0; i < 30; i++) await insert(i, '1d', 2);
    await db.pool.query(
      `INSERT INTO market_bars (symbol, interval, ts, open, high, low, close, volume, source) VALUES ('BARS', '1m', '2024-11-01T15:00:00Z', 1, 1, 1, 1, 1, 'test')`,
    );
    const bars = await loadRecentBars(db.pool, 'BARS', 21, '2024-12-25T00:00:00Z');
    expect(bars).toHaveLength(21);
    expect(bars[0]!.timestamp < bars[20]!.timestamp).toBe(true);
    expect(bars[20]!.timestamp).toBe('2024-12-25T00:00:00.000Z');

    const lines: string[] = [];
    const logger = createLogger('risk-test', {
      level: 'info',
      destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) as never,
    });
    const accountId = `acct-activity-${++seq}`;
    // On a pipelined pool, as the trade worker runs it.
    const acts = createRiskActivities({
      pool: pipelinedPool,
      limits: LIMITS,
      accountId,
      startingCash: 100_000,
      logger,
    });
    const sig = tradeSignal({ symbol: 'BARS', created_at: '2024-12-25T00:00:00.000Z', order: { quantity_hint: 10 } });
    const decision = await acts.evaluateRisk({ workflowId: `trade-${sig.signal_id}`, signal: sig as TradeSignal });
    expect(decision).toMatchObject({ decision: 'APPROVED', qty: 10 });
    expect(decision.sizing).toMatchObject({ method: 'atr', atr: 4, stopDistance: 8 });
    const logged = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === 'risk approved');
    expect(logged).toMatchObject({ correlation_id: sig.correlation_id, reason_code: 'approved', qty: 10 });

    // The activity's evaluation, its bars read included, is two round trips (the account exists by now).
    const next = tradeSignal({ symbol: 'BARS', created_at: '2024-12-25T00:00:00.000Z', order: { quantity_hint: 1 } });
    const before = roundTrips.count;
    const nextDecision = await acts.evaluateRisk({
      workflowId: `trade-${next.signal_id}`,
      signal: next as TradeSignal,
    });
    expect(roundTrips.count - before).toBe(2);
    expect(nextDecision).toMatchObject({ decision: 'APPROVED', qty: 1, sizing: { method: 'atr', atr: 4 } });

    await releaseReservation(db.pool, `trade-${sig.signal_id}`);
    await releaseReservation(db.pool, `trade-${sig.signal_id}`);
    await releaseReservation(db.pool, `trade-${next.signal_id}`);
    expect((await heldReservations(accountId)).count).toBe(0);
  });
});

/** The risk activity of a new account, called as attempt `n` of an activity, and what an evaluation wrote. */
function riskActivityAttempts(accountId: string) {
  const acts = createRiskActivities({
    pool: pipelinedPool,
    limits: LIMITS,
    accountId,
    startingCash: 100_000,
    logger: quietLogger,
  });
  const attempt = (n: number, sig: ReturnType<typeof tradeSignal>) =>
    new MockActivityEnvironment({ attempt: n }).run(acts.evaluateRisk, {
      workflowId: `trade-${sig.signal_id}`,
      signal: sig as TradeSignal,
    });
  const written = async (workflowId: string) => {
    const r = await db.pool.query<{ decisions: string; trades: string; reservations: string }>(
      `SELECT (SELECT count(*) FROM risk_decisions WHERE workflow_id = $1)::text AS decisions,
              (SELECT count(*) FROM trades WHERE workflow_id = $1)::text AS trades,
              (SELECT count(*) FROM reservations WHERE workflow_id = $1)::text AS reservations`,
      [workflowId],
    );
    return r.rows[0];
  };
  return { acts, attempt, written };
}

describe("the risk activity waits for the signal's bar", () => {
  it('fails its first attempts (writing nothing) while the store is a bar behind, decides on the last, and never waits for a far bar', async () => {
    const day = (i: number) => new Date(Date.UTC(2024, 11, 1 + i)).toISOString();
    const insert = (i: number) =>
      db.pool.query(
        `INSERT INTO market_bars (symbol, interval, ts, open, high, low, close, volume, source)
         VALUES ('LAGS', '1d', $1, 100, $2, 98, 100, 1000, 'test')`,
        [day(i), 102 + (i % 3)],
      );
    for (let i = 0; i < 20; i++) await insert(i);
    const { acts, attempt, written } = riskActivityAttempts(`acct-lag-${++seq}`);

    // The store holds days 0-19; a signal on day 20 (the next bar) waits on every attempt up to the cap.
    const late = tradeSignal({ symbol: 'LAGS', created_at: day(20), order: { quantity_hint: 5 } });
    for (let n = 1; n <= BAR_WAIT_ATTEMPTS; n++) {
      // A designed wait: an application failure of the wait's type, retried after the wait's delay, not the policy's.
      const err = await attempt(n, late).catch((e: unknown) => e);
      expect(err).toMatchObject({ type: 'BarStoreBehindError', nextRetryDelay: waitDelayMs(n) });
      expect((err as Error).cause).toBeInstanceOf(BarStoreBehindError);
      expect((err as Error).cause).toMatchObject({ symbol: 'LAGS', signalBar: day(20), storedThrough: day(19) });
    }
    expect(await written(`trade-${late.signal_id}`)).toEqual({ decisions: '0', trades: '0', reservations: '0' });
    // The last attempt decides on what is stored, and says so.
    const decided = await attempt(BAR_WAIT_ATTEMPTS + 1, late);
    expect(decided).toMatchObject({ decision: 'APPROVED', sizing: { method: 'atr', barsThrough: day(19) } });
    expect(await written(`trade-${late.signal_id}`)).toEqual({ decisions: '1', trades: '1', reservations: '1' });

    // Once the bar is stored the first attempt decides on it.
    await insert(20);
    const onTime = tradeSignal({ symbol: 'LAGS', created_at: day(20), order: { quantity_hint: 5 } });
    expect(await attempt(1, onTime)).toMatchObject({ sizing: { method: 'atr', barsThrough: day(20) } });

    // A signal 10 bars past the newest stored bar is not a bar behind: it is decided at once, on what there is.
    const far = tradeSignal({ symbol: 'LAGS', created_at: day(31), order: { quantity_hint: 5 } });
    expect(await attempt(1, far)).toMatchObject({ sizing: { method: 'atr', barsThrough: day(20) } });
    // Called outside an activity (no retry to wait with), it never waits.
    const direct = tradeSignal({ symbol: 'LAGS', created_at: day(21), order: { quantity_hint: 5 } });
    await expect(
      acts.evaluateRisk({ workflowId: `trade-${direct.signal_id}`, signal: direct as TradeSignal }),
    ).resolves.toMatchObject({
      sizing: { barsThrough: day(20) },
    });
  });
});

describe("the risk activity waits for the symbol's trades in flight", () => {
  it('an exit a cap rejects while the buy before it is in flight waits (writing nothing) and is approved once the buy has filled', async () => {
    const accountId = `acct-inflight-${++seq}`;
    const { attempt, written } = riskActivityAttempts(accountId);
    const symbol = 'FLYT';

    // The entry is approved and in flight: its reservation is HELD, nothing has filled yet.
    const buy = tradeSignal({ symbol });
    const approved = (await attempt(1, buy)) as RiskDecision;
    expect(approved).toMatchObject({ decision: 'APPROVED' });

    // The exit, signalled on the bar that fills the entry, finds no shares: it waits on every attempt up to the cap.
    const exit = tradeSignal({ symbol, side: 'sell' });
    for (let n = 1; n <= IN_FLIGHT_WAIT_ATTEMPTS; n++) {
      const err = await attempt(n, exit).catch((e: unknown) => e);
      expect(err).toMatchObject({ type: 'TradesInFlightError', nextRetryDelay: waitDelayMs(n) });
      expect((err as Error).cause).toBeInstanceOf(TradesInFlightError);
      expect((err as Error).cause).toMatchObject({
        symbol,
        reasonCode: 'short_not_allowed',
        inFlight: [`trade-${buy.signal_id}`],
      });
    }
    expect(await written(`trade-${exit.signal_id}`)).toEqual({ decisions: '0', trades: '0', reservations: '0' });

    // The entry fills and is booked (the trade closed, its reservation released, the shares held)...
    const ctx = {
      workflowId: `trade-${buy.signal_id}`,
      accountId,
      correlationId: buy.correlation_id,
      broker: 'simulated',
    };
    const request = {
      clientOrderId: ctx.workflowId,
      symbol,
      side: 'buy' as const,
      qty: approved.qty,
      type: 'market' as const,
      timeInForce: 'day' as const,
    };
    await recordOrderIntent(db.pool, { ...ctx, request });
    const at = new Date().toISOString();
    await bookOrderProgress(
      pipelinedPool,
      ctx,
      {
        brokerOrderId: 'b-flyt',
        ...request,
        status: 'filled',
        filledQty: approved.qty,
        filledAvgPrice: 100,
        createdAt: at,
        updatedAt: at,
      },
      [
        {
          executionId: 'x-flyt',
          clientOrderId: ctx.workflowId,
          brokerOrderId: 'b-flyt',
          symbol,
          side: 'buy',
          qty: approved.qty,
          price: 100,
          fee: 0,
          cumQty: approved.qty,
          timestamp: at,
        },
      ],
      null,
      { outcome: 'FILLED' },
    );
    // ...so the exit's next attempt decides on the shares: approved, not lost to the race.
    expect(await attempt(IN_FLIGHT_WAIT_ATTEMPTS, exit)).toMatchObject({
      decision: 'APPROVED',
      reasonCode: 'approved',
    });

    // Bounded: a second exit while the first is in flight (its shares claimed) waits, then its last attempt decides.
    const again = tradeSignal({ symbol, side: 'sell' });
    await expect(attempt(1, again)).rejects.toMatchObject({ type: 'TradesInFlightError' });
    expect(await attempt(IN_FLIGHT_WAIT_ATTEMPTS + 1, again)).toMatchObject({
      decision: 'REJECTED',
      reasonCode: 'short_not_allowed',
    });

    // A gate's rejection never waits, in flight or not (confidence does not depend on the position).
    const unsure = tradeSignal({ symbol, side: 'sell', confidence: 0.01 });
    expect(await attempt(1, unsure)).toMatchObject({ decision: 'REJECTED', reasonCode: 'low_confidence' });
    // Nor does anything once nothing of the symbol is in flight.
    await releaseReservation(db.pool, `trade-${exit.signal_id}`);
    const alone = tradeSignal({ symbol: 'ALNE', side: 'sell' });
    expect(await attempt(1, alone)).toMatchObject({ decision: 'REJECTED', reasonCode: 'short_not_allowed' });
  });
});

describe('kill switch (CLI as a child process)', () => {
  const cli = (accountId: string, ...args: string[]) =>
    // The tsx CLI that `npm run halt/resume/reduce-only` runs, called directly: through npx each call also started npm (0.4 s of CPU).
    execFileAsync(path.join(ROOT, 'node_modules/.bin/tsx'), ['src/cli/trading-state.ts', ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        ACCOUNT_ID: accountId,
        STARTING_CASH: '100000',
        LOG_LEVEL: 'silent',
      },
      timeout: 60_000,
    });

  it('HALTED rejects the next evaluation; REDUCING allows only reducing trades; ACTIVE restores', async () => {
    const acct = await newAccount();
    await givePosition(acct, 'AAPL', 50, 100);

    const halted = await cli(acct, 'HALTED', '--reason', 'integration test');
    expect(halted.stdout).toMatch(
      new RegExp(`account ${acct}: trading state HALTED \\(was ACTIVE\\).*reason: integration test`),
    );
    expect((await decide(acct, tradeSignal({ order: { quantity_hint: 1 } }))).decision.reasonCode).toBe(
      'trading_halted',
    );
    expect((await decide(acct, tradeSignal({ side: 'sell', order: { quantity_hint: 1 } }))).decision.reasonCode).toBe(
      'trading_halted',
    );

    await cli(acct, 'REDUCING');
    expect((await decide(acct, tradeSignal({ order: { quantity_hint: 1 } }))).decision.reasonCode).toBe('reduce_only');
    const sell = await decide(acct, tradeSignal({ side: 'sell', order: { quantity_hint: 20 } }));
    expect(sell.decision).toMatchObject({ decision: 'APPROVED', qty: 20 });

    const resumed = await cli(acct, 'ACTIVE');
    expect(resumed.stdout).toMatch(/trading state ACTIVE \(was REDUCING\)/);
    expect((await decide(acct, tradeSignal({ order: { quantity_hint: 1 } }))).decision.decision).toBe('APPROVED');

    const history = await db.pool.query(
      `SELECT state, changed_by, reason FROM trading_state_history WHERE account_id = $1 ORDER BY id`,
      [acct],
    );
    expect(history.rows.map((r: { state: string }) => r.state)).toEqual(['ACTIVE', 'HALTED', 'REDUCING', 'ACTIVE']);
    expect(history.rows[1]).toMatchObject({
      reason: 'integration test',
      changed_by: expect.stringMatching(/^cli:/) as unknown,
    });
  });

  it('creates the account if needed, prints usage on --help, exits 2 on a bad state', async () => {
    const acct = `acct-cli-${++seq}`;
    await cli(acct, 'reducing'); // states are case-insensitive
    expect(await getTradingState(db.pool, acct)).toBe('REDUCING');
    const help = await cli(acct, '--help');
    expect(help.stdout).toMatch(/Usage:/);
    await expect(cli(acct, 'PAUSED')).rejects.toMatchObject({ code: 2 });
  });

  it('setTradingState refuses an unknown account', async () => {
    await expect(setTradingState(db.pool, 'nobody', 'HALTED', 'test')).rejects.toThrow(/does not exist/);
  });
});
