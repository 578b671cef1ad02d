import type { Client } from '@temporalio/client';
import { expect } from 'vitest';
import type { Pool } from 'pg';
import type { BrokerExecution } from '../../src/adapters/brokers/broker';
import { ledgerInvariants } from '../../src/adapters/postgres/ledger';
import type { BrokerOrder } from '../../src/contracts/order';
import { clientOrderIdFor } from '../../src/contracts/trade-ids';
import type { TradePhase } from '../../src/domain/trade-lifecycle';
import type { TradeStatus } from '../../src/workflows/shared';
import type { FakeAlpaca } from '../fakes/fake-alpaca';

/**
 * The per-order audit of issue 8's adversarial and chaos suites: for every trade (client order id) the
 * broker's truth (the fake Alpaca's engine, which survives any worker crash) against the ledger and the
 * workflow. Nothing here trusts the trade worker's own view: orders, fills, positions and cash are read
 * from the broker and from PostgreSQL directly.
 *
 * Per order: exactly one broker order; Σ ledger fills = the broker's filled quantity (and the ledger's
 * order row says the same); fees booked = the broker's fees (or counted as unknown); the workflow closed
 * and its result matches the ledger trade row; its reservation is not HELD.
 * Whole account: no broker order outside the trades (a retry under another id would be one); ledger
 * position = broker position per symbol; ledger cash = Σ cash movements; ledger cash = broker cash to the
 * cent, apart from fees the ledger has not learned (fills booked with fee NULL, reported separately).
 */

/** What the broker knows, independent of the worker. */
export interface BrokerTruth {
  orders(): Promise<BrokerOrder[]>;
  positions(): Promise<Map<string, number>>;
  cash(): Promise<number>;
  executions(): Promise<BrokerExecution[]>;
  ordersCreated(): number;
}

export function fakeAlpacaTruth(fake: FakeAlpaca): BrokerTruth {
  return {
    orders: async () => fake.engine.allOrders(),
    positions: async () => new Map((await fake.engine.getPositions()).map((p) => [p.symbol, p.qty])),
    cash: async () => (await fake.engine.getAccount()).cash,
    executions: () => fake.executions(),
    ordersCreated: () => fake.ordersCreated,
  };
}

export interface TradeUnderAudit {
  workflowId: string;
  /** What the test set this trade up to do (shown in the table), e.g. 'at-accept', 'limit-expire'. */
  kind: string;
  /** Ledger outcomes this trade may legitimately end with (e.g. ['FILLED']). */
  expectedOutcomes?: string[];
}

export interface OrderAuditRow {
  clientOrderId: string;
  kind: string;
  brokerOrders: number;
  brokerStatus: string;
  brokerFilled: number;
  ledgerFills: number;
  ledgerFillRows: number;
  ledgerOrderFilled: number;
  unknownFeeFills: number;
  feeMismatch: boolean;
  workflow: string;
  resultPhase: string;
  resultFilled: number;
  tradeStatus: string;
  tradeFilled: number;
  reservation: string;
  problems: string[];
}

export interface AuditTotals {
  orders: number;
  duplicates: number;
  fillMismatches: number;
  heldReservations: number;
  openWorkflows: number;
  resultMismatches: number;
  unexpectedOutcomes: number;
  feeMismatches: number;
  unknownFeeFills: number;
  positionBreaks: number;
  /** Ledger cash − Σ cash movements (ledgerInvariants), dollars; 0 when the ledger is consistent. */
  cashMinusMovements: number;
  /** Ledger cash − broker cash − fees the ledger does not know yet, in cents; 0 when cash reconciles. */
  cashVsBrokerCents: number;
}

export interface AuditReport {
  rows: OrderAuditRow[];
  totals: AuditTotals;
  /** Every problem found, one line each (empty when everything reconciles). */
  problems: string[];
  outcomes: Record<string, number>;
}

