import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEAD_LETTER_EXCHANGE,
  INTAKE_SIGNALS_QUEUE,
  REJECTION_REASON_HEADER,
  dlqName,
  withChannel,
} from '../../src/adapters/rabbitmq';
import type { TradeStatus } from '../../src/workflows/shared';
import { PipelineHarness, testSignal } from '../support/pipeline';

/**
 * The whole trade path on real servers: RabbitMQ signal → intake → Temporal workflow → RiskOps on
 * PostgreSQL → simulated venue (separate process, Alpaca wire) → fills booked in the ledger.
 */
describe('pipeline end to end (real RabbitMQ, Temporal dev server, PostgreSQL, venue process)', () => {
  let h: PipelineHarness;
  let day = 0;
  const nextBar = async (close: number) => {
    day++;
    const ts = new Date(Date.UTC(2014, 0, 1) + day * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await h.publishBar({
      symbol: 'NVDA',
      timestamp: ts,
      open: close,
      high: close * 1.01,
      low: close * 0.99,
      close,
      volume: 5_000_000,
    });
  };
  const waitFor = async (workflowId: string, done: (s: TradeStatus) => boolean, timeoutMs = 60_000) => {
    const t0 = Date.now();
    for (;;) {
      try {
        const s = await h.client.workflow.getHandle(workflowId).query<TradeStatus>('status');
        if (done(s)) return s;
      } catch {
        // not started yet
      }
      if (Date.now() - t0 > timeoutMs) {
        const s = await h.client.workflow
          .getHandle(workflowId)
          .query<TradeStatus>('status')
          .catch((e: unknown) => String(e));
        throw new Error(`timeout waiting on ${workflowId}: ${JSON.stringify(s)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  beforeAll(async () => {
    h = await PipelineHarness.create();
    await h.start('exchange-sim');
    await h.start('trade-worker');
    await nextBar(20); // the venue learns the symbol and a price
  });
  afterAll(async () => {
    await h?.close();
  });

  it('turns a published signal into a completed trade with the right ledger rows', async () => {
    const sig = testSignal({ price: 20 });
    const workflowId = `trade-${sig.signal_id}`;
    await h.publishSignal(sig);
    await waitFor(workflowId, (s) => s.phase === 'WORKING');
    await nextBar(20.2); // the order fills on the next bar
    const result = await h.client.workflow.getHandle(workflowId).result();
    expect(result.phase).toBe('FILLED');
    expect(result.filledQty).toBeGreaterThan(0);

    const trade = await h.db.pool.query(`SELECT status, filled_qty FROM trades WHERE workflow_id = $1`, [workflowId]);
    expect(trade.rows[0]).toMatchObject({ status: 'FILLED' });
    expect(Number(trade.rows[0].filled_qty)).toBe(result.filledQty);
    const orders = await h.db.pool.query(
      `SELECT client_order_id, status, filled_qty FROM orders WHERE workflow_id = $1`,
      [workflowId],
    );
    expect(orders.rows).toHaveLength(1);
    expect(orders.rows[0]).toMatchObject({ client_order_id: workflowId, status: 'filled' });
    const fills = await h.db.pool.query(`SELECT sum(qty) AS q FROM fills WHERE client_order_id = $1`, [workflowId]);
    expect(Number(fills.rows[0].q)).toBe(result.filledQty);
    const pos = await h.db.pool.query(`SELECT qty FROM positions WHERE symbol = 'NVDA'`);
    expect(Number(pos.rows[0].qty)).toBe(result.filledQty);
    const res = await h.db.pool.query(`SELECT status FROM reservations WHERE workflow_id = $1`, [workflowId]);
    expect(res.rows[0]).toMatchObject({ status: 'RELEASED' });
    const desc = await h.client.workflow.getHandle(workflowId).describe();
    expect(desc.memo).toMatchObject({ correlation_id: sig.correlation_id });
  });

  it('gives one trade when the same signal is published twice', async () => {
    // A sell of part of the position bought above: approved by risk (it shrinks exposure).
    const sig = testSignal({
      price: 20.2,
      side: 'sell',
      order: { type: 'market', time_in_force: 'day', quantity_hint: 10 },
    });
    const workflowId = `trade-${sig.signal_id}`;
    await h.publishSignal(sig);
    await h.publishSignal(sig);
    await waitFor(workflowId, (s) => s.phase === 'WORKING');
    await nextBar(20.3);
    await h.client.workflow.getHandle(workflowId).result();
    await new Promise((r) => setTimeout(r, 1000)); // let the second delivery be processed
    const runs = await h.client.workflow.count(`WorkflowId = "${workflowId}"`);
    expect(runs.count).toBe(1);
    const orders = await h.db.pool.query(`SELECT count(*) AS n FROM orders WHERE workflow_id = $1`, [workflowId]);
    expect(Number(orders.rows[0].n)).toBe(1);
    const decisions = await h.db.pool.query(`SELECT count(*) AS n FROM risk_decisions WHERE workflow_id = $1`, [
      workflowId,
    ]);
    expect(Number(decisions.rows[0].n)).toBe(1);
  });

  it('dead-letters a malformed signal with its reason and keeps consuming', async () => {
    const badId = `bad-${Date.now()}`;
    await h.publishRaw(JSON.stringify({ signal_id: badId, symbol: 'NVDA', side: 'hold', price: -5 }), badId);
    const dlq = dlqName(INTAKE_SIGNALS_QUEUE);
    let found: { reason: unknown } | undefined;
    for (let i = 0; i < 50 && !found; i++) {
      await withChannel(h.rabbit.connection!, async (ch) => {
        for (;;) {
          const m = await ch.get(dlq, { noAck: false });
          if (!m) break;
          if (m.properties.messageId === badId) {
            found = { reason: m.properties.headers?.[REJECTION_REASON_HEADER] };
            ch.ack(m);
            break;
          }
          ch.nack(m, false, true);
          break;
        }
      });
      if (!found) await new Promise((r) => setTimeout(r, 200));
    }
    expect(found, `no message ${badId} in ${dlq} (exchange ${DEAD_LETTER_EXCHANGE})`).toBeDefined();
    expect(String(found!.reason)).toMatch(/side|price|correlation_id/);
    // Intake is still alive and still starts trades.
    const sig = testSignal({ price: 20.3 });
    await h.publishSignal(sig);
    await waitFor(`trade-${sig.signal_id}`, (s) => s.phase !== 'RECEIVED');
  });
});
