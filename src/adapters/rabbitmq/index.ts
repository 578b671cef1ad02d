import type { Channel, ChannelModel } from 'amqplib';
import type { RabbitmqConfig } from '../../config';
import { assertTopology } from './topology';

/**
 * RabbitMQ adapter: topology, a self-healing connection, a confirm publisher, dead-lettering with a reason and a
 * manual-ack JSON consumer. See docs/messaging.md for the guarantees and why.
 */
export * from './topology';
export * from './connection';
export * from './publisher';
export * from './dead-letter';
export * from './consumer';
export * from './migrate-queues';
export type { ChannelModel, ConsumeMessage } from 'amqplib';

/** Run `fn` on a short-lived channel, then close it (for declarations in a RabbitConnection setup). */
export async function withChannel<T>(conn: ChannelModel, fn: (ch: Channel) => Promise<T>): Promise<T> {
  const ch = await conn.createChannel();
  // A channel error (e.g. 406 on a conflicting declaration) rejects the pending call; 'error' must be handled.
  ch.on('error', () => undefined);
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/**
 * A setup callback for RabbitConnection: declare the whole topology on every (re)connect, with the `rabbitmq`
 * section's delivery limit (every process must declare the same x-delivery-limit, or RabbitMQ refuses the
 * declaration).
 */
export function topologySetup(rabbitmq: Pick<RabbitmqConfig, 'deliveryLimit'>): (conn: ChannelModel) => Promise<void> {
  const { deliveryLimit } = rabbitmq;
  return (conn) => withChannel(conn, (ch) => assertTopology(ch, { deliveryLimit }));
}

export * from './management';