/** The ledger outcome a workflow result maps to (domain/trade-lifecycle.ts tradeEnd, read backwards). */
export function outcomesForPhase(phase: TradePhase | string, filledQty: number): string[] {
  switch (phase) {
    case 'FILLED':
      return ['FILLED'];
    case 'EXPIRED':
      return ['EXPIRED'];
    case 'EXPIRED_PARTIAL':
      return ['PARTIALLY_FILLED'];
    case 'CANCELLED':
      // A cancel by a person keeps CANCELLED even with a partial fill; the broker's cancel does not.
      return filledQty > 0 ? ['PARTIALLY_FILLED', 'CANCELLED'] : ['CANCELLED'];
    case 'BROKER_REJECTED':
      return [filledQty > 0 ? 'PARTIALLY_FILLED' : 'BROKER_REJECTED'];
    case 'ORDER_LOST':
    case 'FAILED':
      return ['FAILED'];
    case 'NEEDS_REVIEW':
      return ['NEEDS_REVIEW'];
    case 'REJECTED':
      return ['REJECTED'];
    default:
      return [];
  }
}

const cents = (x: number) => Math.round(x * 100);

/**
 * Audit every trade. `accountId`: the ledger account the trades booked to. Workflows are awaited (their
 * result is part of the check), so call this once they are expected to have finished.
 */
