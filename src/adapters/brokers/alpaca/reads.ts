import type { BrokerOrder } from '../../../contracts/order';
import {
  BrokerUnavailableError,
  type BrokerAccount,
  type BrokerCallOptions,
  type BrokerExecution,
  type BrokerFee,
  type BrokerPosition,
  type ListExecutionsOptions,
} from '../broker';
import type { BrokerCallPriority } from '../request-budget';
import type { AlpacaRestClient } from './rest';
import {
  AlpacaWireError,
  accountFromAlpaca,
  executionFromAlpacaActivity,
  feeFromAlpacaActivity,
  orderFromAlpaca,
  positionFromAlpaca,
} from './wire';

/**
 * Alpaca's read endpoints, parsed into the Broker port's types: orders (by client order id, by Alpaca id,
 * open, created since), FILL activities, account, positions. Reads change nothing at the broker, so any of
 * them may be repeated freely; the writes (POST and DELETE of orders) and their money rules stay in
 * broker.ts. A response we cannot parse is BrokerUnavailableError (ambiguous = false: the request was
 * answered, the answer was unreadable), never a guess.
 */
export class AlpacaReads {
  constructor(private readonly rest: AlpacaRestClient) {}

  /** GET by client order id at a given priority (trade: resolving a submit or cancel; poll: the poller). */
  async orderByClientOrderId(
    clientOrderId: string,
    priority: BrokerCallPriority,
    opts: BrokerCallOptions,
  ): Promise<BrokerOrder | null> {
    const path = '/v2/orders:by_client_order_id';
    const res = await this.rest.request('GET', path, {
      query: { client_order_id: clientOrderId, nested: 'true' },
      priority,
      signal: opts.signal,
      deadlineMs: opts.deadlineMs,
    });
    if (res.status === 404) return null;
    if (res.status >= 200 && res.status < 300) return parseOrderResponse(res.body);
    throw this.rest.errorFor('GET', path, res);
  }

  /**
   * An order's executions from FILL account activities: the only Alpaca source of real per-execution
   * ids and prices besides the stream (an order's own JSON has only cumulative qty and average price).
   * The activities endpoint cannot filter by order, so this pages through the account's FILLs from the
   * order's creation time on (oldest first, 100 a page) and keeps this order's; it stops at the page
   * that shows the order complete (leaves_qty 0). Sorted by cum_qty: Alpaca lists same-millisecond
   * partial fills in no particular order (Alpaca-API#170).
   */
  async executionsOf(brokerOrderId: string, opts: ListExecutionsOptions = {}): Promise<BrokerExecution[]> {
    const call = { signal: opts.signal, deadlineMs: opts.deadlineMs };
    let since = opts.orderCreatedAt;
    if (!since) {
      const path = `/v2/orders/${encodeURIComponent(brokerOrderId)}`;
      const res = await this.rest.request('GET', path, { priority: 'read', ...call });
      if (res.status === 404) return [];
      if (!(res.status >= 200 && res.status < 300)) throw this.rest.errorFor('GET', path, res);
      since = parseOrderResponse(res.body).createdAt;
    }
    // `after` is exclusive and activity times can precede created_at by clock skew: start a minute early.
    const after = new Date(Date.parse(since) - 60_000).toISOString();
    const path = '/v2/account/activities/FILL';
    const out: BrokerExecution[] = [];
    const seen = new Set<string>();
    let pageToken: string | undefined;
    for (let page = 0; page < 1_000; page++) {
      const query: Record<string, string> = { after, direction: 'asc', page_size: '100' };
      if (pageToken) query.page_token = pageToken;
      const res = await this.rest.request('GET', path, { query, priority: 'read', ...call });
      if (!(res.status >= 200 && res.status < 300)) throw this.rest.errorFor('GET', path, res);
      if (!Array.isArray(res.body)) throw new BrokerUnavailableError(`Alpaca GET ${path}: body is not an array`, false);
      const rows = res.body as unknown[];
      let complete = false;
      for (const row of rows) {
        const e = parseResponse(() => executionFromAlpacaActivity(row), path);
        if (e.brokerOrderId !== brokerOrderId || seen.has(e.executionId)) continue;
        seen.add(e.executionId);
        out.push(e);
        if (e.leavesQty <= 0) complete = true;
      }
      if (complete || rows.length < 100) break;
      const last = rows[rows.length - 1] as { id?: unknown };
      if (typeof last.id !== 'string' || last.id === pageToken) break;
      pageToken = last.id;
    }
    return out.sort((a, b) => a.cumQty - b.cumQty);
  }

