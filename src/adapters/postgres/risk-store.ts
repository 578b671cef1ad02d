import type { Pool, QueryResult } from 'pg';
import type { OhlcvBar } from '../../contracts/bar';
import {
  evaluate,
  signalKey,
  TRADING_STATES,
  validateRiskSignal,
  type AssetClass,
  type MarketContext,
  type PortfolioSnapshot,
  type PositionSnapshot,
  type ReservationSnapshot,
  type RiskDecision,
  type RiskLimits,
  type TradingState,
} from '../../domain/risk';
import { portfolioEquity, unrealizedPnl } from '../../domain/portfolio';
import { BarStoreBehindError, barStoreBehind } from '../../domain/risk/bar-lag';
import { TradesInFlightError, tradesInFlightToAwait } from '../../domain/risk/in-flight';
import {
  accountExists,
  holdReservationStatement,
  openAccount,
  openTradeStatement,
  rollDayStartStatement,
  withAccountLock,
  withAccountLockInTwoRoundTrips,
} from './ledger';
import { toNumber, withTransaction, type Queryable, type Statement, type TransactionEnd } from './pool';

/**
 * The risk engine's view of the ledger, and its own records: decisions (risk_decisions) and the kill switch
 * (trading_state and its history). Ledger tables (accounts, trades, reservations, ...) are written only
 * through the ledger module; risk composes those writes into its transactions.
 *
 * Concurrency: every evaluation runs inside the ledger's account lock (one transaction holding the account's
 * advisory lock, `withAccountLockInTwoRoundTrips`), so evaluations of one account are serialised and each sees
 * the reservations of every evaluation committed before it. The kill switch takes the same lock.
 */

/**
 * Create the account (the ledger's opening deposit) with its ACTIVE trading state, once, in one transaction.
 * Idempotent and safe to race: the deposit is written only by the call whose INSERT created the account.
 */
export async function ensureAccount(pool: Pool, accountId: string, startingCash: number): Promise<void> {
  await withTransaction(pool, async (c) => {
    await openAccount(c, accountId, startingCash);
    const state = await c.query(
      `INSERT INTO trading_state (account_id, state, changed_by, reason) VALUES ($1, 'ACTIVE', 'system', 'account created')
       ON CONFLICT (account_id) DO NOTHING RETURNING account_id`,
      [accountId],
    );
    if (state.rowCount) {
      await c.query(
        `INSERT INTO trading_state_history (account_id, state, changed_by, reason) VALUES ($1, 'ACTIVE', 'system', 'account created')`,
        [accountId],
      );
    }
  });
}

/** The ledger portfolio: the engine's snapshot plus reporting figures. */
export interface LedgerPortfolio extends PortfolioSnapshot {
  accountId: string;
  /** Cash + positions marked at last price (the `mark` symbol at the given price). */
  equity: number;
  dayStartDate: string;
  realizedPnl: number;
  unrealizedPnl: number;
}

export interface LoadPortfolioOptions {
  /** Mark this symbol at this price (the signal's) instead of its last price. */
  mark?: { symbol: string; price: number };
  /** Load the last approved signal time (signal_at) only for this symbol + strategy (default: every pair). */
  cooldownKey?: { symbol: string; strategy: string };
  /** Decision time, recorded as the snapshot's asOf. */
  now?: Date;
}

interface SnapshotRow {
  account: { cash: string; day_start_equity: string; day_start_date: string } | null;
  trading_state: string | null;
  positions: Array<{ symbol: string; qty: string; avg_cost: string; last_price: string | null; realized_pnl: string }>;
  reservations: Array<{
    workflow_id: string;
    symbol: string;
    side: 'buy' | 'sell';
    qty: string;
    notional: string;
    asset_class: string | null;
  }>;
  classes: Array<{ symbol: string; asset_class: string }>;
  last_signals: Array<{ symbol: string; strategy: string; at_ms: number }>;
}

const isAssetClass = (v: unknown): v is AssetClass =>
  v === 'equity' || v === 'options' || v === 'futures' || v === 'crypto';

/**
 * Read the account, positions, HELD reservations, trading state and cooldown times in ONE statement, so
 * the snapshot is a single point in time even under READ COMMITTED (a fill committing halfway through
 * cannot be half-seen). Returns null when the account does not exist.
 */
export async function loadPortfolio(
  c: Queryable,
  accountId: string,
  opts: LoadPortfolioOptions = {},
): Promise<LedgerPortfolio | null> {
  return portfolioFromResult(await c.query(portfolioQuery(accountId, opts)), accountId, opts);
}

