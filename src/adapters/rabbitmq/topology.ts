import type { Channel } from 'amqplib';

/**
 * The RabbitMQ topology, declared in one place and idempotently by every process that touches it.
 *
 *   market.bars   (topic)  --bars.#-->    quant.bars      --(reject / dead-letter)--> dead.letter --quant.bars-->     quant.bars.dlq
 *                          --bars.#-->    store.bars      --(reject / dead-letter)--> dead.letter --store.bars-->     store.bars.dlq
 *   trade.signals (topic)  --signal.#-->  intake.signals  --(reject / dead-letter)--> dead.letter --intake.signals--> intake.signals.dlq
 *
 * Every consumer queue is durable and names `dead.letter` as its dead-letter exchange with its own name as the
 * routing key, so a message that is nacked without requeue is never dropped: it lands in `<queue>.dlq`.
 * RabbitMQ refuses (406 PRECONDITION_FAILED) a re-declaration with different arguments, so every declaration of a
 * consumer queue must go through `consumerQueueArguments()`; never declare these queues by hand.
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

/** Classic queues v2 (RabbitMQ ≥ 3.10): lower memory, better throughput; the default from 4.0 on. */
export const QUEUE_VERSION = 2;

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

/** The dead-letter queue of a consumer queue. */
export function dlqName(queue: string): string {
  return `${queue}.dlq`;
}

/** The exact arguments of a consumer queue. Same input, same output: re-declaring is a no-op. */
export function consumerQueueArguments(queue: string): Record<string, unknown> {
  return {
    'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE,
    'x-dead-letter-routing-key': queue,
    'x-queue-version': QUEUE_VERSION,
  };
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
export async function assertConsumerQueue(ch: Channel, spec: ConsumerQueueSpec): Promise<void> {
  await assertDeadLetterExchange(ch);
  const dlq = dlqName(spec.queue);
  await ch.assertQueue(dlq, { durable: true, arguments: { 'x-queue-version': QUEUE_VERSION } });
  await ch.bindQueue(dlq, DEAD_LETTER_EXCHANGE, spec.queue);
  await ch.assertQueue(spec.queue, { durable: true, arguments: consumerQueueArguments(spec.queue) });
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
export async function assertTopology(ch: Channel): Promise<void> {
  await ch.assertExchange(MARKET_BARS_EXCHANGE, 'topic', { durable: true });
  await ch.assertExchange(TRADE_SIGNALS_EXCHANGE, 'topic', { durable: true });
  await assertDeadLetterExchange(ch);
  for (const spec of CONSUMER_QUEUES) await assertConsumerQueue(ch, spec);
}
