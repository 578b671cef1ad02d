import type { Channel } from 'amqplib';

/**
 * The RabbitMQ topology, declared in one place and idempotently by every process that touches it.
 *
 *   market.bars   (topic)  --bars.#-->    quant.bars      --(reject / dead-letter)--> dead.letter --quant.bars-->     quant.bars.dlq
 *                          --bars.#-->    store.bars      --(reject / dead-letter)--> dead.letter --store.bars-->     store.bars.dlq
 *   trade.signals (topic)  --signal.#-->  intake.signals  --(reject / dead-letter)--> dead.letter --intake.signals--> intake.signals.dlq
 *
 * Every consumer queue is a quorum queue (replicated by Raft on a cluster, durable on one node, the same
 * declaration either way) with a delivery limit, and names `dead.letter` as its dead-letter exchange with its own
 * name as the routing key. So a message that is nacked without requeue is never dropped: it lands in
 * `<queue>.dlq`; and a poison message (one whose consumer crashes, or whose handler keeps failing) is
 * dead-lettered after `x-delivery-limit` returns, counted by the broker (the `x-delivery-count` header), so the
 * count survives consumer restarts. Dead-lettering is `at-least-once` (RabbitMQ ≥ 3.10): the broker keeps the
 * message until the DLQ has confirmed it.
 * RabbitMQ refuses (406 PRECONDITION_FAILED) a re-declaration with different arguments, so every declaration of a
 * consumer queue must go through `consumerQueueArguments()`; never declare these queues by hand. A classic queue
 * left by an older version under the same name is refused the same way: see `QueueDeclarationError`.
 */

export const MARKET_BARS_EXCHANGE = 'market.bars';
export const TRADE_SIGNALS_EXCHANGE = 'trade.signals';
export const DEAD_LETTER_EXCHANGE = 'dead.letter';

export const QUANT_BARS_QUEUE = 'quant.bars';
/** The bar store's queue (workers/bar-store.ts → market_bars): every bar, for RiskOps' volatility and ATR. */
export const STORE_BARS_QUEUE = 'store.bars';
export const INTAKE_SIGNALS_QUEUE = 'intake.signals';

export const QUANT_BARS_BINDING = 'bars.#';
export const INTAKE_SIGNALS_BINDING = 'signal.#';

/**
 * Returns (nack with requeue, or a consumer's channel closing with the message un-acked) before the broker
 * dead-letters a message: a message is delivered at most `limit + 1` times. The default of RABBITMQ_DELIVERY_LIMIT.
 * Consumers (`consumeJson`'s `maxAttempts`) dead-letter a failing message themselves, with its reason, at or
 * before this count; the broker's limit catches what they cannot (a consumer that crashes on the message).
 */
export const DEFAULT_DELIVERY_LIMIT = 20;

/** AMQP header a quorum queue sets on every delivery: how many times this message was returned before. */
export const DELIVERY_COUNT_HEADER = 'x-delivery-count';

export interface TopologyOptions {
  /** `x-delivery-limit` of every consumer queue (RABBITMQ_DELIVERY_LIMIT). Default DEFAULT_DELIVERY_LIMIT. */
  deliveryLimit?: number;
}

/** Header names written by `deadLetter()` (see dead-letter.ts). */
export const REJECTION_REASON_HEADER = 'x-rejection-reason';
export const ORIGINAL_QUEUE_HEADER = 'x-original-queue';
export const ORIGINAL_ROUTING_KEY_HEADER = 'x-original-routing-key';
export const ORIGINAL_EXCHANGE_HEADER = 'x-original-exchange';

/** `bars.<interval>.<symbol>`, e.g. `bars.1d.NVDA`. */
export function barRoutingKey(interval: string, symbol: string): string {
  return `bars.${interval}.${symbol}`;
}

/** `signal.<strategy>.<symbol>`, e.g. `signal.sma-cross.NVDA`. */
export function signalRoutingKey(strategy: string, symbol: string): string {
  return `signal.${strategy}.${symbol}`;
}

/**
 * A batch of signals (contracts/signal.ts, `signal_batch`): `signal.batch.<symbol>` when all are of one symbol,
 * else `signal.batch`. Both match the intake's `signal.#`; a consumer that selects by strategy reads single
 * signals (QUANT_SIGNALS_PER_MESSAGE=1).
 */
export function signalBatchRoutingKey(symbol: string | undefined): string {
  return symbol === undefined ? 'signal.batch' : `signal.batch.${symbol}`;
}

/** The dead-letter queue of a consumer queue. */
export function dlqName(queue: string): string {
  return `${queue}.dlq`;
}

/** The exact arguments of a consumer queue. Same input, same output: re-declaring is a no-op. */
export function consumerQueueArguments(queue: string, opts: TopologyOptions = {}): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-delivery-limit': opts.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT,
    'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE,
    'x-dead-letter-routing-key': queue,
    // at-least-once dead-lettering (3.10+) needs reject-publish overflow; with no length limit set it never triggers.
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
}

/** The arguments of a dead-letter queue: quorum too (replicated on a cluster); no limit, nothing leaves it by itself. */
export const DEAD_LETTER_QUEUE_ARGUMENTS: Readonly<Record<string, unknown>> = { 'x-queue-type': 'quorum' };

