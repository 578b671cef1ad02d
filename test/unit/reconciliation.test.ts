import { describe, expect, it } from 'vitest';
import type { BrokerOrder } from '../../src/contracts/order';
import {
  NOT_SUBMITTED,
  reconcile,
  type BrokerState,
  type LedgerOrder,
  type LedgerState,
} from '../../src/domain/reconciliation';
import { exitCodeFor, formatReport, parseArgs } from '../../src/cli/reconcile';
import { summaryLine, type ReconciliationReport } from '../../src/services/reconciliation';

const NOW = new Date('2025-03-03T15:00:00.000Z');
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000).toISOString();

function lo(over: Partial<LedgerOrder> & { clientOrderId: string }): LedgerOrder {
  return {
    workflowId: `trade-${over.clientOrderId}`,
    parentClientOrderId: null,
    brokerOrderId: `b-${over.clientOrderId}`,
    symbol: 'NVDA',
    side: 'buy',
    qty: 10,
    status: 'new',
    filledQty: 0,
    bookedQty: 0,
    createdAt: minutesAgo(30),
    tradeFinished: false,
    ...over,
  };
}

function bo(over: Partial<BrokerOrder> & { clientOrderId: string }): BrokerOrder {
  return {
    brokerOrderId: `b-${over.clientOrderId}`,
    symbol: 'NVDA',
    side: 'buy',
    qty: 10,
    type: 'limit',
    timeInForce: 'day',
    status: 'new',
    filledQty: 0,
    filledAvgPrice: null,
    limitPrice: 100,
    createdAt: minutesAgo(30),
    updatedAt: minutesAgo(1),
    ...over,
  };
}

const ledger = (over: Partial<LedgerState> = {}): LedgerState => ({ openOrders: [], positions: [], ...over });
const broker = (over: Partial<BrokerState> = {}): BrokerState => ({
  openOrders: [],
  lookups: {},
  positions: [],
  ...over,
});
const run = (l: LedgerState, b: BrokerState, grace?: number) =>
  reconcile(l, b, { now: NOW, ...(grace !== undefined ? { pendingSubmitGraceMs: grace } : {}) });

describe('reconcile: consistent state', () => {
  it('reports nothing when ledger and broker agree', () => {
    const r = run(
      ledger({
        openOrders: [lo({ clientOrderId: 'a', status: 'partially_filled', filledQty: 4, bookedQty: 4 })],
        positions: [{ symbol: 'NVDA', qty: 54 }],
        cash: 94_600,
      }),
      broker({
        openOrders: [bo({ clientOrderId: 'a', status: 'partially_filled', filledQty: 4, filledAvgPrice: 100 })],
        positions: [{ symbol: 'NVDA', qty: 54 }],
        account: { cash: 94_600.004, equity: 100_000 },
      }),
    );
    expect(r).toEqual({ adoptions: [], flags: [], deferred: [] });
  });

  it('ignores zero ledger positions vs absent broker positions and NUMERIC rounding', () => {
    const r = run(
      ledger({
        positions: [
          { symbol: 'AMD', qty: 0 },
          { symbol: 'NVDA', qty: 5.0000001 },
        ],
      }),
      broker({ positions: [{ symbol: 'NVDA', qty: 5 }] }),
    );
    expect(r.flags).toEqual([]);
  });
});

