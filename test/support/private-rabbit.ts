import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { restartablePort } from './ports';

const ROOT = path.resolve(__dirname, '../..');
const exec = promisify(execFile);

/**
 * A RabbitMQ node of the test's own, for tests that stop, restart or alarm the broker: the shared node on 5672
 * serves every other test file running beside this one (the integration tier runs files in parallel) and other
 * agents' runs, and must never be restarted. Started with the project's own scripts (scripts/provision/rabbitmq.sh
 * with a private DATA directory, free AMQP/management/distribution ports and its own node name), so it is
 * configured like the dev stack's node: vhost and user from RABBITMQ_VHOST/RABBITMQ_USER/RABBITMQ_PASS.
 */
export interface PrivateRabbit {
  /** The process environment pointed at this node (RABBITMQ_*, DATA): for parseEnv and for child processes. */
  env: NodeJS.ProcessEnv;
  /** The settings that differ from the shared node's, for a harness's extra environment. */
  rabbitEnv: Record<string, string>;
  /** scripts/rabbitmq-restart.sh on this node: stop_app, `downSeconds` down, start_app, wait for AMQP. */
  restart(downSeconds?: number): Promise<void>;
  /** start_app if it is stopped (a no-op otherwise): a failed test must not leave the node down. */
  ensureStarted(): Promise<void>;
  /** rabbitmqctl on this node. */
  ctl(...args: string[]): Promise<string>;
  /** Stop the node and delete its directory. */
  destroy(): Promise<void>;
}

export async function startPrivateRabbit(prefix = 'sat-rmq'): Promise<PrivateRabbit> {
  const dataDir = path.join(os.tmpdir(), `${prefix}-${randomBytes(3).toString('hex')}`);
  // Ports the node keeps across its restarts (AMQP, management, Erlang distribution): see ports.ts.
  const [port, mgmt, dist] = [await restartablePort(), await restartablePort(), await restartablePort()];
  const rabbitEnv: Record<string, string> = {
    RABBITMQ_HOST: '127.0.0.1',
    RABBITMQ_PORT: String(port),
    RABBITMQ_MANAGEMENT_PORT: String(mgmt),
    RABBITMQ_DIST_PORT: String(dist),
    RABBITMQ_NODENAME: `${prefix.replace(/[^a-z0-9]/gi, '')}${port}@localhost`,
  };
  const env: NodeJS.ProcessEnv = { ...process.env, DATA: dataDir, ...rabbitEnv };
  const script = (name: string, args: string[]) =>
    exec('bash', [path.join(ROOT, 'scripts', name), ...args], { env, timeout: 240_000 });
  try {
    await script('provision/rabbitmq.sh', ['up']);
  } catch (err) {
    await script('provision/rabbitmq.sh', ['down']).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    env,
    rabbitEnv,
    async restart(downSeconds = 2) {
      await script('rabbitmq-restart.sh', ['restart', String(downSeconds)]);
    },
    async ensureStarted() {
      await script('rabbitmq-restart.sh', ['start']).catch(() => undefined);
    },
    async ctl(...args: string[]) {
      const { stdout } = await exec('/usr/lib/rabbitmq/bin/rabbitmqctl', ['-q', ...args], {
        env: {
          ...env,
          HOME: `${dataDir}/rabbitmq/home`,
          ERL_EPMD_ADDRESS: '127.0.0.1',
          RABBITMQ_CTL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
        },
        timeout: 120_000,
      });
      return stdout;
    },
    async destroy() {
      await script('provision/rabbitmq.sh', ['down']).catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