export async function auditTrades(
  pool: Pool,
  client: Client,
  accountId: string,
  broker: BrokerTruth,
  trades: TradeUnderAudit[],
): Promise<AuditReport> {
  const problems: string[] = [];
  const brokerOrders = await broker.orders();
  const executions = await broker.executions();
  const byCid = new Map<string, BrokerOrder[]>();
  for (const o of brokerOrders) byCid.set(o.clientOrderId, [...(byCid.get(o.clientOrderId) ?? []), o]);
  const feesByBrokerOrder = new Map<string, number>();
  for (const e of executions) {
    feesByBrokerOrder.set(e.brokerOrderId, (feesByBrokerOrder.get(e.brokerOrderId) ?? 0) + (e.fee ?? 0));
  }

  const fills = await pool.query<{ cid: string; qty: string; n: string; unknown: string; fees: string }>(
    `SELECT client_order_id AS cid, sum(qty)::text AS qty, count(*)::text AS n,
            count(*) FILTER (WHERE fee IS NULL)::text AS unknown, COALESCE(sum(fee), 0)::text AS fees
       FROM fills WHERE account_id = $1 GROUP BY client_order_id`,
    [accountId],
  );
  const fillsByCid = new Map(fills.rows.map((r) => [r.cid, r]));
  const orderRows = await pool.query<{ cid: string; filled: string }>(
    `SELECT client_order_id AS cid, filled_qty::text AS filled FROM orders`,
  );
  const orderRowByCid = new Map(orderRows.rows.map((r) => [r.cid, Number(r.filled)]));
  const tradeRows = await pool.query<{ workflow_id: string; status: string; filled: string }>(
    `SELECT workflow_id, status, filled_qty::text AS filled FROM trades`,
  );
  const tradeByWf = new Map(tradeRows.rows.map((r) => [r.workflow_id, r]));
  const resRows = await pool.query<{ workflow_id: string; status: string }>(
    `SELECT workflow_id, status FROM reservations`,
  );
  const resByWf = new Map<string, string[]>();
  for (const r of resRows.rows) resByWf.set(r.workflow_id, [...(resByWf.get(r.workflow_id) ?? []), r.status]);

  const rows: OrderAuditRow[] = [];
  const outcomes: Record<string, number> = {};
  let unknownFeeCents = 0;
  const cids = new Set<string>();
  for (const t of trades) {
    const cid = clientOrderIdFor(t.workflowId);
    cids.add(cid);
    const rowProblems: string[] = [];
    const mine = byCid.get(cid) ?? [];
    const bo = mine[0];
    const brokerFilled = bo?.filledQty ?? 0;
    const f = fillsByCid.get(cid);
    const ledgerFills = f ? Number(f.qty) : 0;
    const unknownFeeFills = f ? Number(f.unknown) : 0;
    const ledgerFees = f ? Number(f.fees) : 0;
    const brokerFees = bo ? (feesByBrokerOrder.get(bo.brokerOrderId) ?? 0) : 0;
    let feeMismatch = false;
    if (unknownFeeFills > 0) unknownFeeCents += cents(brokerFees) - cents(ledgerFees);
    else if (cents(brokerFees) !== cents(ledgerFees)) feeMismatch = true;

    if (mine.length !== 1) rowProblems.push(`${mine.length} broker orders`);
    if (ledgerFills !== brokerFilled) rowProblems.push(`ledger fills ${ledgerFills} != broker filled ${brokerFilled}`);
    const ledgerOrderFilled = orderRowByCid.get(cid) ?? 0;
    if (ledgerOrderFilled !== brokerFilled)
      rowProblems.push(`ledger order row filled ${ledgerOrderFilled} != broker filled ${brokerFilled}`);
    if (feeMismatch) rowProblems.push(`fees booked ${ledgerFees} != broker fees ${brokerFees}`);

    const handle = client.workflow.getHandle(t.workflowId);
    const desc = await handle.describe();
    const workflow = desc.status.name;
    let result: TradeStatus | undefined;
    if (workflow === 'COMPLETED') result = (await handle.result()) as TradeStatus;
    else rowProblems.push(`workflow ${workflow}`);
    const trade = tradeByWf.get(t.workflowId);
    const tradeStatus = trade?.status ?? '(none)';
    const tradeFilled = trade ? Number(trade.filled) : 0;
    outcomes[tradeStatus] = (outcomes[tradeStatus] ?? 0) + 1;
    if (result) {
      if (!outcomesForPhase(result.phase, result.filledQty).includes(tradeStatus))
        rowProblems.push(`result ${result.phase} vs ledger trade ${tradeStatus}`);
      if (result.filledQty !== tradeFilled)
        rowProblems.push(`result filled ${result.filledQty} vs ledger trade filled ${tradeFilled}`);
      if (result.filledQty !== brokerFilled)
        rowProblems.push(`result filled ${result.filledQty} vs broker filled ${brokerFilled}`);
    }
    if (t.expectedOutcomes && !t.expectedOutcomes.includes(tradeStatus))
      rowProblems.push(
        `outcome ${tradeStatus}${result?.reason ? ` (${result.reason})` : ''}, expected ${t.expectedOutcomes.join('|')}`,
      );
    const reservations = resByWf.get(t.workflowId) ?? [];
    if (reservations.includes('HELD')) rowProblems.push('reservation HELD');

    rows.push({
      clientOrderId: cid,
      kind: t.kind,
      brokerOrders: mine.length,
      brokerStatus: bo?.status ?? '(none)',
      brokerFilled,
      ledgerFills,
      ledgerFillRows: f ? Number(f.n) : 0,
      ledgerOrderFilled,
      unknownFeeFills,
      feeMismatch,
      workflow,
      resultPhase: result?.phase ?? '(none)',
      resultFilled: result?.filledQty ?? 0,
      tradeStatus,
      tradeFilled,
      reservation: reservations.join(',') || '(none)',
      problems: rowProblems,
    });
    for (const p of rowProblems) problems.push(`${cid} [${t.kind}]: ${p}`);
  }

  // Broker orders that belong to no trade: a second order for a trade under another id would be one.
  const strays = brokerOrders.filter((o) => !cids.has(o.clientOrderId));
  for (const o of strays)
    problems.push(`broker order ${o.clientOrderId} (${o.side} ${o.qty} ${o.symbol}) has no trade`);
  if (broker.ordersCreated() !== brokerOrders.length)
    problems.push(`broker created ${broker.ordersCreated()} orders but holds ${brokerOrders.length}`);

  // Whole account: positions, cash.
  const ledgerPos = await pool.query<{ symbol: string; qty: string }>(
    `SELECT symbol, qty::text AS qty FROM positions WHERE account_id = $1`,
    [accountId],
  );
  const brokerPos = await broker.positions();
  const symbols = new Set([...brokerPos.keys(), ...ledgerPos.rows.map((r) => r.symbol)]);
  let positionBreaks = 0;
  for (const s of symbols) {
    const l = Number(ledgerPos.rows.find((r) => r.symbol === s)?.qty ?? 0);
    const b = brokerPos.get(s) ?? 0;
    if (l !== b) {
      positionBreaks++;
      problems.push(`position ${s}: ledger ${l} != broker ${b}`);
    }
  }
  const inv = await ledgerInvariants(pool, accountId);
  for (const p of inv.positionBreaks) {
    positionBreaks++;
    problems.push(`position ${p.symbol}: ${p.positionQty} != Σ fills ${p.fillsQty}`);
  }
  if (inv.cashMinusMovements !== 0) problems.push(`ledger cash − Σ cash movements = ${inv.cashMinusMovements}`);
  const acct = await pool.query<{ cash: string }>(`SELECT cash::text AS cash FROM accounts WHERE account_id = $1`, [
    accountId,
  ]);
  const ledgerCash = Number(acct.rows[0]?.cash ?? Number.NaN);
  const cashVsBrokerCents = cents(ledgerCash) - cents(await broker.cash()) - unknownFeeCents;
  if (cashVsBrokerCents !== 0)
    problems.push(`ledger cash ${ledgerCash} vs broker cash: ${cashVsBrokerCents} cents off`);

  const totals: AuditTotals = {
    orders: rows.length,
    duplicates: strays.length + rows.reduce((s, r) => s + Math.max(0, r.brokerOrders - 1), 0),
    fillMismatches: rows.filter((r) => r.ledgerFills !== r.brokerFilled || r.ledgerOrderFilled !== r.brokerFilled)
      .length,
    heldReservations: rows.filter((r) => r.reservation.includes('HELD')).length,
    openWorkflows: rows.filter((r) => r.workflow !== 'COMPLETED').length,
    resultMismatches: rows.filter((r) => r.problems.some((p) => p.startsWith('result'))).length,
    unexpectedOutcomes: rows.filter((r) => r.problems.some((p) => p.startsWith('outcome'))).length,
    feeMismatches: rows.filter((r) => r.feeMismatch).length,
    unknownFeeFills: inv.unknownFeeFills,
    positionBreaks,
    cashMinusMovements: inv.cashMinusMovements,
    cashVsBrokerCents,
  };
  return { rows, totals, problems, outcomes };
}

