import type { Channel, ChannelModel, ConfirmChannel, GetMessage, Options } from 'amqplib';
import type { Logger } from '../../logging';
import {
  CONSUMER_QUEUES,
  DEAD_LETTER_EXCHANGE,
  DEAD_LETTER_QUEUE_ARGUMENTS,
  DELIVERY_COUNT_HEADER,
  MARKET_BARS_EXCHANGE,
  QueueDeclarationError,
  TRADE_SIGNALS_EXCHANGE,
  assertDeadLetterExchange,
  consumerQueueArguments,
  dlqName,
  type ConsumerQueueSpec,
  type TopologyOptions,
} from './topology';

/**
 * Re-create queues whose existing declaration differs from this version's (a classic queue from before the
 * quorum switch, or another x-delivery-limit), keeping every message. RabbitMQ cannot change a queue's type or
 * arguments in place, so, per queue:
 *
 *   1. a holding queue `<queue>.migrating` (quorum) is declared and bound like the queue, so messages published
 *      during the migration are kept; then the old queue is unbound;
 *   2. every message of the old queue is copied into the holding queue (publisher confirms) and only then acked;
 *   3. the old queue is deleted once a move has left it empty;
 *   4. the queue is declared with the new arguments and bound; the holding queue is unbound, moved back the same
 *      way, and deleted.
 *
 * A message published between steps 1 and the unbinding lands in both queues, and is delivered twice: harmless,
 * every consumer recognises a message id it has seen (docs/messaging.md). Never lost: a copy is acked only after
 * its confirm. Refuses to touch a queue that has consumers: stop the processes consuming it first.
 */
export interface MigrationResult {
  queue: string;
  action: 'unchanged' | 'migrated';
  reason?: string;
  moved: number;
}

interface QueueTarget {
  queue: string;
  args: Record<string, unknown>;
  bindings: Array<{ exchange: string; key: string }>;
}

function targetsOf(spec: ConsumerQueueSpec, opts: TopologyOptions): QueueTarget[] {
  return [
    {
      queue: dlqName(spec.queue),
      args: { ...DEAD_LETTER_QUEUE_ARGUMENTS },
      bindings: [{ exchange: DEAD_LETTER_EXCHANGE, key: spec.queue }],
    },
    {
      queue: spec.queue,
      args: consumerQueueArguments(spec.queue, opts),
      bindings: spec.bindingKeys.map((key) => ({ exchange: spec.exchange, key })),
    },
  ];
}

export async function migrateQueues(
  conn: ChannelModel,
  opts: TopologyOptions & { specs?: readonly ConsumerQueueSpec[]; logger?: Logger } = {},
): Promise<MigrationResult[]> {
  const specs = opts.specs ?? CONSUMER_QUEUES;
  await onChannel(conn, async (ch) => {
    await ch.assertExchange(MARKET_BARS_EXCHANGE, 'topic', { durable: true });
    await ch.assertExchange(TRADE_SIGNALS_EXCHANGE, 'topic', { durable: true });
    await assertDeadLetterExchange(ch);
  });
  const out: MigrationResult[] = [];
  for (const spec of specs) {
    for (const t of targetsOf(spec, opts)) {
      const mismatch = await declarationMismatch(conn, t);
      if (!mismatch) {
        out.push({ queue: t.queue, action: 'unchanged', moved: 0 });
        continue;
      }
      opts.logger?.info({ queue: t.queue, argument: mismatch.argument }, 'migrating queue');
      out.push({ queue: t.queue, action: 'migrated', reason: mismatch.argument, moved: await migrateOne(conn, t) });
    }
  }
  return out;
}