/** loadPortfolio's statement, for a batch (read its answer with portfolioFromResult) or a benchmark's EXPLAIN. */
export function portfolioQuery(accountId: string, opts: LoadPortfolioOptions): Statement {
  // The cooldown's last approved signal time: for one symbol + strategy (an evaluation) the latest row by the
  // risk_decisions_cooldown index, else per pair over the account (reports).
  const lastSignals = opts.cooldownKey
    ? `SELECT symbol, strategy, (extract(epoch FROM signal_at) * 1000)::float8 AS at_ms FROM risk_decisions
        WHERE account_id = $1 AND symbol = $2 AND strategy = $3 AND decision = 'APPROVED' AND signal_at IS NOT NULL
        ORDER BY signal_at DESC LIMIT 1`
    : `SELECT symbol, strategy, (extract(epoch FROM max(signal_at)) * 1000)::float8 AS at_ms FROM risk_decisions
        WHERE account_id = $1 AND decision = 'APPROVED' AND strategy IS NOT NULL AND signal_at IS NOT NULL
        GROUP BY symbol, strategy`;
  return {
    text: `SELECT
     (SELECT json_build_object('cash', cash::text, 'day_start_equity', day_start_equity::text,
                               'day_start_date', day_start_date::text)
        FROM accounts WHERE account_id = $1) AS account,
     (SELECT state FROM trading_state WHERE account_id = $1) AS trading_state,
     (SELECT COALESCE(json_agg(json_build_object('symbol', symbol, 'qty', qty::text, 'avg_cost', avg_cost::text,
                               'last_price', last_price::text, 'realized_pnl', realized_pnl::text)), '[]'::json)
        FROM positions WHERE account_id = $1) AS positions,
     (SELECT COALESCE(json_agg(json_build_object('workflow_id', workflow_id, 'symbol', symbol, 'side', side,
                               'qty', qty::text, 'notional', notional::text, 'asset_class', asset_class)), '[]'::json)
        FROM reservations WHERE account_id = $1 AND status = 'HELD') AS reservations,
     -- The asset class of each held symbol (the map's only use): its latest approved decision's, one probe of
     -- risk_decisions_asset_class per position instead of a sort of every approved decision.
     (SELECT COALESCE(json_agg(x), '[]'::json) FROM (
        SELECT p.symbol, d.asset_class FROM positions p
          CROSS JOIN LATERAL (
            SELECT asset_class FROM risk_decisions
             WHERE account_id = $1 AND symbol = p.symbol AND decision = 'APPROVED' AND asset_class IS NOT NULL
             ORDER BY created_at DESC LIMIT 1) d
         WHERE p.account_id = $1) x) AS classes,
     (SELECT COALESCE(json_agg(l), '[]'::json) FROM (${lastSignals}) l) AS last_signals`,
    values: opts.cooldownKey ? [accountId, opts.cooldownKey.symbol, opts.cooldownKey.strategy] : [accountId],
  };
}

function portfolioFromResult(r: QueryResult, accountId: string, opts: LoadPortfolioOptions): LedgerPortfolio | null {
  const row = r.rows[0] as SnapshotRow | undefined;
  if (!row?.account) return null;

  const classes = new Map(
    row.classes.filter((x) => isAssetClass(x.asset_class)).map((x) => [x.symbol, x.asset_class as AssetClass]),
  );
  const positions: Record<string, PositionSnapshot> = {};
  let realizedPnl = 0;
  for (const p of row.positions) {
    realizedPnl += toNumber(p.realized_pnl);
    const qty = toNumber(p.qty);
    if (qty === 0) continue; // a closed position carries no exposure (its realised P&L is already in cash)
    positions[p.symbol] = {
      qty,
      avgCost: toNumber(p.avg_cost),
      lastPrice: p.last_price === null ? null : toNumber(p.last_price),
      assetClass: classes.get(p.symbol) ?? 'equity',
      realizedPnl: toNumber(p.realized_pnl),
    };
  }
  const reservations: ReservationSnapshot[] = row.reservations.map((x) => ({
    workflowId: x.workflow_id,
    symbol: x.symbol,
    side: x.side,
    qty: toNumber(x.qty),
    notional: toNumber(x.notional),
    ...(isAssetClass(x.asset_class) ? { assetClass: x.asset_class } : {}),
  }));
  const lastSignalAt: Record<string, number> = {};
  for (const l of row.last_signals) lastSignalAt[signalKey(l.symbol, l.strategy)] = l.at_ms;

  const state = TRADING_STATES.find((s) => s === row.trading_state);
  const cash = toNumber(row.account.cash);
  const snapshot = { cash, positions };
  return {
    accountId,
    cash,
    positions,
    reservations,
    dayStartEquity: toNumber(row.account.day_start_equity),
    dayStartDate: row.account.day_start_date,
    // No state row (an account created by other code) is treated as HALTED: fail closed, never open.
    tradingState: state ?? 'HALTED',
    lastSignalAt,
    equity: portfolioEquity(snapshot, opts.mark?.symbol, opts.mark?.price),
    realizedPnl,
    unrealizedPnl: unrealizedPnl(snapshot, opts.mark?.symbol, opts.mark?.price),
    ...(opts.now ? { asOf: opts.now.toISOString() } : {}),
  };
}