describe('reconcile: (1) ledger open, broker moved on', () => {
  it('adopts a terminal broker status when every fill is booked', () => {
    const r = run(
      ledger({ openOrders: [lo({ clientOrderId: 'a', status: 'partially_filled', filledQty: 4, bookedQty: 10 })] }),
      broker({ lookups: { a: bo({ clientOrderId: 'a', status: 'filled', filledQty: 10, filledAvgPrice: 101.5 }) } }),
    );
    expect(r.flags).toEqual([]);
    expect(r.adoptions).toHaveLength(1);
    const a = r.adoptions[0]!;
    expect(a).toMatchObject({ kind: 'order_status', action: 'ADOPTED', clientOrderId: 'a', symbol: 'NVDA' });
    expect(a.update).toEqual({
      clientOrderId: 'a',
      status: 'filled',
      filledQty: 10,
      avgFillPrice: 101.5,
      brokerOrderId: 'b-a',
      expect: { status: 'partially_filled', filledQty: 4 },
    });
  });

  it('adopts a cancel with no fills, and the broker order id of a pending_submit whose response was lost', () => {
    const r = run(
      ledger({
        openOrders: [
          lo({ clientOrderId: 'c', status: 'new' }),
          lo({ clientOrderId: 'p', status: 'pending_submit', brokerOrderId: null, createdAt: minutesAgo(1) }),
        ],
      }),
      broker({
        openOrders: [bo({ clientOrderId: 'p', status: 'new' })],
        lookups: { c: bo({ clientOrderId: 'c', status: 'canceled' }) },
      }),
    );
    expect(r.flags).toEqual([]);
    expect(r.adoptions.map((a) => [a.clientOrderId, a.update.status, a.update.brokerOrderId])).toEqual([
      ['c', 'canceled', 'b-c'],
      ['p', 'new', 'b-p'],
    ]);
  });

  it('never books fills: broker fills the ledger lacks are FLAGGED and the row stays open (workflow running)', () => {
    const r = run(
      ledger({
        openOrders: [lo({ clientOrderId: 'a', status: 'new', bookedQty: 0 })],
        positions: [],
      }),
      broker({
        lookups: { a: bo({ clientOrderId: 'a', status: 'filled', filledQty: 10, filledAvgPrice: 100 }) },
        positions: [{ symbol: 'NVDA', qty: 10 }],
      }),
    );
    expect(r.adoptions).toEqual([]);
    expect(r.flags.map((f) => [f.kind, f.severity])).toEqual([
      ['unbooked_fills', 'warning'],
      ['position_mismatch', 'critical'],
    ]);
    expect(r.flags[0]!.detail).toMatchObject({ unbookedQty: 10 });
    // The position finding says the unbooked fills account for the whole difference.
    expect(r.flags[1]!.detail).toMatchObject({
      ledgerQty: 0,
      brokerQty: 10,
      diff: 10,
      explainedByUnbookedFills: true,
    });
  });

  it('flags loudly when the trade workflow that owns the unbooked fills has finished', () => {
    const r = run(
      ledger({ openOrders: [lo({ clientOrderId: 'a', side: 'sell', bookedQty: 3, tradeFinished: true })] }),
      broker({ lookups: { a: bo({ clientOrderId: 'a', side: 'sell', status: 'filled', filledQty: 10 }) } }),
    );
    expect(r.adoptions).toEqual([]);
    expect(r.flags).toHaveLength(1);
    expect(r.flags[0]).toMatchObject({ kind: 'unbooked_fills_trade_closed', severity: 'critical' });
    expect(r.flags[0]!.detail).toMatchObject({ unbookedQty: 7 });
  });

  it('flags a ledger that booked more than the broker executed', () => {
    const r = run(
      ledger({ openOrders: [lo({ clientOrderId: 'a', filledQty: 10, bookedQty: 10 })] }),
      broker({ openOrders: [bo({ clientOrderId: 'a', status: 'partially_filled', filledQty: 6 })] }),
    );
    expect(r.adoptions).toEqual([]);
    expect(r.flags.map((f) => f.kind)).toEqual(['ledger_ahead_of_broker']);
  });

  it('flags the same client order id with a different symbol/side/qty, adopting nothing', () => {
    const r = run(
      ledger({ openOrders: [lo({ clientOrderId: 'a', qty: 10 })] }),
      broker({ lookups: { a: bo({ clientOrderId: 'a', qty: 100, status: 'canceled' }) } }),
    );
    expect(r.adoptions).toEqual([]);
    expect(r.flags.map((f) => f.kind)).toEqual(['order_mismatch']);
  });

  it('flags an order still working at the broker whose trade has finished (never cancels it)', () => {
    const r = run(
      ledger({ openOrders: [lo({ clientOrderId: 'a', status: 'new', tradeFinished: true })] }),
      broker({ openOrders: [bo({ clientOrderId: 'a', status: 'new' })] }),
    );
    expect(r.adoptions).toEqual([]);
    expect(r.flags.map((f) => f.kind)).toEqual(['orphaned_open_order']);
    expect(r.flags[0]!.message).toMatch(/not cancelled automatically/);
  });

  it('flags an order the broker denies knowing although the ledger recorded its acknowledgement', () => {
    const r = run(
      ledger({ openOrders: [lo({ clientOrderId: 'a', status: 'new' })] }),
      broker({ lookups: { a: null } }),
    );
    expect(r.adoptions).toEqual([]);
    expect(r.flags.map((f) => [f.kind, f.severity])).toEqual([['order_missing_at_broker', 'critical']]);
  });

  it('flags an order whose lookup was not made (broker error) as unverified instead of guessing', () => {
    const r = run(ledger({ openOrders: [lo({ clientOrderId: 'a', status: 'pending_submit' })] }), broker());
    expect(r.adoptions).toEqual([]);
    expect(r.flags.map((f) => [f.kind, f.severity])).toEqual([['order_unverified', 'warning']]);
  });

  it('answers a bracket leg from its entry lookup', () => {
    const entry = bo({
      clientOrderId: 'e',
      status: 'filled',
      filledQty: 10,
      legs: [
        bo({ clientOrderId: 'e-tp', side: 'sell', status: 'canceled' }),
        bo({ clientOrderId: 'e-sl', side: 'sell', status: 'new' }),
      ],
    });
    const r = run(
      ledger({
        // The filled entry is no longer open in the ledger; its two legs still are.
        openOrders: [
          lo({ clientOrderId: 'e-tp', side: 'sell', status: 'held', parentClientOrderId: 'e' }),
          lo({ clientOrderId: 'e-sl', side: 'sell', status: 'held', parentClientOrderId: 'e' }),
        ],
      }),
      broker({ lookups: { e: entry } }),
    );
    expect(r.flags).toEqual([]);
    expect(r.adoptions.map((a) => [a.clientOrderId, a.update.status])).toEqual([
      ['e-sl', 'new'],
      ['e-tp', 'canceled'],
    ]);
  });
});