/** Undefined when the queue is absent or already declared as wanted (then it is declared and bound now). */
async function declarationMismatch(conn: ChannelModel, t: QueueTarget): Promise<QueueDeclarationError | undefined> {
  try {
    await onChannel(conn, async (ch) => {
      try {
        await ch.assertQueue(t.queue, { durable: true, arguments: t.args });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (!/PRECONDITION[_-]FAILED/.test(message)) throw err;
        throw new QueueDeclarationError(t.queue, /inequivalent arg '([^']+)'/.exec(message)?.[1], message);
      }
      for (const b of t.bindings) await ch.bindQueue(t.queue, b.exchange, b.key);
    });
    return undefined;
  } catch (err) {
    if (err instanceof QueueDeclarationError) return err;
    throw err;
  }
}

async function migrateOne(conn: ChannelModel, t: QueueTarget): Promise<number> {
  const holding = `${t.queue}.migrating`;
  const { consumerCount } = await onChannel(conn, (ch) => ch.checkQueue(t.queue));
  if (consumerCount > 0) {
    throw new Error(
      `queue '${t.queue}' has ${consumerCount} consumer(s): stop the processes consuming it, then run the migration again`,
    );
  }
  await onChannel(conn, async (ch) => {
    await ch.assertQueue(holding, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    for (const b of t.bindings) await ch.bindQueue(holding, b.exchange, b.key);
    for (const b of t.bindings) await ch.unbindQueue(t.queue, b.exchange, b.key);
  });
  // Unbound, the old queue receives nothing more (no project code publishes to a queue by name), so once a
  // move leaves it empty it can go. Quorum queues refuse `if-empty` deletes (540), hence the explicit check.
  let moved = 0;
  do moved += await moveAll(conn, t.queue, holding);
  while ((await onChannel(conn, (ch) => ch.checkQueue(t.queue))).messageCount > 0);
  await onChannel(conn, (ch) => ch.deleteQueue(t.queue));
  await onChannel(conn, async (ch) => {
    await ch.assertQueue(t.queue, { durable: true, arguments: t.args });
    for (const b of t.bindings) await ch.bindQueue(t.queue, b.exchange, b.key);
    for (const b of t.bindings) await ch.unbindQueue(holding, b.exchange, b.key);
  });
  do await moveAll(conn, holding, t.queue);
  while ((await onChannel(conn, (ch) => ch.checkQueue(holding))).messageCount > 0);
  await onChannel(conn, (ch) => ch.deleteQueue(holding));
  return moved;
}

/** Copy every message from `from` to `to` (default exchange), acking each original only after its confirm. */
async function moveAll(conn: ChannelModel, from: string, to: string): Promise<number> {
  const ch: ConfirmChannel = await conn.createConfirmChannel();
  ch.on('error', () => undefined);
  let n = 0;
  try {
    for (;;) {
      const m: GetMessage | false = await ch.get(from, { noAck: false });
      if (!m) return n;
      ch.publish('', to, m.content, publishOptionsOf(m));
      await ch.waitForConfirms();
      ch.ack(m);
      n++;
    }
  } finally {
    await ch.close().catch(() => undefined);
  }
}

function publishOptionsOf(m: GetMessage): Options.Publish {
  const p = m.properties;
  const headers = { ...((p.headers ?? {}) as Record<string, unknown>) };
  // The source queue's return count does not carry over: the new queue starts counting afresh.
  delete headers[DELIVERY_COUNT_HEADER];
  return {
    mandatory: true,
    persistent: true,
    headers,
    contentType: p.contentType as string | undefined,
    contentEncoding: p.contentEncoding as string | undefined,
    correlationId: p.correlationId as string | undefined,
    messageId: p.messageId as string | undefined,
    timestamp: p.timestamp as number | undefined,
    type: p.type as string | undefined,
    appId: p.appId as string | undefined,
    expiration: p.expiration as string | undefined,
    priority: p.priority as number | undefined,
    replyTo: p.replyTo as string | undefined,
    userId: p.userId as string | undefined,
  };
}

async function onChannel<T>(conn: ChannelModel, fn: (ch: Channel) => Promise<T>): Promise<T> {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => undefined);
  }
}