export interface EvaluateAndReserveInput {
  workflowId: string;
  /** The validated TradeSignal; anything else is rejected as invalid_signal and still recorded. */
  signal: unknown;
  market?: MarketContext;
  limits: RiskLimits;
  accountId: string;
  /** Decision time: the trading day and risk_decisions.created_at (the cooldown uses the signal's created_at). */
  now: Date;
  /**
   * Read the symbol's last `count` bars up to `asOf` (loadRecentBars) in the evaluation's first round trip, before
   * the lock, and give them to the engine as market.recentBars.
   */
  recentBars?: {
    symbol: string;
    count: number;
    asOf?: string;
    /**
     * `asOf` is the signal's own bar: when the store is a few bars behind it (domain/risk/bar-lag.ts), throw
     * BarStoreBehindError and write nothing, so the caller can retry once the bar is stored.
     */
    awaitSignalBar?: boolean;
  };
  /**
   * When a check that reads them rejects the signal while other trades of its symbol are in flight (HELD
   * reservations), throw TradesInFlightError and write nothing, so the caller can retry once they settle
   * (domain/risk/in-flight.ts).
   */
  awaitTradesInFlight?: boolean;
}

export interface EvaluateAndReserveResult {
  decision: RiskDecision;
  /** True when this workflow had already been decided: the stored decision is returned, nothing is written. */
  replayed: boolean;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/**
 * Decide one trade and, if approved, reserve its exposure, atomically, in two round trips to PostgreSQL:
 *
 * 1. BEGIN → lock the account → this workflow's stored decision → roll the trading day → snapshot the ledger
 *    (HELD reservations included), all sent at once; each read is its own statement after the lock, so it sees
 *    every evaluation committed before the lock was granted;
 * 2. if the workflow was already decided (an activity retry must not reserve twice): ROLLBACK (the day roll
 *    too, so a replay changes nothing) and return the stored decision; else the pure engine decides (in this
 *    process, synchronously) and the decision, the trade row and the HELD reservation go out with COMMIT.
 *
 * The account lock is held for one trip through this process between the two, not for one per statement: the
 * lock is what serialises the account's evaluations, so its hold time bounds how many one account can decide
 * per second.
 */
export async function evaluateAndReserve(
  pool: Pool,
  input: EvaluateAndReserveInput,
): Promise<EvaluateAndReserveResult> {
  const { workflowId, accountId, limits, now } = input;
  const raw = (typeof input.signal === 'object' && input.signal !== null ? input.signal : {}) as Record<
    string,
    unknown
  >;
  const valid = validateRiskSignal(input.signal);
  const snapshotOptions: LoadPortfolioOptions = {
    now,
    ...(valid.ok
      ? {
          mark: { symbol: valid.signal.symbol, price: valid.signal.price },
          cooldownKey: { symbol: valid.signal.symbol, strategy: valid.signal.strategy },
        }
      : {}),
  };

  const bars = input.recentBars;
  return withAccountLockInTwoRoundTrips(
    pool,
    accountId,
    [riskDecisionQuery(workflowId), rollDayStartStatement(accountId, now), portfolioQuery(accountId, snapshotOptions)],
    ([stored, , snapshot], [barsRead]): TransactionEnd<EvaluateAndReserveResult> => {
      const existing = riskDecisionFromResult(stored!);
      if (existing) return { writes: [], commit: false, result: () => ({ decision: existing, replayed: true }) };

      const portfolio = portfolioFromResult(snapshot!, accountId, snapshotOptions);
      if (!portfolio) throw new Error(`risk: account "${accountId}" does not exist (ensureAccount first)`);

      const storedBars = bars && barsRead ? recentBarsFromResult(barsRead, bars.symbol) : undefined;
      if (bars?.awaitSignalBar && bars.asOf !== undefined && storedBars) {
        const storedThrough = storedBars.at(-1)?.timestamp ?? null;
        if (barStoreBehind(storedThrough, recentBarsInterval(barsRead!), bars.asOf)) {
          throw new BarStoreBehindError(bars.symbol, bars.asOf, storedThrough!);
        }
      }
      const market = storedBars ? { ...input.market, recentBars: storedBars } : input.market;
      const decision = evaluate(input.signal, portfolio, market ?? {}, limits);
      if (input.awaitTradesInFlight && valid.ok) {
        const inFlight = tradesInFlightToAwait(decision, portfolio, valid.signal.symbol, workflowId);
        if (inFlight.length > 0) throw new TradesInFlightError(valid.signal.symbol, decision.reasonCode, inFlight);
      }

      const signalId = str(raw.signal_id) ?? workflowId;
      const correlationId = str(raw.correlation_id) ?? workflowId;
      const symbol = valid.ok ? valid.signal.symbol : (str(raw.symbol) ?? '');
      const side = valid.ok ? valid.signal.side : (str(raw.side) ?? '');
      const strategy = valid.ok ? valid.signal.strategy : str(raw.strategy);
      const assetClass = valid.ok ? valid.signal.assetClass : null;

      const writes: Statement[] = [
        {
          text: `INSERT INTO risk_decisions (workflow_id, signal_id, correlation_id, account_id, symbol, side, decision,
                                      reason_code, qty, notional, checks, strategy, asset_class, result, created_at,
                                      signal_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
          values: [
            workflowId,
            signalId,
            correlationId,
            accountId,
            symbol,
            side,
            decision.decision,
            decision.reasonCode,
            decision.qty,
            decision.notional,
            JSON.stringify(decision.checks),
            strategy,
            assetClass,
            JSON.stringify(decision),
            now,
            // The cooldown clock: the signal's own (market) time, else the decision time.
            valid.ok && valid.signal.createdAt ? valid.signal.createdAt : now,
          ],
        },
      ];
      // The trade row needs a real side and strategy (CHECK constraints); a malformed signal has only its decision.
      if (valid.ok) {
        writes.push(
          openTradeStatement({
            workflowId,
            signalId,
            correlationId,
            accountId,
            symbol,
            side,
            strategy: valid.signal.strategy,
            status: decision.decision,
            reasonCode: decision.reasonCode,
          }),
        );
      }
      if (decision.decision === 'APPROVED' && valid.ok) {
        writes.push(
          holdReservationStatement({
            workflowId,
            accountId,
            symbol,
            side,
            qty: decision.qty,
            notional: decision.notional,
            assetClass,
          }),
        );
      }
      return { writes, commit: true, result: () => ({ decision, replayed: false }) };
    },
    // Not under the lock: the bars are the bar store's, not the account's.
    bars ? [recentBarsQuery(bars.symbol, bars.count, bars.asOf)] : [],
  );
}

interface RiskDecisionRow {
  result: RiskDecision | null;
  decision: 'APPROVED' | 'REJECTED';
  reason_code: string;
  qty: string;
  notional: string;
  checks: RiskDecision['checks'];
}

/**
 * A synthetic history for `npm run bench:risk-snapshot` (never called by the pipeline): `count` approved decisions
 * of the account over 50 symbols (SYM0…SYM49) and 5 strategies, a minute apart up to now, in one statement.
 */
export async function seedApprovedDecisions(pool: Pool, accountId: string, count: number): Promise<void> {
  await pool.query(
    `INSERT INTO risk_decisions (workflow_id, signal_id, correlation_id, account_id, symbol, side, decision, reason_code,
                                 qty, notional, checks, strategy, asset_class, created_at, signal_at)
     SELECT 'bench-wf-' || i, 'bench-sig-' || i, 'bench-corr-' || i, $1, 'SYM' || (i % 50), 'buy', 'APPROVED',
            'approved', 1, 1, '[]', 'strategy' || (i % 5), 'equity',
            now() - make_interval(mins => $2 - i), now() - make_interval(mins => $2 - i)
       FROM generate_series(1, $2::int) i`,
    [accountId, count],
  );
  await pool.query('ANALYZE risk_decisions');
}

/** The stored decision of a workflow, or null. */
export async function getRiskDecision(c: Queryable, workflowId: string): Promise<RiskDecision | null> {
  return riskDecisionFromResult(await c.query(riskDecisionQuery(workflowId)));
}

function riskDecisionQuery(workflowId: string): Statement {
  return {
    text: `SELECT result, decision, reason_code, qty::text, notional::text, checks FROM risk_decisions WHERE workflow_id = $1`,
    values: [workflowId],
  };
}

function riskDecisionFromResult(r: QueryResult): RiskDecision | null {
  const row = r.rows[0] as RiskDecisionRow | undefined;
  if (!row) return null;
  if (row.result) return row.result;
  // A row written without the full result (older code): rebuild the essentials from its columns.
  return {
    decision: row.decision,
    reasonCode: row.reason_code as RiskDecision['reasonCode'],
    qty: toNumber(row.qty),
    notional: toNumber(row.notional),
    checks: row.checks,
  };
}

export interface TradingStateChange {
  accountId: string;
  previous: TradingState | null;
  state: TradingState;
  changedBy: string;
  reason: string | null;
  changedAt: string;
}

/**
 * The kill switch. Writes the state and its history row in one transaction, under the account's risk lock:
 * when this returns, every later evaluation sees the new state and no earlier one can still commit.
 */
export async function setTradingState(
  pool: Pool,
  accountId: string,
  state: TradingState,
  changedBy: string,
  reason: string | null = null,
): Promise<TradingStateChange> {
  if (!TRADING_STATES.includes(state)) throw new Error(`unknown trading state "${String(state)}"`);
  return withAccountLock(pool, accountId, async (c) => {
    if (!(await accountExists(c, accountId))) throw new Error(`account "${accountId}" does not exist`);
    const before = await c.query<{ state: TradingState }>(`SELECT state FROM trading_state WHERE account_id = $1`, [
      accountId,
    ]);
    const r = await c.query<{ changed_at: Date }>(
      `INSERT INTO trading_state (account_id, state, changed_by, reason, changed_at) VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (account_id) DO UPDATE SET state = EXCLUDED.state, changed_by = EXCLUDED.changed_by,
         reason = EXCLUDED.reason, changed_at = EXCLUDED.changed_at
       RETURNING changed_at`,
      [accountId, state, changedBy, reason],
    );
    await c.query(`INSERT INTO trading_state_history (account_id, state, changed_by, reason) VALUES ($1, $2, $3, $4)`, [
      accountId,
      state,
      changedBy,
      reason,
    ]);
    return {
      accountId,
      previous: before.rows[0]?.state ?? null,
      state,
      changedBy,
      reason,
      changedAt: r.rows[0]!.changed_at.toISOString(),
    };
  });
}

export async function getTradingState(c: Queryable, accountId: string): Promise<TradingState | null> {
  const r = await c.query<{ state: TradingState }>(`SELECT state FROM trading_state WHERE account_id = $1`, [
    accountId,
  ]);
  return r.rows[0]?.state ?? null;
}

/**
 * The last `count` bars of `symbol` (oldest first) at or before `asOf`, in the interval of the latest
 * such bar (so daily and minute bars are never mixed). For the ATR stop and realised volatility.
 */
export async function loadRecentBars(
  c: Queryable,
  symbol: string,
  count: number,
  asOf?: string | Date,
): Promise<OhlcvBar[]> {
  return recentBarsFromResult(await c.query(recentBarsQuery(symbol, count, asOf)), symbol);
}

/** loadRecentBars' statement, for a batch (read its answer with recentBarsFromResult). */
function recentBarsQuery(symbol: string, count: number, asOf?: string | Date): Statement {
  return {
    text: `SELECT ts, interval, open::text, high::text, low::text, close::text, volume::text FROM market_bars
      WHERE symbol = $1
        AND ($3::timestamptz IS NULL OR ts <= $3::timestamptz)
        AND interval = (SELECT interval FROM market_bars WHERE symbol = $1 AND ($3::timestamptz IS NULL OR ts <= $3::timestamptz)
                         ORDER BY ts DESC LIMIT 1)
      ORDER BY ts DESC LIMIT $2`,
    values: [symbol, count, asOf ?? null],
  };
}

/** The interval of the bars recentBarsQuery read (one interval by construction), null when it read none. */
function recentBarsInterval(r: QueryResult): string | null {
  return (r.rows[0] as { interval?: string } | undefined)?.interval ?? null;
}

function recentBarsFromResult(r: QueryResult, symbol: string): OhlcvBar[] {
  const rows = r.rows as Array<{ ts: Date; open: string; high: string; low: string; close: string; volume: string }>;
  return rows.reverse().map((b) => ({
    symbol,
    timestamp: b.ts.toISOString(),
    open: toNumber(b.open),
    high: toNumber(b.high),
    low: toNumber(b.low),
    close: toNumber(b.close),
    volume: toNumber(b.volume),
  }));
}
