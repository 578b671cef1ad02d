/**
 * Zero loss after a run: every published signal has exactly one workflow (none still running), one ledger trade
 * (FILLED), one entry order with the broker's id, one order at the venue (filled), the venue's position equals
 * the ledger's, and nothing is left in the intake queue or dead-lettered.
 */
import type { Client } from '@temporalio/client';
import { createBroker } from '../../adapters/brokers';
import { ledgerLossCounts } from '../../adapters/postgres/benchmark-queries';
import { INTAKE_SIGNALS_QUEUE, dlqName, type RabbitManagement } from '../../adapters/rabbitmq';
import { parseEnv } from '../../config';
import { clientOrderIdFor, tradeWorkflowId } from '../../contracts/trade-ids';
import { createLogger } from '../../logging';
import { sleep } from '../../lib/sleep';
import { SYMBOL } from './constants';
import type { LoadGenerator } from './load';

export interface LossReport {
  published: number;
  publishErrors: number;
  workflowsOnTaskQueue: number;
  workflowsRunning: number;
  historiesMissing: number;
  ledgerTrades: number;
  ledgerTradesDistinctSignals: number;
  ledgerFilled: number;
  ledgerNotFilled: Record<string, number>;
  ledgerEntryOrders: number;
  ledgerEntryOrdersWithBrokerId: number;
  tradesWithOrderCountNot1: number;
  venueOrdersFound: number;
  venueOrdersFilled: number;
  venueMissing: string[];
  venuePositionQty: number | null;
  ledgerPositionQty: number;
  intakeQueueDepth: number | undefined;
  intakeDlqDepth: number | undefined;
  zeroLoss: boolean;
}

export async function verifyZeroLoss(
  load: LoadGenerator,
  client: Client,
  taskQueue: string,
  venueEnv: NodeJS.ProcessEnv,
  vhost: RabbitManagement,
  historiesMissing: number,
): Promise<LossReport> {
  const recs = load.records.filter((r) => !r.publishError);
  const pool = load.db.pool;
  const prefix = `bench-${load.runId}-`;
  // Visibility on the dev server is eventually consistent: give it a moment to catch up.
  let onQueue = 0;
  let running = 0;
  for (let i = 0; i < 20; i++) {
    onQueue = (await client.workflow.count(`TaskQueue = "${taskQueue}"`)).count;
    running = (await client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`)).count;
    if (onQueue === recs.length && running === 0) break;
    await sleep(500);
  }
  const ledger = await ledgerLossCounts(pool, prefix, tradeWorkflowId(prefix), SYMBOL);

  // The venue: every signal's order, by its client order id (the venue refuses a second order with the same id).
  const broker = createBroker(parseEnv(venueEnv).broker, createLogger('bench-venue-check', { level: 'warn' }));
  let found = 0;
  let filled = 0;
  const missing: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < recs.length) {
        const rec = recs[next++]!;
        const order = await broker.getOrderByClientOrderId(clientOrderIdFor(rec.workflowId)).catch(() => null);
        if (!order) missing.push(rec.signalId);
        else {
          found++;
          if (order.status === 'filled') filled++;
        }
      }
    }),
  );
  const venuePos = await broker
    .getPositions()
    .then((ps) => ps.find((p) => p.symbol === SYMBOL)?.qty ?? 0)
    .catch(() => null);
  await broker.close();

  const depth = async (queue: string) => {
    const q = await vhost.queue(queue);
    return q ? (q.messages ?? 0) : undefined;
  };
  // The management API's message counts are statistics refreshed every few seconds (collect_statistics_interval,
  // 5 s by default): a queue emptied a moment ago still shows its last count, and the last acks of a burst may
  // still be on their way. What counts is whether anything stays: poll until it reads 0, for up to 15 s.
  let intakeQueueDepth = await depth(INTAKE_SIGNALS_QUEUE).catch(() => undefined);
  for (let i = 0; i < 30 && intakeQueueDepth !== undefined && intakeQueueDepth > 0; i++) {
    await sleep(500);
    intakeQueueDepth = await depth(INTAKE_SIGNALS_QUEUE).catch(() => undefined);
  }
  const intakeDlqDepth = await depth(dlqName(INTAKE_SIGNALS_QUEUE)).catch(() => undefined);

  const r: LossReport = {
    published: recs.length,
    publishErrors: load.records.length - recs.length,
    workflowsOnTaskQueue: onQueue,
    workflowsRunning: running,
    historiesMissing,
    ledgerTrades: ledger.trades,
    ledgerTradesDistinctSignals: ledger.tradesDistinctSignals,
    ledgerFilled: ledger.filled,
    ledgerNotFilled: ledger.notFilled,
    ledgerEntryOrders: ledger.entryOrders,
    ledgerEntryOrdersWithBrokerId: ledger.entryOrdersWithBrokerId,
    tradesWithOrderCountNot1: ledger.tradesWithOrderCountNot1,
    venueOrdersFound: found,
    venueOrdersFilled: filled,
    venueMissing: missing.slice(0, 20),
    venuePositionQty: venuePos,
    ledgerPositionQty: ledger.positionQty,
    intakeQueueDepth,
    intakeDlqDepth,
    zeroLoss: false,
  };
  const n = recs.length;
  r.zeroLoss =
    r.publishErrors === 0 &&
    r.workflowsOnTaskQueue === n &&
    r.workflowsRunning === 0 &&
    r.historiesMissing === 0 &&
    r.ledgerTrades === n &&
    r.ledgerTradesDistinctSignals === n &&
    r.ledgerFilled === n &&
    r.ledgerEntryOrders === n &&
    r.ledgerEntryOrdersWithBrokerId === n &&
    r.tradesWithOrderCountNot1 === 0 &&
    r.venueOrdersFound === n &&
    r.venueOrdersFilled === n &&
    r.venuePositionQty === r.ledgerPositionQty &&
    r.intakeQueueDepth === 0 &&
    (r.intakeDlqDepth ?? 0) === 0;
  return r;
}
