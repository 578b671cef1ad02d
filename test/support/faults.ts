import { ServiceError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SIM_PLACEHOLDER_KEY, SIM_PLACEHOLDER_SECRET } from '../../src/adapters/brokers';
import type { TradeStatus } from '../../src/workflows/shared';
import type { PipelineHarness, ServiceName } from './pipeline';
import { sleep } from '../../src/lib/sleep';

/**
 * Helpers for the fault-injection tests (test/integration/faults-*.test.ts): what the venue says (its own
 * Alpaca REST API, not our adapter), what the ledger says, and waiting on a trade's status. A RabbitMQ node to
 * restart is test/support/private-rabbit.ts.
 */

export { sleep };

// ------------------------------------------------------------------------------------------------ venue

/** An order as the venue's Alpaca v2 REST API returns it (the fields the tests read). */
export interface VenueOrder {
  id: string;
  client_order_id: string;
  symbol: string;
  side: string;
  qty: string;
  filled_qty: string;
  filled_avg_price: string | null;
  status: string;
}

export interface VenuePosition {
  symbol: string;
  qty: string;
}

async function venueGet<T>(h: PipelineHarness, pathAndQuery: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${h.simPort}${pathAndQuery}`, {
    headers: { 'APCA-API-KEY-ID': SIM_PLACEHOLDER_KEY, 'APCA-API-SECRET-KEY': SIM_PLACEHOLDER_SECRET },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Every order the venue holds (open and closed), top-level, oldest first. */
export async function venueOrders(h: PipelineHarness): Promise<VenueOrder[]> {
  const { status, body } = await venueGet<VenueOrder[]>(h, '/v2/orders?status=all&nested=true&limit=500&direction=asc');
  if (status !== 200) throw new Error(`venue GET /v2/orders: HTTP ${status} ${JSON.stringify(body)}`);
  return body;
}

/** One order by client order id, or null when the venue has none (404). */
export async function venueOrder(h: PipelineHarness, clientOrderId: string): Promise<VenueOrder | null> {
  const { status, body } = await venueGet<VenueOrder>(
    h,
    `/v2/orders:by_client_order_id?client_order_id=${encodeURIComponent(clientOrderId)}`,
  );
  if (status === 404) return null;
  if (status !== 200) throw new Error(`venue GET by client_order_id: HTTP ${status} ${JSON.stringify(body)}`);
  return body;
}

/** The venue's position quantity in a symbol (0 when it has none). */
export async function venuePositionQty(h: PipelineHarness, symbol: string): Promise<number> {
  const { status, body } = await venueGet<VenuePosition[]>(h, '/v2/positions');
  if (status !== 200) throw new Error(`venue GET /v2/positions: HTTP ${status} ${JSON.stringify(body)}`);
  return Number(body.find((p) => p.symbol === symbol)?.qty ?? 0);
}

/** Poll `probe` until it returns a value that is not null/undefined/false. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 60_000,
  everyMs = 200,
  giveUp: () => boolean = () => false,
): Promise<T> {
  const t0 = Date.now();
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null && v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (giveUp() || Date.now() - t0 > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------------------------------------ trades

/** Phases a trade never leaves. */
const FINAL_PHASES = new Set([
  'REJECTED',
  'FILLED',
  'EXPIRED',
  'EXPIRED_PARTIAL',
  'CANCELLED',
  'BROKER_REJECTED',
  'ORDER_LOST',
]);

/**
 * Wait until the trade's `status` query satisfies `done` (needs a running worker to answer the query). Fails at
 * once when the trade reaches a final phase that does not satisfy it.
 */
export async function waitForStatus(
  h: PipelineHarness,
  workflowId: string,
  done: (s: TradeStatus) => boolean,
  timeoutMs = 60_000,
): Promise<TradeStatus> {
  let last: TradeStatus | string = 'no answer yet';
  let ended = false;
  try {
    return await waitUntil(
      `${workflowId} status`,
      async () => {
        const s = await h.client.workflow.getHandle(workflowId).query<TradeStatus>('status');
        last = s;
        if (done(s)) return s;
        ended = FINAL_PHASES.has(s.phase);
        return null;
      },
      timeoutMs,
      200,
      () => ended,
    );
  } catch (err) {
    throw new Error(`${ended ? `${workflowId} ended` : (err as Error).message}; last status: ${JSON.stringify(last)}`);
  }
}

/** The trade's result, or a clear failure (with its last status) if it does not finish in time. */
/**
 * A workflow's result, asking again when the server's long poll gives up first. `result()` is a long poll of the
 * history; on a saturated machine the dev server can answer DEADLINE_EXCEEDED (or UNAVAILABLE while it
 * restarts) before the workflow closes. That says nothing about the trade, so ask again, as a client would.
 */
export async function settledResult<T = TradeStatus>(handle: WorkflowHandle): Promise<T> {
  for (;;) {
    try {
      return (await handle.result()) as T;
    } catch (err) {
      const code = err instanceof ServiceError ? (err.cause as { code?: number } | undefined)?.code : undefined;
      if (code !== 4 && code !== 14) throw err; // 4 DEADLINE_EXCEEDED, 14 UNAVAILABLE
      await sleep(200);
    }
  }
}

export async function resultWithin(h: PipelineHarness, workflowId: string, timeoutMs: number): Promise<TradeStatus> {
  const handle = h.client.workflow.getHandle(workflowId);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void handle
        .query<TradeStatus>('status')
        .catch((e: unknown) => String(e))
        .then((s) => reject(new Error(`${workflowId} not finished after ${timeoutMs} ms: ${JSON.stringify(s)}`)));
    }, timeoutMs);
  });
  // A confirmed signal may not have its workflow yet (intake may still be reconnecting after a broker
  // restart): wait for the workflow to exist, within the same timeout, before asking for its result.
  let settled = false;
  const result = async (): Promise<TradeStatus> => {
    for (;;) {
      try {
        return await settledResult(handle);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError) || settled) throw err;
        await sleep(200);
      }
    }
  };
  try {
    return await Promise.race([result(), timeout]);
  } finally {
    settled = true;
    clearTimeout(timer);
  }
}

/** A daily bar clock for one symbol: each call publishes the next day's bar (or re-publishes the last one). */
export function barFeed(h: PipelineHarness, symbol: string) {
  let day = 0;
  let last: Parameters<PipelineHarness['publishBar']>[0] | undefined;
  return {
    async next(close: number): Promise<void> {
      day++;
      last = {
        symbol,
        timestamp: new Date(Date.UTC(2014, 0, 1) + day * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        open: close,
        high: close * 1.01,
        low: close * 0.99,
        close,
        volume: 5_000_000,
      };
      await h.publishBar(last);
    },
    /** The same bar again: same timestamp and message id (a redelivered or re-published bar). */
    async repeat(): Promise<void> {
      if (!last) throw new Error('no bar published yet');
      await h.publishBar(last);
    },
  };
}

export interface LedgerView {
  orders: Array<{ client_order_id: string; status: string; filled_qty: number; broker_order_id: string | null }>;
  fills: Array<{ execution_id: string; qty: number; cum_qty: number }>;
  fillQty: number;
  tradeStatus: string | null;
}

/** What the ledger holds for one trade. */
export async function ledgerOf(h: PipelineHarness, workflowId: string): Promise<LedgerView> {
  const orders = await h.db.pool.query(
    `SELECT client_order_id, status, filled_qty, broker_order_id FROM orders WHERE workflow_id = $1 ORDER BY created_at`,
    [workflowId],
  );
  const fills = await h.db.pool.query(
    `SELECT f.execution_id, f.qty, f.cum_qty FROM fills f JOIN orders o USING (client_order_id)
      WHERE o.workflow_id = $1 ORDER BY f.cum_qty`,
    [workflowId],
  );
  const trade = await h.db.pool.query(`SELECT status FROM trades WHERE workflow_id = $1`, [workflowId]);
  const fillRows = fills.rows.map((r) => ({
    execution_id: String(r.execution_id),
    qty: Number(r.qty),
    cum_qty: Number(r.cum_qty),
  }));
  return {
    orders: orders.rows.map((r) => ({
      client_order_id: String(r.client_order_id),
      status: String(r.status),
      filled_qty: Number(r.filled_qty),
      broker_order_id: r.broker_order_id === null ? null : String(r.broker_order_id),
    })),
    fills: fillRows,
    fillQty: fillRows.reduce((s, f) => s + f.qty, 0),
    tradeStatus: trade.rows[0] ? String(trade.rows[0].status) : null,
  };
}

/** The ledger's position quantity in a symbol (0 when none). */
export async function ledgerPositionQty(h: PipelineHarness, symbol: string): Promise<number> {
  const r = await h.db.pool.query(`SELECT COALESCE(sum(qty), 0) AS q FROM positions WHERE symbol = $1`, [symbol]);
  return Number(r.rows[0].q);
}

/** Attempt number of the last started attempt of each activity type in a workflow's history. */
export async function activityAttempts(
  h: Pick<PipelineHarness, 'client'>,
  workflowId: string,
): Promise<Record<string, number[]>> {
  const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
  const typeBySchedule = new Map<string, string>();
  const out: Record<string, number[]> = {};
  for (const e of history.events ?? []) {
    const id = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes) {
      typeBySchedule.set(id, e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const type = typeBySchedule.get(String(started.scheduledEventId)) ?? '?';
      (out[type] ??= []).push(started.attempt ?? 1);
    }
  }
  return out;
}

/**
 * For each retried attempt of an activity type, the kind of timeout that ended the attempt before it (from
 * the started event's lastFailure): shows whether a dead worker was noticed by heartbeat or start-to-close.
 */
export async function retryTimeoutTypes(
  h: Pick<PipelineHarness, 'client'>,
  workflowId: string,
  activity: string,
): Promise<string[]> {
  const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
  const typeBySchedule = new Map<string, string>();
  const out: string[] = [];
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes) {
      typeBySchedule.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    }
    const started = e.activityTaskStartedEventAttributes;
    if (!started || typeBySchedule.get(String(started.scheduledEventId)) !== activity) continue;
    const t = started.lastFailure?.timeoutFailureInfo?.timeoutType;
    if (t !== undefined && t !== null) out.push(String(temporal.api.enums.v1.TimeoutType[t as number] ?? t));
  }
  return out;
}

/** The JSON log records with this message that the service's current process wrote. */
export function logEvents(h: PipelineHarness, service: ServiceName, message: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of h.services.get(service)?.output().split('\n') ?? []) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (rec.message === message) out.push(rec);
    } catch {
      // not a log record
    }
  }
  return out;
}
