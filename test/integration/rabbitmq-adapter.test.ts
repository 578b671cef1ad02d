import { randomBytes } from 'node:crypto';
import type { ConsumeMessage, Message } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config';
import { createLogger } from '../../src/logging';
import {
  CONSUMER_QUEUES,
  ConfirmPublisher,
  DEAD_LETTER_EXCHANGE,
  INTAKE_SIGNALS_QUEUE,
  PublishError,
  QUANT_BARS_QUEUE,
  STORE_BARS_QUEUE,
  RabbitConnection,
  RabbitManagement,
  REJECTION_REASON_HEADER,
  assertConsumerQueue,
  assertTopology,
  consumeJson,
  consumerQueueArguments,
  deadLetter,
  dlqName,
  withChannel,
} from '../../src/adapters/rabbitmq';
import { sleep } from '../../src/lib/sleep';
import { createPrivateVhost, type PrivateVhost } from '../support/vhost';

/**
 * The adapter against the real broker (scripts/test.sh exports RABBITMQ_*; defaults are the local stack).
 * Every test uses its own exchange and queues (random suffix) so nothing here touches market.bars/quant.bars
 * traffic of other tests, and everything is deleted afterwards.
 */
const cfg = parseEnv(process.env);
const log = createLogger('test-rabbitmq', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const mgmtOptions = {
  host: cfg.rabbitmq.host,
  port: cfg.rabbitmq.managementPort,
  user: cfg.rabbitmq.user,
  pass: cfg.env.RABBITMQ_PASS,
  vhost: cfg.rabbitmq.vhost,
};
const suffix = randomBytes(4).toString('hex');
const EX = `test.adapter.${suffix}`;

let rabbit: RabbitConnection;
let publisher: ConfirmPublisher;
const createdQueues: string[] = [];

async function privateQueue(name: string, bindingKeys: string[]): Promise<string> {
  const queue = `test.${name}.${suffix}`;
  await withChannel(rabbit.connection!, (ch) => assertConsumerQueue(ch, { queue, exchange: EX, bindingKeys }));
  createdQueues.push(queue, dlqName(queue));
  return queue;
}

async function drain(queue: string, expected: number, timeoutMs = 10_000): Promise<Message[]> {
  const out: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  await withChannel(rabbit.connection!, async (ch) => {
    while (out.length < expected && Date.now() < deadline) {
      const m = await ch.get(queue, { noAck: true });
      if (m) out.push(m);
      else await new Promise((r) => setTimeout(r, 50));
    }
  });
  return out;
}

/** Ready messages, straight from the broker (the management API's counters lag by seconds). */
async function depth(queue: string): Promise<number> {
  return withChannel(rabbit.connection!, async (ch) => (await ch.checkQueue(queue)).messageCount);
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  rabbit = new RabbitConnection({
    url: cfg.rabbitmq.url,
    name: `test-adapter-${suffix}`,
    logger: log,
    maxInitialAttempts: 20,
  });
  publisher = new ConfirmPublisher(rabbit, { logger: log, confirmTimeoutMs: 10_000 });
  await rabbit.start();
  await withChannel(rabbit.connection!, (ch) =>
    ch.assertExchange(EX, 'topic', { durable: false, autoDelete: false }).then(() => undefined),
  );
});

afterAll(async () => {
  if (rabbit?.connection) {
    await withChannel(rabbit.connection, async (ch) => {
      for (const q of createdQueues) await ch.deleteQueue(q);
      await ch.deleteExchange(EX);
    });
  }
  await publisher?.close();
  await rabbit?.close();
});

