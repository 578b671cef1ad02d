import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging';
import { brokerOperation, deadLetters, reasonKind, registry, tradesFinished } from '../../src/metrics';
import { startOpsServer, type OpsServer } from '../../src/metrics/server';

describe('metric labels', () => {
  it('reduces a dead-letter reason to a low-cardinality kind', () => {
    expect(reasonKind('invalid bar: symbol: must be upper-case')).toBe('invalid_bar');
    expect(reasonKind('failed after 20 attempts: ECONNREFUSED')).toBe('failed_after_n_attempts');
    expect(reasonKind('invalid signal: price: expected number')).toBe('invalid_signal');
    expect(reasonKind('')).toBe('unspecified');
    expect(reasonKind(':::')).toBe('unspecified');
  });

  it('names a broker operation without ids', () => {
    expect(brokerOperation('POST', '/v2/orders')).toBe('POST /v2/orders');
    expect(brokerOperation('GET', '/v2/orders/6f1c-uuid')).toBe('GET /v2/orders');
    expect(brokerOperation('GET', '/v2/orders:by_client_order_id')).toBe('GET /v2/orders');
    expect(brokerOperation('DELETE', '/v2/orders/abc')).toBe('DELETE /v2/orders');
    expect(brokerOperation('GET', '/v2/account')).toBe('GET /v2/account');
  });
});

describe('ops endpoint (/metrics, /healthz, /readyz)', () => {
  let server: OpsServer;
  let dbUp = true;
  beforeAll(async () => {
    server = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      logger: createLogger('test', { level: 'silent' }),
      ready: {
        postgres: () => {
          if (!dbUp) throw new Error('connection refused');
        },
        hung: () => new Promise<void>((resolve) => setTimeout(resolve, dbUp ? 0 : 5_000).unref()),
      },
      live: { loop: () => undefined },
      checkTimeoutMs: 300,
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('serves the registry in the Prometheus text format', async () => {
    tradesFinished.inc({ status: 'FILLED', reason_code: 'none' });
    deadLetters.inc({ queue: 'quant.bars', reason: 'invalid_bar' });
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('# TYPE sat_trades_finished_total counter');
    expect(text).toMatch(/sat_trades_finished_total\{status="FILLED",reason_code="none"\} 1/);
    expect(text).toMatch(/sat_dead_letters_total\{queue="quant.bars",reason="invalid_bar"\} 1/);
    expect(text).toBe(await registry.metrics());
  });

  it('is ready while its checks pass and names the failing one when not', async () => {
    dbUp = true;
    const ok = await fetch(`${server.url}/readyz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ok', checks: { postgres: { ok: true }, hung: { ok: true } } });

    dbUp = false;
    const bad = await fetch(`${server.url}/readyz`);
    expect(bad.status).toBe(503);
    const body = (await bad.json()) as { status: string; checks: Record<string, { ok: boolean; error?: string }> };
    expect(body.status).toBe('failing');
    expect(body.checks.postgres).toMatchObject({ ok: false, error: 'connection refused' });
    // A dependency that does not answer fails the probe instead of hanging it.
    expect(body.checks.hung).toMatchObject({ ok: false, error: 'no answer within 300 ms' });

    // Liveness does not depend on the database: restarting the process would not bring it back.
    const live = await fetch(`${server.url}/healthz`);
    expect(live.status).toBe(200);
    dbUp = true;
  });

  it('answers 404 elsewhere and 405 for writes', async () => {
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});
