import { randomBytes } from 'node:crypto';
import { parseEnv, type Config } from '../../src/config';

/**
 * A RabbitMQ vhost of the test's own, created (and deleted) through the management API with the project user's
 * full permissions on it. Queues declared in it cannot collide with queues other agents' or older code declared
 * in the shared vhost (a classic `intake.signals` there would refuse a quorum declaration, and vice versa).
 */
export interface PrivateVhost {
  vhost: string;
  /** amqp:// URL of the project user on this vhost. */
  url: string;
  /** The process configuration with RABBITMQ_VHOST pointed here. */
  config: Config;
  drop(): Promise<void>;
}

export async function createPrivateVhost(prefix = 'sat-test'): Promise<PrivateVhost> {
  const base = parseEnv(process.env);
  const vhost = `${prefix}-${randomBytes(5).toString('hex')}`;
  await management(base, 'PUT', `/api/vhosts/${encodeURIComponent(vhost)}`);
  await management(
    base,
    'PUT',
    `/api/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(base.rabbitmq.user)}`,
    { configure: '.*', write: '.*', read: '.*' },
  );
  const config = parseEnv({ ...process.env, RABBITMQ_VHOST: vhost });
  return {
    vhost,
    url: config.rabbitmq.url,
    config,
    async drop() {
      await management(base, 'DELETE', `/api/vhosts/${encodeURIComponent(vhost)}`).catch(() => undefined);
    },
  };
}

async function management(cfg: Config, method: string, apiPath: string, body?: unknown): Promise<void> {
  const auth = Buffer.from(`${cfg.rabbitmq.user}:${cfg.env.RABBITMQ_PASS}`).toString('base64');
  const res = await fetch(`http://${cfg.rabbitmq.host}:${cfg.rabbitmq.managementPort}${apiPath}`, {
    method,
    headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`management API ${method} ${apiPath}: HTTP ${res.status} ${await res.text()}`);
}
