import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DELIVERY_LIMIT,
  QueueDeclarationError,
  consumerQueueArguments,
  deliveryCount,
} from '../../src/adapters/rabbitmq';
import { parseEnv } from '../../src/config';

/** The pure parts of the quorum topology; the broker's behaviour is tested in rabbitmq-quorum.test.ts. */
describe('quorum consumer queues', () => {
  it('declares quorum queues with the delivery limit and at-least-once dead-lettering to dead.letter/<queue>', () => {
    expect(consumerQueueArguments('intake.signals')).toEqual({
      'x-queue-type': 'quorum',
      'x-delivery-limit': DEFAULT_DELIVERY_LIMIT,
      'x-dead-letter-exchange': 'dead.letter',
      'x-dead-letter-routing-key': 'intake.signals',
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    });
    expect(consumerQueueArguments('q', { deliveryLimit: 3 })['x-delivery-limit']).toBe(3);
  });

  it('RABBITMQ_DELIVERY_LIMIT: default 20, validated', () => {
    expect(parseEnv({}).rabbitmq.deliveryLimit).toBe(20);
    expect(DEFAULT_DELIVERY_LIMIT).toBe(20);
    expect(parseEnv({ RABBITMQ_DELIVERY_LIMIT: '5' }).rabbitmq.deliveryLimit).toBe(5);
    expect(() => parseEnv({ RABBITMQ_DELIVERY_LIMIT: '0' })).toThrow(/RABBITMQ_DELIVERY_LIMIT must be >= 1/);
    expect(() => parseEnv({ RABBITMQ_DELIVERY_LIMIT: 'x' })).toThrow(/RABBITMQ_DELIVERY_LIMIT/);
  });

  it('reads the attempt count from x-delivery-count (absent or 0 on a first delivery)', () => {
    const msg = (headers?: Record<string, unknown>) => ({ properties: { headers } }) as unknown as ConsumeMessage;
    expect(deliveryCount(msg())).toBe(0);
    expect(deliveryCount(msg({}))).toBe(0);
    expect(deliveryCount(msg({ 'x-delivery-count': 0 }))).toBe(0);
    expect(deliveryCount(msg({ 'x-delivery-count': 4 }))).toBe(4);
    expect(deliveryCount(msg({ 'x-delivery-count': 'junk' }))).toBe(0);
  });
});

describe('QueueDeclarationError says what to do', () => {
  const broker = (arg: string, tail: string) =>
    `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg '${arg}' for queue 'intake.signals' in vhost 'v': ${tail}"`;

  it.each([
    ['x-queue-type', "received the value 'quorum' of type 'longstr' but current is none"],
    ['x-queue-version', "received none but current is the value '2' of type 'byte'"],
    ['x-delivery-limit', "received '20' but current is none"],
  ])('an older (classic) queue, whichever argument the broker names first (%s)', (arg, tail) => {
    const e = new QueueDeclarationError('intake.signals', arg, broker(arg, tail));
    expect(e.message).toMatch(
      /^RabbitMQ refused to declare queue 'intake.signals': .*older version \(a classic queue\)/,
    );
    expect(e.message).toContain('npm run rabbitmq:migrate-queues');
    expect(e.message).toContain('docs/messaging.md');
  });

  it('another delivery limit names the variable', () => {
    const e = new QueueDeclarationError(
      'q',
      'x-delivery-limit',
      broker('x-delivery-limit', "received '3' but current is '2'"),
    );
    expect(e.message).toMatch(/another x-delivery-limit than RABBITMQ_DELIVERY_LIMIT/);
    expect(e.message).toContain('npm run rabbitmq:migrate-queues');
  });
});
