import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config';

// RABBITMQ_NODES: every node of a RabbitMQ cluster (the cluster profile, docs/scaling.md), one URL each for
// RabbitConnection to fail over between.
describe('config: RABBITMQ_NODES', () => {
  it('unset: one node, RABBITMQ_HOST:RABBITMQ_PORT', () => {
    const c = parseEnv({ RABBITMQ_HOST: 'mq', RABBITMQ_PORT: '5673' });
    expect(c.rabbitmq.urls).toEqual(['amqp://stockautotrader:stockautotrader-local@mq:5673/stockautotrader']);
    expect(c.rabbitmq.url).toBe(c.rabbitmq.urls[0]);
  });

  it('a list: one URL per node with the same credentials and vhost; the first is `url`', () => {
    const c = parseEnv({
      RABBITMQ_NODES: ' 127.0.0.1:5701, 127.0.0.1:5702 ,127.0.0.1:5703,',
      RABBITMQ_USER: 'u',
      RABBITMQ_PASS: 'p@ss',
      RABBITMQ_VHOST: 'v/1',
    });
    expect(c.rabbitmq.urls).toEqual([
      'amqp://u:p%40ss@127.0.0.1:5701/v%2F1',
      'amqp://u:p%40ss@127.0.0.1:5702/v%2F1',
      'amqp://u:p%40ss@127.0.0.1:5703/v%2F1',
    ]);
    expect(c.rabbitmq.url).toBe(c.rabbitmq.urls[0]);
  });

  it.each(['127.0.0.1', 'host:port', 'a:1,b'])('rejects RABBITMQ_NODES=%s naming the variable', (value) => {
    expect(() => parseEnv({ RABBITMQ_NODES: value })).toThrow(/^Invalid configuration: RABBITMQ_NODES must be/);
  });
});
