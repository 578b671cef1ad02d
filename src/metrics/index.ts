import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus metric of the pipeline, defined once (prom-client: the de-facto Node client, with the text
 * exposition format, default process metrics and histogram maths we would otherwise hand-write).
 *
 * All processes share these definitions; each serves only what it touched at `/metrics` (src/metrics/server.ts)
 * with a `service` label, so one Grafana query covers every process. Label values are low-cardinality on
 * purpose: no ids, no prices, no free text (dead-letter reasons are reduced to their kind).
 *
 * Names are the contract with dashboards (ops/grafana/*.json) and alerts: do not rename.
 */
export const registry = new Registry();

let initialised = false;

/** Label this process's metrics with its role and start Node's default process metrics. Idempotent. */
export function initMetrics(service: string): void {
  if (initialised) return;
  initialised = true;
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
}

const m = { registers: [registry] };

// ── Market data ───────────────────────────────────────────────────────────────────────────────────────────
export const barsPublished = new Counter({
  name: 'sat_bars_published_total',
  help: 'Bars published to market.bars and confirmed by the broker (Dataflow: bars out)',
  labelNames: ['source', 'symbol'] as const,
  ...m,
});
export const barsReceived = new Counter({
  name: 'sat_bars_received_total',
  help: 'Bars consumed from RabbitMQ (Quant, the simulated venue: bars in)',
  labelNames: ['symbol'] as const,
  ...m,
});
export const marketDataSourceSwitches = new Counter({
  name: 'sat_marketdata_source_switches_total',
  help: 'Times Dataflow switched its market-data source (e.g. Polygon → replay fallback)',
  labelNames: ['from', 'to'] as const,
  ...m,
});

// ── Signals ───────────────────────────────────────────────────────────────────────────────────────────────
export const signalsPublished = new Counter({
  name: 'sat_signals_published_total',
  help: 'Trade signals published and confirmed (Quant), by strategy and side',
  labelNames: ['strategy', 'side'] as const,
  ...m,
});
export const signalsReceived = new Counter({
  name: 'sat_signals_received_total',
  help: 'Signals taken by the intake, by outcome: started (a new trade workflow), duplicate (its trade already existed), invalid (dead-lettered), refused (start refused permanently; dead-lettered)',
  labelNames: ['outcome'] as const,
  ...m,
});
export const deadLetters = new Counter({
  name: 'sat_dead_letters_total',
  help: 'Messages written to a dead-letter queue, by source queue and reason kind',
  labelNames: ['queue', 'reason'] as const,
  ...m,
});

// ── Trades ────────────────────────────────────────────────────────────────────────────────────────────────
export const tradesFinished = new Counter({
  name: 'sat_trades_finished_total',
  help: 'Trades closed in the ledger, by final status and reason code ("none" when there is none)',
  labelNames: ['status', 'reason_code'] as const,
  ...m,
});
export const signalToOrderSeconds = new Histogram({
  name: 'sat_signal_to_order_seconds',
  help: 'From the trade entering the ledger (workflow start, risk evaluation) to the broker acknowledging its order',
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  ...m,
});

// ── Broker ────────────────────────────────────────────────────────────────────────────────────────────────
export const brokerRequests = new Counter({
  name: 'sat_broker_requests_total',
  help: 'HTTP requests to the broker (Alpaca or the simulated venue), by operation ("POST /v2/orders")',
  labelNames: ['operation'] as const,
  ...m,
});
export const brokerErrors = new Counter({
  name: 'sat_broker_errors_total',
  help: 'Failed broker requests by kind: rejected (4xx), unauthorized, rate_limited (429), server (5xx), timeout, network',
  labelNames: ['operation', 'kind'] as const,
  ...m,
});
export const rateLimitWaits = new Counter({
  name: 'sat_broker_rate_limit_waits_total',
  help: 'Waits imposed by a broker 429, by where the wait happened (order activity, order poll, reconciliation)',
  labelNames: ['where'] as const,
  ...m,
});
export const rateLimitWaitSeconds = new Counter({
  name: 'sat_broker_rate_limit_wait_seconds_total',
  help: 'Seconds of waiting imposed by broker 429s',
  labelNames: ['where'] as const,
  ...m,
});

// ── PostgreSQL ────────────────────────────────────────────────────────────────────────────────────────────
export const postgresRoundTrips = new Counter({
  name: 'sat_pg_round_trips_total',
  help: 'Round trips to PostgreSQL: a statement sent while none of the same connection was unanswered starts one (a pipelined batch counts once)',
  ...m,
});

// ── Reconciliation ────────────────────────────────────────────────────────────────────────────────────────
export const reconciliationFlags = new Counter({
  name: 'sat_reconciliation_flags_total',
  help: 'Ledger/broker differences reconciliation could not resolve and flagged for a human, by kind',
  labelNames: ['kind'] as const,
  ...m,
});

/**
 * A dead-letter reason reduced to a label: the words before the first ':' ("invalid bar: symbol …" →
 * "invalid_bar"), digits folded ("failed after 20 attempts" → "failed_after_n_attempts"). The full reason stays
 * in the message's x-rejection-reason header and the log line.
 */
export function reasonKind(reason: string): string {
  const head = reason.split(':', 1)[0] ?? '';
  const kind = head
    .toLowerCase()
    .replace(/\d+/g, 'n')
    .replace(/[^a-z_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 48);
  return kind || 'unspecified';
}

/** `POST /v2/orders/abc123` → `POST /v2/orders`: an operation label without ids. */
export function brokerOperation(method: string, path: string): string {
  const parts = path.split('/').filter(Boolean).slice(0, 2);
  const base = parts.join('/').replace(/:.*$/, '');
  return `${method} /${base}`;
}