/**
 * A queue declaration the broker refused because a queue of that name already exists with other arguments
 * (406 PRECONDITION_FAILED). The message names the queue, the argument, and what the operator should do. It
 * is permanent: `RabbitConnection.start()` fails with it instead of retrying.
 */
export class QueueDeclarationError extends Error {
  override readonly name = 'QueueDeclarationError';
  constructor(
    readonly queue: string,
    readonly argument: string | undefined,
    readonly brokerMessage: string,
  ) {
    super(queueDeclarationAdvice(queue, argument, brokerMessage));
  }
}

function queueDeclarationAdvice(queue: string, argument: string | undefined, brokerMessage: string): string {
  const head = `RabbitMQ refused to declare queue '${queue}'`;
  // Which argument the broker names first varies; a classic-only argument, or one the existing queue lacks
  // altogether ("current is none"), means the queue predates the quorum declaration.
  const olderVersion =
    argument === 'x-queue-type' || argument === 'x-queue-version' || /but current is none/.test(brokerMessage);
  if (olderVersion) {
    return (
      `${head}: a queue of that name already exists as declared by an older version (a classic queue), and this version ` +
      `declares it as a quorum queue. Migrate it: stop the processes that consume it, then ` +
      `run \`npm run rabbitmq:migrate-queues\` (moves its messages into a quorum queue of the same name; ` +
      `nothing is lost), or delete the queue if it is empty. See docs/messaging.md, "Quorum queues". ` +
      `(broker: ${brokerMessage})`
    );
  }
  if (argument === 'x-delivery-limit') {
    return (
      `${head}: it exists with another x-delivery-limit than RABBITMQ_DELIVERY_LIMIT. Every process must use the ` +
      `same value; to change it for good, run \`npm run rabbitmq:migrate-queues\` with the new value. ` +
      `(broker: ${brokerMessage})`
    );
  }
  return (
    `${head}: it exists with different arguments${argument ? ` (${argument})` : ''}. Run ` +
    `\`npm run rabbitmq:migrate-queues\` to re-create it with this version's arguments. (broker: ${brokerMessage})`
  );
}

/** Declare a queue, turning a 406 into a QueueDeclarationError that says what to do. */
async function declareQueue(ch: Channel, queue: string, args: Record<string, unknown>): Promise<void> {
  try {
    await ch.assertQueue(queue, { durable: true, arguments: args });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (!/PRECONDITION[_-]FAILED/.test(message)) throw err;
    const argument = /inequivalent arg '([^']+)'/.exec(message)?.[1];
    throw new QueueDeclarationError(queue, argument, message);
  }
}

export interface ConsumerQueueSpec {
  /** Queue name, e.g. `quant.bars`. */
  queue: string;
  /** Exchange it reads from (declared by the caller or by `assertTopology`). */
  exchange: string;
  /** Binding keys on that exchange. */
  bindingKeys: string[];
}

/** The dead-letter exchange (direct, durable). Idempotent. */
export async function assertDeadLetterExchange(ch: Channel): Promise<void> {
  await ch.assertExchange(DEAD_LETTER_EXCHANGE, 'direct', { durable: true });
}

/**
 * One consumer queue with its dead-letter queue: `<queue>` (durable, DLX → dead.letter/<queue>) bound to the
 * source exchange, and `<queue>.dlq` (durable) bound to dead.letter with key `<queue>`. Idempotent.
 * Used by `assertTopology` and by tests that need private queues with the same shape.
 */
export async function assertConsumerQueue(
  ch: Channel,
  spec: ConsumerQueueSpec,
  opts: TopologyOptions = {},
): Promise<void> {
  await assertDeadLetterExchange(ch);
  const dlq = dlqName(spec.queue);
  await declareQueue(ch, dlq, { ...DEAD_LETTER_QUEUE_ARGUMENTS });
  await ch.bindQueue(dlq, DEAD_LETTER_EXCHANGE, spec.queue);
  await declareQueue(ch, spec.queue, consumerQueueArguments(spec.queue, opts));
  for (const key of spec.bindingKeys) await ch.bindQueue(spec.queue, spec.exchange, key);
}

/** The production consumer queues. */
export const CONSUMER_QUEUES: readonly ConsumerQueueSpec[] = [
  { queue: QUANT_BARS_QUEUE, exchange: MARKET_BARS_EXCHANGE, bindingKeys: [QUANT_BARS_BINDING] },
  { queue: STORE_BARS_QUEUE, exchange: MARKET_BARS_EXCHANGE, bindingKeys: [QUANT_BARS_BINDING] },
  { queue: INTAKE_SIGNALS_QUEUE, exchange: TRADE_SIGNALS_EXCHANGE, bindingKeys: [INTAKE_SIGNALS_BINDING] },
];

/**
 * Declare the whole topology. Safe to call from every process on every (re)connect: declarations with the
 * same arguments are no-ops, so producers and consumers can start in any order and a message published before
 * its consumer ever ran still has a durable queue to wait in.
 */
export async function assertTopology(ch: Channel, opts: TopologyOptions = {}): Promise<void> {
  await ch.assertExchange(MARKET_BARS_EXCHANGE, 'topic', { durable: true });
  await ch.assertExchange(TRADE_SIGNALS_EXCHANGE, 'topic', { durable: true });
  await assertDeadLetterExchange(ch);
  for (const spec of CONSUMER_QUEUES) await assertConsumerQueue(ch, spec, opts);
}
