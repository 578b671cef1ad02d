import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logging';
import { registry } from './index';

/**
 * Each process's operations endpoint (one small HTTP server, node:http: three fixed routes need no framework):
 *
 *   GET /metrics  Prometheus text format (prom-client registry)
 *   GET /healthz  liveness: the process is alive and its event loop answers; `live` checks (e.g. "the Temporal
 *                 worker has not failed") turn it to 503 so an orchestrator restarts the process
 *   GET /readyz   readiness: every dependency the process needs answers right now (Temporal, RabbitMQ,
 *                 PostgreSQL, the venue); 503 with the failing check named while one does not
 *
 * Checks are real round trips (a SELECT 1, a Temporal health RPC, an open AMQP connection), bounded by a timeout
 * so a hung dependency makes the probe fail instead of hanging it.
 */

export type HealthCheck = () => Promise<void> | void;

export interface OpsServerOptions {
  host: string;
  /** 0 picks a free port (tests); the chosen one is in `url`. */
  port: number;
  logger: Logger;
  ready?: Record<string, HealthCheck>;
  live?: Record<string, HealthCheck>;
  /** Per-check timeout. Default 3 s. */
  checkTimeoutMs?: number;
}

export interface OpsServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

async function runChecks(
  checks: Record<string, HealthCheck>,
  timeoutMs: number,
): Promise<{ ok: boolean; checks: Record<string, CheckResult> }> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
      const t0 = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(check),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return [name, { ok: true, ms: Date.now() - t0 }];
      } catch (err) {
        return [name, { ok: false, ms: Date.now() - t0, error: err instanceof Error ? err.message : String(err) }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ok: entries.every(([, r]) => r.ok), checks: Object.fromEntries(entries) };
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const timeoutMs = opts.checkTimeoutMs ?? 3000;
  const started = Date.now();
  const server = http.createServer((req, res) => {
    const route = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    void (async () => {
      try {
        if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'GET only' });
        if (route === '/metrics') {
          const text = await registry.metrics();
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
          return;
        }
        if (route === '/healthz' || route === '/readyz') {
          const r = await runChecks((route === '/healthz' ? opts.live : opts.ready) ?? {}, timeoutMs);
          return json(r.ok ? 200 : 503, {
            status: r.ok ? 'ok' : 'failing',
            uptime_s: Math.round((Date.now() - started) / 1000),
            checks: r.checks,
          });
        }
        return json(404, { error: 'not found', routes: ['/metrics', '/healthz', '/readyz'] });
      } catch (err) {
        opts.logger.error({ err, route }, 'ops endpoint failed');
        if (!res.headersSent) json(500, { error: 'internal error' });
        else res.end();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${shownHost}:${port}`;
  opts.logger.info({ url, routes: ['/metrics', '/healthz', '/readyz'] }, 'ops endpoint listening');
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