describe('topology', () => {
  // The production queue names in a vhost of this file's own: the shared vhost may hold classic queues of the
  // same names declared by older code (which this version refuses; see rabbitmq-quorum.test.ts).
  let vh: PrivateVhost;
  let vhRabbit: RabbitConnection;
  let vhMgmt: RabbitManagement;
  beforeAll(async () => {
    vh = await createPrivateVhost('sat-adapter');
    vhRabbit = new RabbitConnection({ url: vh.url, name: `test-adapter-topology-${suffix}`, logger: log });
    await vhRabbit.start();
    vhMgmt = new RabbitManagement({ ...mgmtOptions, vhost: vh.vhost });
  });
  afterAll(async () => {
    await vhRabbit?.close();
    await vh?.drop();
  });

  it('assertTopology is idempotent and declares durable queues with dead-letter arguments', async () => {
    await withChannel(vhRabbit.connection!, assertTopology);
    await withChannel(vhRabbit.connection!, assertTopology); // again: no 406, no change
    for (const { queue } of CONSUMER_QUEUES) {
      const q = await vhMgmt.queue(queue);
      expect(q?.durable).toBe(true);
      expect(q?.arguments).toMatchObject(consumerQueueArguments(queue));
      expect(q?.arguments).toMatchObject({
        'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE,
        'x-dead-letter-routing-key': queue,
      });
      expect((await vhMgmt.queue(dlqName(queue)))?.durable).toBe(true);
    }
    expect([QUANT_BARS_QUEUE, STORE_BARS_QUEUE, INTAKE_SIGNALS_QUEUE]).toEqual(CONSUMER_QUEUES.map((c) => c.queue));
  });

  it('a declaration with different arguments is refused (406), which is why all go through consumerQueueArguments', async () => {
    await expect(
      withChannel(vhRabbit.connection!, (ch) => ch.assertQueue(QUANT_BARS_QUEUE, { durable: true })),
    ).rejects.toThrow(/PRECONDITION_FAILED/);
    // The shared connection is unaffected by the channel error.
    expect(vhRabbit.state).toBe('connected');
  });
});