/** The per-order table and its totals, for the test log (console.table). */
export function printAudit(title: string, report: AuditReport, opts: { rows?: boolean } = {}): void {
  console.log(`\n=== ${title}: per-order audit ===`);
  if (opts.rows !== false) {
    console.table(
      report.rows.map((r) => ({
        order: r.clientOrderId.replace(/^trade-/, ''),
        kind: r.kind,
        brokerOrders: r.brokerOrders,
        broker: `${r.brokerStatus} ${r.brokerFilled}`,
        ledgerFills: `${r.ledgerFills} (${r.ledgerFillRows} rows${r.unknownFeeFills ? `, ${r.unknownFeeFills} fee?` : ''})`,
        result: `${r.resultPhase} ${r.resultFilled}`,
        ledgerTrade: `${r.tradeStatus} ${r.tradeFilled}`,
        reservation: r.reservation,
        ok: r.problems.length === 0 ? 'yes' : r.problems.join('; '),
      })),
    );
  }
  console.log(`${title} totals: ${JSON.stringify(report.totals)}`);
  console.log(`${title} outcomes: ${JSON.stringify(report.outcomes)}`);
  if (report.problems.length) console.log(`${title} PROBLEMS:\n  ${report.problems.join('\n  ')}`);
}

/**
 * Nothing lost, doubled or half-done, per order: exactly `orders` orders, every one booked as the broker filled it,
 * no reservation left HELD, every workflow closed with the result the ledger holds, and position and cash
 * reconciled to the cent. The fault-injection tests (chaos, cluster) assert exactly this after their faults.
 */
export function expectNothingLostOrDoubled(report: AuditReport, orders: number): void {
  expect(report.problems).toEqual([]);
  expect(report.totals).toMatchObject({
    orders,
    duplicates: 0,
    fillMismatches: 0,
    heldReservations: 0,
    openWorkflows: 0,
    resultMismatches: 0,
    unexpectedOutcomes: 0,
    positionBreaks: 0,
    cashMinusMovements: 0,
    cashVsBrokerCents: 0,
  });
}
