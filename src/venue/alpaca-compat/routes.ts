import { isTerminal, type BrokerOrder } from '../../contracts/order';
import { hasExecutionLog, hasFeeLog, type Broker } from '../../adapters/brokers/broker';
import { ALPACA_CODES, DUPLICATE_CLIENT_ORDER_ID_MESSAGE } from '../../adapters/brokers/alpaca/wire';
import { HttpError, notFound, validationError } from './http';
import {
  accountToAlpaca,
  feeActivityToAlpaca,
  fillActivityToAlpaca,
  orderRequestFromAlpaca,
  orderToAlpaca,
  positionToAlpaca,
} from './wire';

/**
 * Broker order id → client order id. The `Broker` port addresses orders by client order id; Alpaca's
 * endpoints (and closed-order listings) address them by Alpaca id, so the server remembers every order it
 * has shown, including bracket legs, and every order the broker's update stream mentions.
 */
export class OrderIdIndex {
  private readonly byBrokerId = new Map<string, string>();

  remember(o: BrokerOrder): void {
    this.byBrokerId.set(o.brokerOrderId, o.clientOrderId);
    for (const leg of o.legs ?? []) this.remember(leg);
  }

  clientOrderIdOf(brokerOrderId: string): string | undefined {
    return this.byBrokerId.get(brokerOrderId);
  }

  /** Every client order id seen so far, once each. */
  clientOrderIds(): Set<string> {
    return new Set(this.byBrokerId.values());
  }
}

/** Route one request. Resolves to [status, body]; throws HttpError or a Broker error. */
export type CompatRoute = (
  method: string,
  path: string,
  query: URLSearchParams,
  body: unknown,
) => Promise<[number, unknown]>;

/**
 * The Alpaca Trading API v2 endpoints the AlpacaBroker adapter uses, served from any `Broker`:
 * POST/GET /v2/orders, GET /v2/orders:by_client_order_id, GET/DELETE /v2/orders/{id}, GET /v2/account,
 * GET /v2/account/activities[/FILL], GET /v2/positions[/{symbol}].
 */