describe('reconcile: (2) pending_submit the broker never saw', () => {
  it('adopts not_submitted only once older than the grace period', () => {
    const l = ledger({
      openOrders: [
        lo({ clientOrderId: 'old', status: 'pending_submit', brokerOrderId: null, createdAt: minutesAgo(6) }),
        lo({ clientOrderId: 'young', status: 'pending_submit', brokerOrderId: null, createdAt: minutesAgo(4) }),
      ],
    });
    const r = run(l, broker({ lookups: { old: null, young: null } }));
    expect(r.flags).toEqual([]);
    expect(r.adoptions).toHaveLength(1);
    expect(r.adoptions[0]).toMatchObject({ kind: 'not_submitted', clientOrderId: 'old' });
    expect(r.adoptions[0]!.update).toMatchObject({
      status: NOT_SUBMITTED,
      expect: { status: 'pending_submit', filledQty: 0 },
    });
    expect(r.deferred.map((d) => d.clientOrderId)).toEqual(['young']);

    // A longer grace leaves both alone.
    expect(run(l, broker({ lookups: { old: null, young: null } }), 10 * 60_000).adoptions).toEqual([]);
  });

  it('does not adopt a never-submitted order that somehow has booked fills', () => {
    const r = run(
      ledger({ openOrders: [lo({ clientOrderId: 'x', status: 'pending_submit', bookedQty: 5 })] }),
      broker({ lookups: { x: null } }),
    );
    expect(r.adoptions).toEqual([]);
    expect(r.flags.map((f) => f.kind)).toEqual(['ledger_ahead_of_broker']);
  });
});

describe('reconcile: (3) broker orders unknown to the ledger', () => {
  it('flags an external order once (with its legs), never as an adoption', () => {
    const ext = bo({
      clientOrderId: 'manual-1',
      symbol: 'AAPL',
      status: 'filled',
      filledQty: 10,
      legs: [bo({ clientOrderId: 'manual-1-tp', symbol: 'AAPL', side: 'sell', status: 'new' })],
    });
    const r = run(ledger(), broker({ openOrders: [ext, bo({ clientOrderId: 'manual-2', symbol: 'AAPL' })] }));
    expect(r.adoptions).toEqual([]);
    expect(r.flags.map((f) => [f.kind, f.clientOrderId])).toEqual([
      ['external_order', 'manual-1'],
      ['external_order', 'manual-2'],
    ]);
    expect(r.flags[0]!.detail).toMatchObject({ broker: { workingLegs: [{ side: 'sell', status: 'new' }] } });
    expect(r.flags[0]!.message).toMatch(/not cancelled automatically/);
  });

  it('flags an order closed in the ledger but working at the broker; skips unrecorded legs of our own entries', () => {
    const r = run(
      ledger({
        knownOrders: [
          lo({ clientOrderId: 'closed', status: 'canceled' }),
          lo({ clientOrderId: 'ours', status: 'filled', filledQty: 10, bookedQty: 10 }),
        ],
      }),
      broker({
        openOrders: [
          bo({ clientOrderId: 'closed', status: 'new' }),
          bo({
            clientOrderId: 'ours',
            status: 'filled',
            filledQty: 10,
            legs: [bo({ clientOrderId: 'ours-tp', side: 'sell', status: 'new' })],
          }),
        ],
      }),
    );
    expect(r.flags.map((f) => [f.kind, f.clientOrderId])).toEqual([['ledger_closed_broker_open', 'closed']]);
  });
});

