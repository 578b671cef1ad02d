import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../../src/metrics';
import { parsePrometheusText } from '../../src/metrics/scrape';
import { parse as parseYaml } from 'yaml';
import type { TradeStatus } from '../../src/workflows/shared';
import { PipelineHarness, freePort, testSignal } from '../support/pipeline';

/**
 * /metrics, /healthz and /readyz of the real processes (venue, trade worker, signal intake) on the real servers:
 * the counters agree with what happened (trades in the ledger, duplicates, dead letters), the Temporal SDK's own
 * metrics are exported, and readiness follows a dependency going away and coming back.
 */

type Samples = Map<string, number>;

/** Parse the Prometheus text format into `name{labels}` → value (labels as printed, `service` removed). */
export function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = (m[2] ?? '')
      .replace(/^\{|\}$/g, '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter((l) => l && !l.startsWith('service='))
      .join(',');
    out.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[3]));
  }
  return out;
}

async function scrape(url: string): Promise<Samples> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  return parseMetrics(await res.text());
}

describe('operations endpoints of the real processes', () => {
  let h: PipelineHarness;
  let sdkPort: number;
  let day = 0;
  const nextBar = async (close: number) => {
    day++;
    const ts = new Date(Date.UTC(2015, 0, 1) + day * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
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
      const s = await h.client.workflow
        .getHandle(workflowId)
        .query<TradeStatus>('status')
        .catch(() => undefined);
      if (s && done(s)) return s;
      if (Date.now() - t0 > timeoutMs) throw new Error(`timeout waiting on ${workflowId}: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const eventually = async <T>(f: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> => {
    let v = await f();
    for (let i = 0; i < 150 && !ok(v); i++) {
      await new Promise((r) => setTimeout(r, 200));
      v = await f();
    }
    if (!ok(v)) throw new Error(`${what}: last value ${JSON.stringify(v)}`);
    return v;
  };

  beforeAll(async () => {
    sdkPort = await freePort();
    // Intake as its own process, so each role's endpoint is checked on its own port.
    h = await PipelineHarness.create({ WORKER_SDK_METRICS_PORT: String(sdkPort), INTAKE_IN_WORKER: 'false' });
    await h.start('exchange-sim');
    await h.start('trade-worker');
    await h.start('signal-intake');
    await nextBar(20);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('counts what happened: one filled trade, one duplicate delivery, one dead letter, bars in', async () => {
    const sig = testSignal({ price: 20 });
    const workflowId = `trade-${sig.signal_id}`;
    await h.publishSignal(sig);
    await h.publishSignal(sig); // same signal again: no second trade, counted as a duplicate
    await waitFor(workflowId, (s) => s.phase === 'WORKING');
    await nextBar(20.2);
    const result = await h.client.workflow.getHandle(workflowId).result();
    expect(result.phase).toBe('FILLED');
    await h.publishRaw(JSON.stringify({ signal_id: 'bad', side: 'hold' }), `bad-${Date.now()}`);

    const intake = await eventually(
      () => scrape(h.opsUrl('signal-intake')),
      // The dead-letter count follows the DLQ's publish confirm, a moment after the message counted as invalid.
      (m) =>
        m.get('sat_signals_received_total{outcome="duplicate"}') === 1 &&
        m.get('sat_dead_letters_total{queue="intake.signals",reason="invalid_signal"}') === 1,
      'intake counters',
    );
    expect(intake.get('sat_signals_received_total{outcome="started"}')).toBe(1);
    expect(intake.get('sat_signals_received_total{outcome="invalid"}')).toBe(1);

    const ledger = await h.db.pool.query<{ status: string; n: string }>(
      `SELECT status, count(*) AS n FROM trades GROUP BY status`,
    );
    const worker = await scrape(h.opsUrl('trade-worker'));
    for (const r of ledger.rows) {
      expect(worker.get(`sat_trades_finished_total{status="${r.status}",reason_code="none"}`), r.status).toBe(
        Number(r.n),
      );
    }
    expect(worker.get('sat_signal_to_order_seconds_count')).toBe(1);
    expect(worker.get('sat_broker_requests_total{operation="POST /v2/orders"}')).toBe(1);
    expect(worker.get('sat_broker_errors_total{operation="POST /v2/orders",kind="rejected"}')).toBeUndefined();

    const venue = await scrape(h.opsUrl('exchange-sim'));
    expect(venue.get('sat_bars_received_total{symbol="NVDA"}')).toBe(2);
  });

  it("exports the Temporal SDK's own metrics from the worker's runtime", async () => {
    const res = await fetch(`http://127.0.0.1:${sdkPort}/metrics`);
    expect(res.status).toBe(200);
    const sdk = parseMetrics(await res.text());
    const names = [...sdk.keys()].map((k) => k.replace(/\{.*$/, ''));
    expect(names).toContain('temporal_workflow_completed_total');
    expect(names).toContain('temporal_activity_execution_latency_seconds_bucket');
  });

  it('has a Grafana dashboard and alert rules that parse and use only metrics the processes really export', async () => {
    const file = path.resolve(__dirname, '../../deploy/grafana/dashboards/stockautotrader.json');
    const dashboard = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      uid: string;
      panels: Array<{ type: string; title: string; targets?: Array<{ expr: string; datasource: { uid: string } }> }>;
    };
    expect(dashboard.uid).toBe('stockautotrader');
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));
    expect(exprs.length).toBeGreaterThan(10);
    for (const t of exprs) expect(t.datasource.uid, t.panel).toBe('prometheus'); // deploy/grafana/provisioning

    // Every metric name the processes serve: sample names, and the families their TYPE lines declare.
    const exported = new Set<string>();
    const urls = [
      ...(['exchange-sim', 'trade-worker', 'signal-intake'] as const).map((n) => `${h.opsUrl(n)}/metrics`),
      `http://127.0.0.1:${sdkPort}/metrics`,
    ];
    for (const url of urls) {
      const text = await (await fetch(url)).text();
      for (const s of parsePrometheusText(text)) exported.add(s.name);
      for (const m of text.matchAll(/^# TYPE (\S+) (\S+)/gm)) {
        exported.add(m[1]!);
        if (m[2] === 'histogram') for (const sfx of ['_bucket', '_sum', '_count']) exported.add(m[1]! + sfx);
      }
    }
    // `up` is Prometheus's own per-target series, not a process metric.
    const PROMETHEUS_SYNTHETIC = new Set(['up']);
    const used = new Set<string>();
    for (const t of exprs) {
      for (const m of t.expr.matchAll(/\b(sat_\w+|temporal_\w+|process_\w+|nodejs_\w+|up)\b(?!\s*\()/g))
        used.add(m[1]!);
    }
    // The alert rules too (deploy/prometheus/alerts.yml).
    const rules = parseYaml(fs.readFileSync(path.resolve(__dirname, '../../deploy/prometheus/alerts.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const alertExprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
    expect(alertExprs.length).toBeGreaterThan(3);
    for (const e of alertExprs) {
      for (const m of e.matchAll(/\b(sat_\w+|temporal_\w+|process_\w+|nodejs_\w+|up)\b(?!\s*\()/g)) used.add(m[1]!);
    }
    const missing = [...used].filter((n) => !exported.has(n) && !PROMETHEUS_SYNTHETIC.has(n));
    expect(missing, `not exported by any process: ${missing.join(', ')}`).toEqual([]);
    // And the other way round: every pipeline metric has a panel.
    const ours = (await registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('sat_'));
    for (const name of ours) {
      expect(
        [...used].some((u) => u === name || u.startsWith(`${name}_`)),
        `no panel shows ${name}`,
      ).toBe(true);
    }
  });

  it('is live and ready while its connections answer; not ready (naming why) while the venue is down', async () => {
    for (const name of ['exchange-sim', 'trade-worker', 'signal-intake'] as const) {
      const ready = await fetch(`${h.opsUrl(name)}/readyz`);
      expect(ready.status, name).toBe(200);
      expect((await fetch(`${h.opsUrl(name)}/healthz`)).status, name).toBe(200);
    }
    const intake = (await (await fetch(`${h.opsUrl('signal-intake')}/readyz`)).json()) as {
      checks: Record<string, unknown>;
    };
    expect(Object.keys(intake.checks).sort()).toEqual(['rabbitmq', 'temporal']);

    await h.stop('exchange-sim');
    const down = await eventually(
      async () => {
        const r = await fetch(`${h.opsUrl('trade-worker')}/readyz`);
        return { status: r.status, body: (await r.json()) as { checks: Record<string, { ok: boolean }> } };
      },
      (r) => r.status === 503,
      'worker readiness with the venue down',
    );
    expect(down.body.checks.broker?.ok).toBe(false);
    expect(down.body.checks.postgres?.ok).toBe(true);
    expect(down.body.checks.temporal?.ok).toBe(true);
    // Alive all the same: a restart would not bring the venue back.
    expect((await fetch(`${h.opsUrl('trade-worker')}/healthz`)).status).toBe(200);

    await h.start('exchange-sim');
    await eventually(
      async () => (await fetch(`${h.opsUrl('trade-worker')}/readyz`)).status,
      (s) => s === 200,
      'worker readiness after the venue is back',
    );
  });
});