export function compatRoutes(broker: Broker, orderIds: OrderIdIndex): CompatRoute {
  /** client order ids with a POST in progress: a concurrent duplicate must not reach the broker. */
  const submitting = new Set<string>();

  const findClientOrderId = async (brokerOrderId: string): Promise<string | undefined> => {
    const known = orderIds.clientOrderIdOf(brokerOrderId);
    if (known) return known;
    for (const o of await broker.listOpenOrders()) orderIds.remember(o);
    return orderIds.clientOrderIdOf(brokerOrderId);
  };

  const flatten = (orders: BrokerOrder[]): BrokerOrder[] =>
    orders.flatMap((o) => [{ ...o, legs: undefined }, ...flatten(o.legs ?? [])]);

  return async function route(method, path, query, body) {
    if (path === '/v2/orders' && method === 'POST') {
      const req = orderRequestFromAlpaca(body);
      const cid = req.clientOrderId;
      const duplicate = validationError(DUPLICATE_CLIENT_ORDER_ID_MESSAGE);
      if (submitting.has(cid)) throw duplicate;
      submitting.add(cid);
      try {
        const existing = await broker.getOrderByClientOrderId(cid);
        // Alpaca keeps a POST-time rejection off the books, so the same id may be tried again; a venue that
        // records rejected orders (SimulatedBroker) answers a re-submit with the same rejection.
        if (existing && existing.status !== 'rejected') throw duplicate;
        const order = await broker.submitOrder(req);
        orderIds.remember(order);
        return [200, orderToAlpaca(order)];
      } finally {
        submitting.delete(cid);
      }
    }
    if (path === '/v2/orders:by_client_order_id' && method === 'GET') {
      const cid = query.get('client_order_id');
      if (!cid) throw validationError('client_order_id is missing');
      const order = await broker.getOrderByClientOrderId(cid);
      if (!order) throw notFound();
      orderIds.remember(order);
      return [200, orderToAlpaca(order)];
    }
    if (path === '/v2/orders' && method === 'GET') {
      const status = query.get('status') ?? 'open';
      let orders: BrokerOrder[];
      if (status === 'open') {
        orders = await broker.listOpenOrders();
      } else if (status === 'closed' || status === 'all') {
        const open = await broker.listOpenOrders();
        const seen = new Set(open.map((o) => o.clientOrderId));
        const others: BrokerOrder[] = [];
        for (const cid of orderIds.clientOrderIds()) {
          if (seen.has(cid)) continue;
          const o = await broker.getOrderByClientOrderId(cid);
          if (o && isTerminal(o.status)) others.push(o);
        }
        orders = status === 'all' ? [...open, ...others] : others;
        // Only top-level orders: legs are reached through their parent.
        const legIds = new Set(orders.flatMap((o) => (o.legs ?? []).map((l) => l.clientOrderId)));
        orders = orders.filter((o) => !legIds.has(o.clientOrderId));
      } else {
        throw validationError(`invalid status "${status}"`);
      }
      orders.forEach((o) => orderIds.remember(o));
      // Alpaca: `after` / `until` bound the submission time (exclusive).
      for (const [name, keep] of [
        ['after', (t: number, b: number) => t > b],
        ['until', (t: number, b: number) => t < b],
      ] as const) {
        const v = query.get(name);
        if (!v) continue;
        const bound = Date.parse(v);
        if (!Number.isFinite(bound)) throw validationError(`invalid ${name}: ${v}`);
        orders = orders.filter((o) => keep(Date.parse(o.createdAt), bound));
      }
      orders.sort((a, b) => (query.get('direction') === 'asc' ? 1 : -1) * a.createdAt.localeCompare(b.createdAt));
      const lim = Math.min(500, Math.max(1, Number(query.get('limit') ?? 50) || 50));
      orders = orders.slice(0, lim);
      if (query.get('nested') !== 'true') orders = flatten(orders);
      return [200, orders.map((o) => orderToAlpaca(o))];
    }
    const byId = /^\/v2\/orders\/([^/]+)$/.exec(path);
    if (byId) {
      const id = decodeURIComponent(byId[1]!);
      const cid = await findClientOrderId(id);
      if (!cid) throw notFound();
      const order = await broker.getOrderByClientOrderId(cid);
      if (!order) throw notFound();
      if (method === 'GET') return [200, orderToAlpaca(order)];
      if (method === 'DELETE') {
        if (isTerminal(order.status)) {
          throw new HttpError(422, {
            code: ALPACA_CODES.NOT_CANCELABLE,
            message: `order is already in "${order.status}" state`,
          });
        }
        await broker.cancelOrder(cid);
        return [204, undefined];
      }
    }
    if (method === 'GET' && (path === '/v2/account/activities' || path.startsWith('/v2/account/activities/'))) {
      const typeInPath =
        path.length > '/v2/account/activities/'.length ? path.slice('/v2/account/activities/'.length) : '';
      const types = (typeInPath ? [typeInPath] : (query.get('activity_types') ?? 'FILL').split(',')).map((t) =>
        t.trim().toUpperCase(),
      );
      // Both kinds in one listing, as Alpaca does for several types: their ids share one time order.
      const rows: ActivityRow[] = [];
      if (types.includes('FILL') && hasExecutionLog(broker)) {
        for (const e of await broker.listAllExecutions()) {
          rows.push({ id: e.executionId, at: e.timestamp, json: () => fillActivityToAlpaca(e) });
        }
      }
      if (types.includes('FEE') && hasFeeLog(broker)) {
        for (const f of await broker.listAllFees())
          rows.push({ id: f.activityId, at: f.date, json: () => feeActivityToAlpaca(f) });
      }
      return [200, pageOfActivities(rows, query).map((r) => r.json())];
    }
    if (path === '/v2/account' && method === 'GET') return [200, accountToAlpaca(await broker.getAccount())];
    if (path === '/v2/positions' && method === 'GET') return [200, (await broker.getPositions()).map(positionToAlpaca)];
    const pos = /^\/v2\/positions\/([^/]+)$/.exec(path);
    if (pos && method === 'GET') {
      const symbol = decodeURIComponent(pos[1]!);
      const p = (await broker.getPositions()).find((x) => x.symbol === symbol);
      if (!p) throw notFound('position does not exist');
      return [200, positionToAlpaca(p)];
    }
    throw notFound(`endpoint not found: ${method} ${path}`);
  };
}

/** One activity of a listing: its id (time-ordered), its time (a FILL's transaction time, a FEE's day) and its JSON. */
interface ActivityRow {
  id: string;
  at: string;
  json: () => unknown;
}

/** Alpaca's activity query semantics over activity logs (ids sort in time order: `<timestamp digits>::uuid`). */
function pageOfActivities(all: ActivityRow[], query: URLSearchParams): ActivityRow[] {
  const bound = (name: string): number | undefined => {
    const v = query.get(name);
    if (v === null || v === '') return undefined;
    const t = Date.parse(v);
    if (!Number.isFinite(t)) throw validationError(`invalid ${name}: ${v}`);
    return t;
  };
  const date = query.get('date');
  const after = bound('after');
  const until = bound('until');
  if (date && (after !== undefined || until !== undefined))
    throw validationError('date cannot be used with after/until');
  const direction = query.get('direction') ?? 'desc';
  if (direction !== 'asc' && direction !== 'desc') throw validationError(`invalid direction: ${direction}`);
  const sizeRaw = query.get('page_size');
  const size = sizeRaw === null ? (date ? Number.POSITIVE_INFINITY : 100) : Number(sizeRaw);
  if (!(size >= 1) || (!date && size > 100)) throw validationError(`invalid page_size: ${sizeRaw}`);
  let rows = all.filter((e) => {
    const t = Date.parse(e.at);
    if (date && e.at.slice(0, 10) !== date) return false;
    if (after !== undefined && !(t > after)) return false;
    if (until !== undefined && !(t < until)) return false;
    return true;
  });
  rows = [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (direction === 'desc') rows.reverse();
  const token = query.get('page_token');
  if (token) {
    const i = rows.findIndex((e) => e.id === token);
    rows = i >= 0 ? rows.slice(i + 1) : [];
  }
  return rows.slice(0, size);
}