describe('reconcile: (4) positions and (5) cash', () => {
  it('flags each mismatching symbol with both quantities, shorts included', () => {
    const r = run(
      ledger({
        positions: [
          { symbol: 'NVDA', qty: 100 },
          { symbol: 'TSLA', qty: -5 },
          { symbol: 'IBM', qty: 1 },
        ],
      }),
      broker({
        positions: [
          { symbol: 'NVDA', qty: 90 },
          { symbol: 'AMD', qty: 7 },
          { symbol: 'IBM', qty: 1 },
        ],
      }),
    );
    expect(r.flags.map((f) => [f.kind, f.symbol, f.detail.ledgerQty, f.detail.brokerQty, f.detail.diff])).toEqual([
      ['position_mismatch', 'AMD', 0, 7, 7],
      ['position_mismatch', 'NVDA', 100, 90, -10],
      ['position_mismatch', 'TSLA', -5, 0, 5],
    ]);
  });

  it('flags cash drift beyond half a cent as informational, and only with both sides known', () => {
    const b = broker({ account: { cash: 99_000, equity: 99_500 } });
    const drift = run(ledger({ cash: 100_000, equity: 100_000 }), b);
    expect(drift.flags).toHaveLength(1);
    expect(drift.flags[0]).toMatchObject({ kind: 'cash_drift', severity: 'info' });
    expect(drift.flags[0]!.detail).toMatchObject({
      ledgerCash: 100_000,
      brokerCash: 99_000,
      diff: -1000,
      tolerance: 0.005,
    });
    expect(run(ledger({ cash: 99_000.01 }), b).flags).toHaveLength(1); // a cent is a real difference
    expect(run(ledger({ cash: 99_000.004 }), b).flags).toEqual([]); // below half a cent: representation only
    expect(run(ledger(), b).flags).toEqual([]); // no ledger account
    expect(reconcile(ledger({ cash: 100_000 }), b, { now: NOW, cashTolerance: { abs: 2_000, pct: 0 } }).flags).toEqual(
      [],
    );
  });
});

describe('reconcile: properties', () => {
  it('is idempotent: applying the adoptions to the ledger leaves nothing to adopt', () => {
    const l = ledger({
      openOrders: [
        lo({ clientOrderId: 'a', status: 'partially_filled', filledQty: 4, bookedQty: 10 }),
        lo({ clientOrderId: 'b', status: 'pending_submit', brokerOrderId: null, createdAt: minutesAgo(60) }),
        lo({ clientOrderId: 'c', status: 'pending_submit', brokerOrderId: null }),
      ],
    });
    const b = broker({
      openOrders: [bo({ clientOrderId: 'c', status: 'accepted' })],
      lookups: { a: bo({ clientOrderId: 'a', status: 'filled', filledQty: 10 }), b: null },
    });
    const first = run(l, b);
    expect(first.adoptions).toHaveLength(3);
    // Apply the updates the way the service does, then re-diff: open rows that remain must be unchanged.
    const updated = l.openOrders
      .map((o) => {
        const u = first.adoptions.find((a) => a.clientOrderId === o.clientOrderId)?.update;
        return u ? { ...o, status: u.status, filledQty: u.filledQty, brokerOrderId: u.brokerOrderId } : o;
      })
      .filter((o) => ['pending_submit', 'new', 'accepted', 'partially_filled'].includes(o.status));
    const second = run({ ...l, openOrders: updated }, b);
    expect(second.adoptions).toEqual([]);
    expect(second.flags).toEqual([]);
  });

  it('is deterministic regardless of input order', () => {
    const orders = [
      lo({ clientOrderId: 'z', status: 'new' }),
      lo({ clientOrderId: 'm', status: 'new' }),
      lo({ clientOrderId: 'a', status: 'new' }),
    ];
    const b = broker({
      lookups: Object.fromEntries(
        orders.map((o) => [o.clientOrderId, bo({ clientOrderId: o.clientOrderId, status: 'canceled' })]),
      ),
    });
    const x = run(ledger({ openOrders: orders }), b);
    const y = run(ledger({ openOrders: [...orders].reverse() }), b);
    expect(x).toEqual(y);
    expect(x.adoptions.map((a) => a.clientOrderId)).toEqual(['a', 'm', 'z']);
  });
});

