import { randomBytes } from 'node:crypto';
import { RabbitManagement } from '../../src/adapters/rabbitmq';
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
  const management = RabbitManagement.fromConfig(base.rabbitmq);
  await management.createVhost(vhost, 'test (temporary)');
  const config = parseEnv({ ...process.env, RABBITMQ_VHOST: vhost });
  return {
    vhost,
    url: config.rabbitmq.url,
    config,
    async drop() {
      await management.deleteVhost(vhost).catch(() => undefined);
    },
  };
}
