import type { Message } from 'amqplib';
import type { ConfirmPublisher } from './publisher';
import {
  DEAD_LETTER_EXCHANGE,
  ORIGINAL_EXCHANGE_HEADER,
  ORIGINAL_QUEUE_HEADER,
  ORIGINAL_ROUTING_KEY_HEADER,
  REJECTION_REASON_HEADER,
} from './topology';

/** Reasons are for humans and dashboards; keep the header small. */
export const MAX_REASON_LENGTH = 1000;

/**
 * Dead-letter a message *with its reason*: republish the original bytes and properties to `dead.letter` with
 * routing key `sourceQueue` (→ `<sourceQueue>.dlq`), adding
 *   x-rejection-reason, x-original-queue, x-original-routing-key, x-original-exchange, x-rejected-at
 * on top of the original headers. Resolves only after the broker confirms (mandatory: a missing DLQ binding is
 * an error, not a silent drop). The caller acks the original *after* this resolves; if it rejects, the caller
 * must not ack (nack without requeue still routes it to the same DLQ via the queue's x-dead-letter-exchange,
 * just without the reason header). Either way the message is never lost.
 *
 * Why republish rather than `nack(requeue=false)`? A broker-side dead-lettering can only record `x-death`
 * (reason "rejected"); it cannot carry *why* the consumer refused the message.
 */
export async function deadLetter(
  publisher: ConfirmPublisher,
  sourceQueue: string,
  msg: Message,
  reason: string,
): Promise<void> {
  const p = msg.properties;
  const original = (p.headers ?? {}) as Record<string, unknown>;
  const headers: Record<string, unknown> = {
    ...original,
    [REJECTION_REASON_HEADER]: truncate(reason, MAX_REASON_LENGTH),
    [ORIGINAL_QUEUE_HEADER]: sourceQueue,
    [ORIGINAL_ROUTING_KEY_HEADER]: msg.fields.routingKey,
    [ORIGINAL_EXCHANGE_HEADER]: msg.fields.exchange,
    'x-original-redelivered': msg.fields.redelivered,
    'x-rejected-at': new Date().toISOString(),
  };
  await publisher.publish(DEAD_LETTER_EXCHANGE, sourceQueue, msg.content, {
    messageId: p.messageId as string | undefined,
    correlationId: p.correlationId as string | undefined,
    contentType: p.contentType as string | undefined,
    contentEncoding: p.contentEncoding as string | undefined,
    timestamp: typeof p.timestamp === 'number' ? p.timestamp : undefined,
    headers,
    mandatory: true,
  });
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
