import { z } from 'zod';
import { bool, int, str, type Parsed } from './fields';

/** The `rabbitmq` section (original variable names kept). */
export const rabbitmqVars = {
  RABBITMQ_HOST: str('127.0.0.1'),
  RABBITMQ_PORT: int(5672, 1, 65535),
  RABBITMQ_USER: str('stockautotrader'),
  RABBITMQ_PASS: str('stockautotrader-local'),
  RABBITMQ_VHOST: str('stockautotrader'),
  RABBITMQ_MANAGEMENT_PORT: int(15672, 1, 65535),
  /** Every node of a cluster (host:port, comma-separated); empty = the one node RABBITMQ_HOST:RABBITMQ_PORT. */
  RABBITMQ_NODES: z.preprocess(
    (v) => (v === undefined ? '' : v),
    z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((n) => n.trim())
          .filter((n) => n !== ''),
      )
      .pipe(
        z.array(z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'host:port'), {
          invalid_type_error: 'host:port list',
        }),
      ),
  ),
  /** Un-acked signals = workflow starts in flight. */
  SIGNAL_PREFETCH: int(32, 1, 10_000),
  /** x-delivery-limit of the quorum consumer queues: returns before the broker dead-letters a message. */
  RABBITMQ_DELIVERY_LIMIT: int(20, 1, 1000),
  /**
   * The trade worker also runs signal intake, starting trades eagerly on its own connection (issue 12: the
   * first workflow task skips matching). false for a separate signal-intake process (scale-out).
   */
  INTAKE_IN_WORKER: bool(true),
};

export interface RabbitmqConfig {
  /**
   * amqp:// URL with the credentials; loggers scrub it (src/logging). The first node's (RABBITMQ_HOST:RABBITMQ_PORT,
   * or RABBITMQ_NODES' first).
   */
  url: string;
  /** One URL per cluster node (RABBITMQ_NODES), else just `url`: what RabbitConnection fails over between. */
  urls: string[];
  host: string;
  port: number;
  user: string;
  /** The user's password (loggers redact `pass` fields). */
  pass: string;
  vhost: string;
  managementPort: number;
  signalPrefetch: number;
  deliveryLimit: number;
  /** Signal intake runs inside the trade worker (eager workflow start); else as its own process. */
  intakeInWorker: boolean;
}

export function rabbitmqSection(e: Parsed<typeof rabbitmqVars>): RabbitmqConfig {
  const amqpUrl = (hostPort: string) =>
    `amqp://${encodeURIComponent(e.RABBITMQ_USER)}:${encodeURIComponent(e.RABBITMQ_PASS)}@${hostPort}/${encodeURIComponent(e.RABBITMQ_VHOST)}`;
  const urls =
    e.RABBITMQ_NODES.length > 0 ? e.RABBITMQ_NODES.map(amqpUrl) : [amqpUrl(`${e.RABBITMQ_HOST}:${e.RABBITMQ_PORT}`)];
  return {
    url: urls[0]!,
    urls,
    host: e.RABBITMQ_HOST,
    port: e.RABBITMQ_PORT,
    user: e.RABBITMQ_USER,
    pass: e.RABBITMQ_PASS,
    vhost: e.RABBITMQ_VHOST,
    managementPort: e.RABBITMQ_MANAGEMENT_PORT,
    signalPrefetch: e.SIGNAL_PREFETCH,
    deliveryLimit: e.RABBITMQ_DELIVERY_LIMIT,
    intakeInWorker: e.INTAKE_IN_WORKER,
  };
}