  /**
   * FEE account activities for trading days after `afterDate` (YYYY-MM-DD), oldest first: every page (100 a page,
   * `page_token` = the last id), since a day's fees come one per symbol and kind. Read priority.
   */
  async fees(afterDate: string, opts: BrokerCallOptions = {}): Promise<BrokerFee[]> {
    const call = { signal: opts.signal, deadlineMs: opts.deadlineMs };
    const path = '/v2/account/activities/FEE';
    const out: BrokerFee[] = [];
    const seen = new Set<string>();
    let pageToken: string | undefined;
    for (let page = 0; page < 1_000; page++) {
      const query: Record<string, string> = { after: afterDate, direction: 'asc', page_size: '100' };
      if (pageToken) query.page_token = pageToken;
      const res = await this.rest.request('GET', path, { query, priority: 'read', ...call });
      if (!(res.status >= 200 && res.status < 300)) throw this.rest.errorFor('GET', path, res);
      if (!Array.isArray(res.body)) throw new BrokerUnavailableError(`Alpaca GET ${path}: body is not an array`, false);
      const rows = res.body as unknown[];
      for (const row of rows) {
        const fee = parseResponse(() => feeFromAlpacaActivity(row), path);
        if (seen.has(fee.activityId)) continue;
        seen.add(fee.activityId);
        out.push(fee);
      }
      if (rows.length < 100) break;
      const last = rows[rows.length - 1] as { id?: unknown };
      if (typeof last.id !== 'string' || last.id === pageToken) break;
      pageToken = last.id;
    }
    return out;
  }

  async openOrders(opts: BrokerCallOptions = {}): Promise<BrokerOrder[]> {
    const path = '/v2/orders';
    const res = await this.rest.request('GET', path, {
      query: { status: 'open', nested: 'true', limit: '500', direction: 'asc' },
      priority: 'read',
      signal: opts.signal,
      deadlineMs: opts.deadlineMs,
    });
    if (res.status >= 200 && res.status < 300 && Array.isArray(res.body))
      return res.body.map((o) => parseOrderResponse(o));
    if (res.status >= 200 && res.status < 300)
      throw new BrokerUnavailableError('Alpaca GET /v2/orders: body is not an array', false);
    throw this.rest.errorFor('GET', path, res);
  }

  /** Orders created after `sinceIso` (minus a margin for clock skew), parents with legs nested. Poll priority. */
  async ordersSince(sinceIso: string, signal: AbortSignal): Promise<BrokerOrder[]> {
    const path = '/v2/orders';
    const after = new Date(Date.parse(sinceIso) - 60_000).toISOString();
    const res = await this.rest.request('GET', path, {
      query: { status: 'all', after, direction: 'asc', limit: '500', nested: 'true' },
      priority: 'poll',
      signal,
    });
    if (res.status >= 200 && res.status < 300 && Array.isArray(res.body))
      return (res.body as unknown[]).map((o) => parseOrderResponse(o));
    if (res.status >= 200 && res.status < 300)
      throw new BrokerUnavailableError('Alpaca GET /v2/orders: body is not an array', false);
    throw this.rest.errorFor('GET', path, res);
  }

  async account(opts: BrokerCallOptions = {}): Promise<BrokerAccount> {
    const path = '/v2/account';
    const res = await this.rest.request('GET', path, { priority: 'read', ...opts });
    if (res.status >= 200 && res.status < 300) return parseResponse(() => accountFromAlpaca(res.body), path);
    throw this.rest.errorFor('GET', path, res);
  }

  async positions(opts: BrokerCallOptions = {}): Promise<BrokerPosition[]> {
    const path = '/v2/positions';
    const res = await this.rest.request('GET', path, { priority: 'read', ...opts });
    if (res.status >= 200 && res.status < 300 && Array.isArray(res.body)) {
      const body = res.body as unknown[];
      return parseResponse(() => body.map(positionFromAlpaca), path);
    }
    if (res.status >= 200 && res.status < 300)
      throw new BrokerUnavailableError('Alpaca GET /v2/positions: body is not an array', false);
    throw this.rest.errorFor('GET', path, res);
  }
}

/** A response body through a wire parser; malformed → BrokerUnavailableError naming what was read. */
export function parseResponse<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof AlpacaWireError)
      throw new BrokerUnavailableError(`Alpaca ${what}: unexpected response (${err.message})`, false);
    throw err;
  }
}

export function parseOrderResponse(json: unknown): BrokerOrder {
  return parseResponse(() => orderFromAlpaca(json), 'order');
}