describe('ConfirmPublisher + consumeJson', () => {
  it('publishes persistent JSON with ids and timestamp; every confirmed message is consumed exactly as sent', async () => {
    const q = await privateQueue('roundtrip', ['rt.#']);
    const N = 300;
    const got = new Map<string, ConsumeMessage>();
    const consumer = consumeJson(rabbit, q, { prefetch: 50, publisher, logger: log }, (ctx) => {
      got.set(ctx.msg.properties.messageId as string, ctx.msg);
    });
    await consumer.ready();
    // Pipelined: all publishes in flight at once; each promise resolves on its own confirm.
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        publisher.publishJson(
          EX,
          `rt.${i % 3}`,
          { i },
          { messageId: `m-${i}`, correlationId: `c-${i}`, headers: { 'x-test': i } },
        ),
      ),
    );
    await waitFor(() => got.size === N);
    const m = got.get('m-7')!;
    expect(JSON.parse(m.content.toString())).toEqual({ i: 7 });
    expect(m.properties).toMatchObject({
      deliveryMode: 2,
      contentType: 'application/json',
      messageId: 'm-7',
      correlationId: 'c-7',
      headers: { 'x-test': 7 },
    });
    expect(Math.abs((m.properties.timestamp as number) - Date.now() / 1000)).toBeLessThan(60);
    await consumer.cancel();
    expect(await depth(q)).toBe(0); // all acked
  });

  it('rejects an unroutable publish (mandatory) instead of reporting success', async () => {
    const err = await publisher
      .publishJson(EX, 'nobody.listens', { x: 1 }, { messageId: 'u-1', correlationId: 'c' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect((err as PublishError).reason).toBe('unroutable');
  });

  it('rejects a publish to a missing exchange, then recovers its channel for the next publish', async () => {
    const q = await privateQueue('recover', ['rc.#']);
    const err = await publisher
      .publishJson(`missing.${suffix}`, 'x', {}, { messageId: 'x', correlationId: 'c' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect((err as PublishError).reason).toBe('channel-closed');
    await publisher.publishJson(EX, 'rc.1', { ok: true }, { messageId: 'after', correlationId: 'c' });
    const [m] = await drain(q, 1);
    expect(m?.properties.messageId).toBe('after');
  });
  it('a consumer started before its queue exists subscribes once it is declared, exactly once', async () => {
    const queue = `test.late.${suffix}`;
    const got: string[] = [];
    const consumer = consumeJson(rabbit, queue, { prefetch: 5, publisher, logger: log }, (ctx) => {
      got.push(ctx.msg.properties.messageId as string);
    });
    await sleep(700); // a few 404s and retries on the consumer's own channel; the shared connection is unaffected
    expect(consumer.active).toBe(false);
    expect(rabbit.state).toBe('connected');
    await privateQueue('late', ['late.#']);
    await consumer.ready(20_000);
    await publisher.publishJson(EX, 'late.1', {}, { messageId: 'late-1', correlationId: 'c' });
    await waitFor(() => got.length === 1);
    const consumers = () => withChannel(rabbit.connection!, async (ch) => (await ch.checkQueue(queue)).consumerCount);
    expect(await consumers()).toBe(1);
    await consumer.cancel();
    expect(await consumers()).toBe(0);
  });
});

describe('ConfirmPublisher.publishBatch (the market-data path)', () => {
  const msg = (i: number, key = `pb.${i % 3}`) => ({
    routingKey: key,
    content: Buffer.from(JSON.stringify({ i })),
    messageId: `pb-${i}`,
    correlationId: `c-${i}`,
  });

  it('publishes every item in order, persistent and confirmed, reporting the confirmed prefix as it grows', async () => {
    const q = await privateQueue('batch', ['pb.#']);
    const N = 2_000;
    const got: ConsumeMessage[] = [];
    const consumer = consumeJson(rabbit, q, { prefetch: 100, publisher, logger: log }, (ctx) => {
      got.push(ctx.msg);
    });
    await consumer.ready();
    const reported: number[] = [];
    const items = Array.from({ length: N }, (_, i) => i);
    const outcome = await publisher.publishBatch(EX, items, (i) => msg(i), {
      window: 64,
      onConfirmed: (n) => reported.push(n),
    });
    expect(outcome).toEqual({ confirmed: N });
    // The prefix only grows, ends at N, and more than one confirm was needed (a real window, not lock-step).
    expect(reported.at(-1)).toBe(N);
    expect(reported.every((n, k) => k === 0 || n > reported[k - 1]!)).toBe(true);
    expect(reported.length).toBeGreaterThan(1);
    await waitFor(() => got.length === N);
    // One channel, one queue: the broker keeps publish order.
    expect(got.map((m) => m.properties.messageId)).toEqual(items.map((i) => `pb-${i}`));
    expect(got[7]!.properties).toMatchObject({
      deliveryMode: 2,
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      messageId: 'pb-7',
      correlationId: 'c-7',
    });
    expect(Math.abs((got[7]!.properties.timestamp as number) - Date.now() / 1000)).toBeLessThan(60);
    await consumer.cancel();
    expect(await depth(q)).toBe(0); // every delivery acked (batched acks included)
  });

  it('a window written in one turn leaves in a few socket writes (corked for the writer), in order and confirmed', async () => {
    const q = await privateQueue('corked', ['pbc.#']);
    const N = 500;
    // The connection's socket (amqplib's Connection.stream): count the writes that reach it as system calls.
    const socket = (rabbit.connection as unknown as { connection: { stream: import('node:net').Socket } }).connection
      .stream as import('node:net').Socket & {
      _write: (...a: unknown[]) => unknown;
      _writev: (...a: unknown[]) => unknown;
    };
    let writes = 0;
    let chunks = 0;
    const { _write, _writev } = socket;
    socket._write = function (this: unknown, ...a: unknown[]) {
      writes++;
      chunks++;
      return _write.apply(this, a);
    };
    socket._writev = function (this: unknown, ...a: unknown[]) {
      writes++;
      chunks += (a[0] as unknown[]).length;
      return _writev.apply(this, a);
    };
    try {
      const items = Array.from({ length: N }, (_, i) => i);
      const outcome = await publisher.publishBatch(EX, items, (i) => msg(i, `pbc.${i % 3}`), { window: N });
      expect(outcome).toEqual({ confirmed: N });
    } finally {
      socket._write = _write;
      socket._writev = _writev;
    }
    // Every message was written (one chunk each, at least) but in a handful of writes: uncorked, amqplib's
    // writer makes one write(2) per message (bench:ingest counts them: 1.07 a message before, 0.09 after).
    expect(chunks).toBeGreaterThanOrEqual(N);
    expect(writes).toBeLessThan(N / 10);
    expect(await depth(q)).toBe(N);
  });

  it('stops at an unroutable message (mandatory): the outcome names the confirmed prefix before it', async () => {
    const q = await privateQueue('batch-unroutable', ['pbu.#']);
    const items = Array.from({ length: 20 }, (_, i) => i);
    const outcome = await publisher.publishBatch(EX, items, (i) => msg(i, i === 7 ? 'nobody.listens' : `pbu.${i}`));
    expect(outcome.confirmed).toBe(7);
    expect(outcome.error).toBeInstanceOf(PublishError);
    expect(outcome.error!.reason).toBe('unroutable');
    // The ones before it are in the queue; resuming from `confirmed` (as replayBars does) would re-send the rest.
    const before = await drain(q, 7);
    expect(before.map((m) => m.properties.messageId)).toEqual(items.slice(0, 7).map((i) => `pb-${i}`));
    await withChannel(rabbit.connection!, (ch) => ch.purgeQueue(q).then(() => undefined));
  });

  it('reports a channel closed by the broker (missing exchange) and works again on the re-opened channel', async () => {
    const q = await privateQueue('batch-recover', ['pbr.#']);
    const bad = await publisher.publishBatch(`missing.${suffix}`, [1, 2, 3], (i) => msg(i, 'x'));
    expect(bad.confirmed).toBe(0);
    expect(bad.error?.reason).toBe('channel-closed');
    const good = await publisher.publishBatch(EX, [1, 2, 3], (i) => msg(i, 'pbr.1'));
    expect(good).toEqual({ confirmed: 3 });
    expect((await drain(q, 3)).map((m) => m.properties.messageId)).toEqual(['pb-1', 'pb-2', 'pb-3']);
  });

  it('an empty batch is done at once; after close() a batch ends with reason closed', async () => {
    expect(await publisher.publishBatch(EX, [], () => msg(0))).toEqual({ confirmed: 0 });
    const own = new ConfirmPublisher(rabbit, { logger: log });
    await own.close();
    const outcome = await own.publishBatch(EX, [1], (i) => msg(i));
    expect(outcome.confirmed).toBe(0);
    expect(outcome.error?.reason).toBe('closed');
  });
});

describe('consumeJson batched acks', () => {
  it('one multiple ack never covers a delivery whose handler is still running: it alone is redelivered', async () => {
    const q = await privateQueue('acks', ['ack.#']);
    for (let i = 0; i < 10; i++)
      await publisher.publishJson(EX, 'ack.1', { i }, { messageId: `a-${i}`, correlationId: 'c' });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const done: string[] = [];
    // The first delivery's handler waits; the nine after it finish at once and are acked (batched, multiple).
    const first = consumeJson(rabbit, q, { prefetch: 20, publisher, logger: log }, async (ctx) => {
      const id = ctx.msg.properties.messageId as string;
      if (id === 'a-0') await held;
      done.push(id);
    });
    await waitFor(() => done.length === 9);
    await sleep(200); // several turns of the event loop: every ack that is due has been written
    // Stop without waiting for the held handler: its message was never acked, so the broker requeues it.
    await first.cancel(100);
    release();
    const again: Array<{ id: string; redelivered: boolean }> = [];
    const second = consumeJson(rabbit, q, { prefetch: 20, publisher, logger: log }, (ctx) => {
      again.push({ id: ctx.msg.properties.messageId as string, redelivered: ctx.redelivered });
    });
    await waitFor(() => again.length === 1);
    await sleep(300);
    await second.cancel();
    expect(again).toEqual([{ id: 'a-0', redelivered: true }]);
    expect(await depth(q)).toBe(0);
  });

  it('ackBatch 1 acks each message at once; every message is consumed and acked either way', async () => {
    const q = await privateQueue('acks-single', ['acks.#']);
    let n = 0;
    const consumer = consumeJson(rabbit, q, { prefetch: 10, ackBatch: 1, publisher, logger: log }, () => {
      n++;
    });
    await consumer.ready();
    await publisher.publishBatch(
      EX,
      Array.from({ length: 50 }, (_, i) => i),
      (i) => ({
        routingKey: 'acks.1',
        content: Buffer.from('{}'),
        messageId: `s-${i}`,
        correlationId: 'c',
      }),
    );
    await waitFor(() => consumer.stats.acked === 50);
    expect(n).toBe(50);
    await consumer.cancel();
    expect(await depth(q)).toBe(0);
  });
});

describe('dead-lettering', () => {
  it('deadLetter() puts the original body in <queue>.dlq with the reason and origin headers', async () => {
    const q = await privateQueue('dl', ['dl.#']);
    await publisher.publishJson(
      EX,
      'dl.x',
      { bad: true },
      { messageId: 'dl-1', correlationId: 'corr-dl-1', headers: { 'x-custom': 'kept' } },
    );
    const [orig] = await drain(q, 1);
    expect(orig).toBeDefined();
    await deadLetter(publisher, q, orig!, 'symbol: must be an upper-case ticker');
    const [d] = await drain(dlqName(q), 1);
    expect(d!.content.toString()).toBe(orig!.content.toString());
    expect(d!.properties).toMatchObject({
      messageId: 'dl-1',
      correlationId: 'corr-dl-1',
      deliveryMode: 2,
      contentType: 'application/json',
    });
    expect(d!.properties.headers).toMatchObject({
      [REJECTION_REASON_HEADER]: 'symbol: must be an upper-case ticker',
      'x-original-queue': q,
      'x-original-routing-key': 'dl.x',
      'x-original-exchange': EX,
      'x-custom': 'kept',
    });
  });

  it('consumeJson: invalid JSON and explicit ctx.deadLetter go to the DLQ with reasons; good messages are handled', async () => {
    const q = await privateQueue('poison', ['p.#']);
    const handled: unknown[] = [];
    const consumer = consumeJson(rabbit, q, { prefetch: 10, publisher, logger: log }, async (ctx) => {
      const body = ctx.body as { ok?: boolean };
      if (!body.ok) return ctx.deadLetter('ok must be true');
      handled.push(body);
    });
    await consumer.ready();
    await publisher.publish(EX, 'p.1', Buffer.from('{not json'), {
      messageId: 'bad-json',
      correlationId: 'c1',
      contentType: 'application/json',
    });
    await publisher.publishJson(EX, 'p.2', { ok: false }, { messageId: 'not-ok', correlationId: 'c2' });
    await publisher.publishJson(EX, 'p.3', { ok: true }, { messageId: 'fine', correlationId: 'c3' });
    const dead = await drain(dlqName(q), 2);
    await waitFor(() => handled.length === 1);
    await consumer.cancel();
    const byId = new Map(dead.map((m) => [m.properties.messageId as string, m]));
    expect(byId.get('bad-json')!.properties.headers![REJECTION_REASON_HEADER]).toMatch(/^invalid JSON/);
    expect(byId.get('bad-json')!.content.toString()).toBe('{not json');
    expect(byId.get('not-ok')!.properties.headers![REJECTION_REASON_HEADER]).toBe('ok must be true');
    expect(await depth(q)).toBe(0);
  });

  it('a handler that keeps failing is retried maxAttempts times, then dead-lettered with the last error (never requeued forever)', async () => {
    const q = await privateQueue('retry', ['r.#']);
    let calls = 0;
    const consumer = consumeJson(
      rabbit,
      q,
      { prefetch: 5, publisher, logger: log, maxAttempts: 3, retryDelayMs: 20 },
      () => {
        calls++;
        throw new Error('downstream unavailable');
      },
    );
    await consumer.ready();
    await publisher.publishJson(EX, 'r.1', { n: 1 }, { messageId: 'always-fails', correlationId: 'c' });
    const [d] = await drain(dlqName(q), 1);
    await consumer.cancel();
    expect(calls).toBe(3);
    expect(d!.properties.headers![REJECTION_REASON_HEADER]).toBe('failed after 3 attempts: downstream unavailable');
  });
});