describe('reconcile CLI helpers', () => {
  it('parses arguments', () => {
    expect(parseArgs([])).toEqual({ json: false, dryRun: false });
    expect(parseArgs(['--json', '--dry-run'])).toEqual({ json: true, dryRun: true });
    expect(parseArgs(['--grace-minutes', '2'])).toEqual({ json: false, dryRun: false, graceMs: 120_000 });
    expect(parseArgs(['--grace-minutes=0.5'])).toMatchObject({ graceMs: 30_000 });
    expect(parseArgs(['-h'])).toEqual({ help: true });
    expect(parseArgs(['--grace-minutes'])).toHaveProperty('error');
    expect(parseArgs(['--grace-minutes', '-1'])).toHaveProperty('error');
    expect(parseArgs(['--force'])).toEqual({ error: 'unknown argument --force' });
  });

  it('prints a table and the summary; exit code 3 only when something is flagged', () => {
    const diff = run(
      ledger({ openOrders: [lo({ clientOrderId: 'a' })] }),
      broker({
        lookups: { a: bo({ clientOrderId: 'a', status: 'canceled' }) },
        positions: [{ symbol: 'NVDA', qty: 3 }],
      }),
    );
    const base = {
      runId: 'rec-test',
      accountId: 'acct',
      broker: 'alpaca',
      dryRun: false,
      startedAt: NOW.toISOString(),
      finishedAt: NOW.toISOString(),
      fees: [],
      adopted: diff.adoptions,
      flagged: diff.flags,
      skipped: [],
      deferred: [],
      checked: {
        ledgerOpenOrders: 1,
        ledgerPositions: 0,
        brokerOpenOrders: 0,
        brokerPositions: 1,
        brokerLookups: 1,
        lookupFailures: 0,
      },
      summary: '',
    } satisfies ReconciliationReport;
    const report = { ...base, summary: summaryLine(base) };
    const text = formatReport(report);
    expect(text).toMatch(/ACTION\s+SEVERITY\s+KIND\s+SYMBOL\s+CLIENT ORDER ID\s+WHAT/);
    expect(text).toMatch(/FLAGGED\s+critical\s+position_mismatch\s+NVDA/);
    expect(text).toMatch(/ADOPTED\s+info\s+order_status\s+NVDA\s+a\s+a: new → canceled/);
    expect(report.summary).toBe('reconciliation rec-test: 1 adopted, 1 FLAGGED (position_mismatch×1) — NEEDS A HUMAN');
    expect(exitCodeFor(report)).toBe(3);
    const clean = { ...report, adopted: [], flagged: [] };
    const onlyAdoptions = { ...clean, adopted: diff.adoptions };
    expect(exitCodeFor(onlyAdoptions)).toBe(0);
    expect(formatReport({ ...clean, summary: summaryLine(clean) })).toMatch(
      /No differences\.\n\nreconciliation rec-test: 0 adopted, 0 FLAGGED — ledger agrees with the broker$/,
    );
    // Fees the broker charged outside fills are listed with the day, kind, symbol and amount, and summed in cents.
    const fees = [
      {
        activityId: 'a1',
        date: '2026-11-27',
        netAmount: -1.39,
        description: 'REG fee',
        symbol: 'NVDA',
        cancelled: false,
      },
      {
        activityId: 'a2',
        date: '2026-11-27',
        netAmount: -0.09,
        description: 'TAF fee',
        symbol: 'NVDA',
        cancelled: false,
      },
    ];
    const withFees = { ...clean, fees };
    const feeText = formatReport({ ...withFees, summary: summaryLine(withFees) });
    expect(feeText).toMatch(/broker fee booked: 2026-11-27 REG fee NVDA -1\.39 \(activity a1\)/);
    expect(feeText).toMatch(/0 adopted, 0 FLAGGED, 2 broker fee\(s\) booked \(-1\.48\) — ledger agrees/);
    // A booked fee the broker cancelled since: reversed, shown with the amount given back.
    const reversal = { ...fees[1]!, activityId: 'a0', date: '2026-11-26', cancelled: true };
    const withReversal = { ...withFees, feeReversals: [reversal] };
    const reversalText = formatReport({ ...withReversal, summary: summaryLine(withReversal) });
    expect(reversalText).toMatch(
      /broker fee cancelled by the broker, reversed: 2026-11-26 TAF fee NVDA \+0\.09 \(activity a0\)/,
    );
    expect(reversalText).toMatch(
      /2 broker fee\(s\) booked \(-1\.48\), 1 cancelled broker fee\(s\) reversed \(\+0\.09\)/,
    );
  });
});
