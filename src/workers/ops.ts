import type { Pool } from 'pg';
import type { OpsConfig, OpsRole } from '../config';
import type { Logger } from '../logging';
import { pingDatabase } from '../adapters/postgres/pool';
import type { RabbitConnection } from '../adapters/rabbitmq';
import { initMetrics } from '../metrics';
import { startOpsServer, type HealthCheck, type OpsServer } from '../metrics/server';

/**
 * Health checks on the real connections a process holds, and the process's /metrics + /healthz + /readyz
 * endpoint (src/metrics/server.ts) on its configured port.
 */

/** RabbitMQ: connected, and the broker answers a channel open/close round trip. */
export function rabbitCheck(rabbit: RabbitConnection): HealthCheck {
  return async () => {
    const conn = rabbit.connection;
    if (!conn || rabbit.state !== 'connected') throw new Error(`RabbitMQ ${rabbit.state}`);
    const ch = await conn.createChannel();
    await ch.close();
  };
}

/** PostgreSQL: a pooled connection answers a round trip. */
export function postgresCheck(pool: Pool): HealthCheck {
  return async () => {
    await pingDatabase(pool);
  };
}

/** Temporal: the frontend's gRPC health service says SERVING (works for Connection and NativeConnection). */
export function temporalCheck(connection: {
  healthService: { check(req: object): Promise<{ status?: number | null }> };
}): HealthCheck {
  return async () => {
    const r = await connection.healthService.check({});
    // grpc.health.v1 ServingStatus: 1 = SERVING.
    if (r.status !== 1) throw new Error(`Temporal frontend not serving (status ${String(r.status)})`);
  };
}

/** Label this process's metrics with its role and serve its endpoint. */
export async function startOps(
  ops: OpsConfig,
  role: OpsRole,
  logger: Logger,
  checks: { ready?: Record<string, HealthCheck>; live?: Record<string, HealthCheck> } = {},
): Promise<OpsServer> {
  initMetrics(role);
  return startOpsServer({ host: ops.host, port: ops.ports[role], logger, ...checks });
}
