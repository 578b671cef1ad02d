import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Message } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONSUMER_QUEUES,
  ConfirmPublisher,
  DEAD_LETTER_EXCHANGE,
  INTAKE_SIGNALS_QUEUE,
  QueueDeclarationError,
  RabbitConnection,
  RabbitManagement,
  REJECTION_REASON_HEADER,
  TRADE_SIGNALS_EXCHANGE,
  assertConsumerQueue,
  assertTopology,
  consumeJson,
  consumerQueueArguments,
  dlqName,
  migrateQueues,
  withChannel,
} from '../../src/adapters/rabbitmq';
import { createLogger } from '../../src/logging';
import { createPrivateVhost, type PrivateVhost } from '../support/vhost';

/**
 * Quorum queues with a delivery limit (issue 8 §7), on the real broker in a private vhost: the topology, a poison
 * message that crashes its consumer *process* every time, a handler that keeps failing across consumer restarts,
 * the broker's own limit as the last safety net, and the migration from the classic queues older versions
 * declared. The delivery count lives in the broker (`x-delivery-count`), so none of this depends on a process
 * remembering anything.
 */
const ROOT = path.resolve(__dirname, '../..');
const log = createLogger('test-quorum', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const EX = 'test.quorum';
const LIMIT = 4;
const MAX_ATTEMPTS = 3;

let vh: PrivateVhost;
let rabbit: RabbitConnection;
let publisher: ConfirmPublisher;
let mgmt: RabbitManagement;

beforeAll(async () => {
  vh = await createPrivateVhost('sat-quorum');
  mgmt = new RabbitManagement({
    host: vh.config.rabbitmq.host,
    port: vh.config.rabbitmq.managementPort,
    user: vh.config.rabbitmq.user,
    pass: vh.config.env.RABBITMQ_PASS,
    vhost: vh.vhost,
  });
  rabbit = new RabbitConnection({ url: vh.url, name: 'test-quorum', logger: log });
  publisher = new ConfirmPublisher(rabbit, { logger: log });
  await rabbit.start();
  await withChannel(rabbit.connection!, (ch) =>
    ch.assertExchange(EX, 'topic', { durable: true }).then(() => undefined),
  );
});

afterAll(async () => {
  await publisher?.close();
  await rabbit?.close();
  await vh?.drop();
});

async function queue(name: string): Promise<string> {
  await withChannel(rabbit.connection!, (ch) =>
    assertConsumerQueue(ch, { queue: name, exchange: EX, bindingKeys: [name] }, { deliveryLimit: LIMIT }),
  );
  return name;
}

async function drain(q: string, n: number, timeoutMs = 30_000): Promise<Message[]> {
  const out: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  await withChannel(rabbit.connection!, async (ch) => {
    while (out.length < n && Date.now() < deadline) {
      const m = await ch.get(q, { noAck: true });
      if (m) out.push(m);
      else await new Promise((r) => setTimeout(r, 100));
    }
  });
  return out;
}

const depth = (q: string) => withChannel(rabbit.connection!, async (ch) => (await ch.checkQueue(q)).messageCount);

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('quorum queues with x-delivery-limit (real RabbitMQ, private vhost)', () => {
  it('assertTopology declares every consumer queue and DLQ as a quorum queue with the configured limit, idempotently', async () => {
    await withChannel(rabbit.connection!, (ch) => assertTopology(ch, { deliveryLimit: 7 }));
    await withChannel(rabbit.connection!, (ch) => assertTopology(ch, { deliveryLimit: 7 }));
    for (const { queue: q } of CONSUMER_QUEUES) {
      const info = (await mgmt.queue(q)) as { type?: string; durable: boolean; arguments: Record<string, unknown> };
      expect(info).toMatchObject({ type: 'quorum', durable: true });
      expect(info.arguments).toEqual(consumerQueueArguments(q, { deliveryLimit: 7 }));
      expect(info.arguments).toMatchObject({
        'x-delivery-limit': 7,
        'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE,
        'x-dead-letter-routing-key': q,
        'x-dead-letter-strategy': 'at-least-once',
      });
      expect(await mgmt.queue(dlqName(q))).toMatchObject({ type: 'quorum', durable: true });
    }
    // Another limit on the same queues is refused with an error that names the variable.
    const err = await withChannel(rabbit.connection!, (ch) => assertTopology(ch, { deliveryLimit: 8 })).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QueueDeclarationError);
    expect((err as Error).message).toMatch(/another x-delivery-limit than RABBITMQ_DELIVERY_LIMIT/);
    expect(rabbit.state).toBe('connected');
  });

  it('a message that crashes its consumer process is dead-lettered with a reason after maxAttempts deliveries, across restarts', async () => {
    const q = await queue('poison.process');
    await publisher.publishJson(EX, q, { n: 1 }, { messageId: 'good-1', correlationId: 'c' });
    await publisher.publishJson(EX, q, { crash: true }, { messageId: 'poison', correlationId: 'c' });
    await publisher.publishJson(EX, q, { n: 2 }, { messageId: 'good-2', correlationId: 'c' });

    let crashes = 0;
    let output = '';
    // Restart the consumer process whenever it dies, as a supervisor would, until the poison is dead-lettered.
    for (let run = 0; run < 10; run++) {
      const child = spawn(
        process.execPath,
        ['--require', 'tsx/preflight', '--import', 'tsx', 'test/fixtures/processes/poison-consumer.ts'],
        {
          cwd: ROOT,
          env: { ...process.env, POISON_AMQP_URL: vh.url, POISON_QUEUE: q, POISON_MAX_ATTEMPTS: String(MAX_ATTEMPTS) },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const outcome = await Promise.race([
        exited,
        waitFor('the poison message in the DLQ', async () => (await depth(dlqName(q))) > 0, 60_000).then(
          () => 'dead-lettered' as const,
        ),
      ]);
      if (outcome === 'dead-lettered') {
        await waitFor('both good messages', () => /handled good-2/.test(output) && /handled good-1/.test(output));
        child.kill('SIGTERM');
        expect(await exited).toBe(0); // this consumer survived: it never ran the poison
        break;
      }
      expect(outcome, output).toBe(70);
      crashes++;
    }
    expect(crashes).toBe(MAX_ATTEMPTS);
    expect(output.match(/crashing on poison/g)).toHaveLength(MAX_ATTEMPTS);
    const [dead] = await drain(dlqName(q), 1);
    expect(dead!.properties.messageId).toBe('poison');
    expect(JSON.parse(dead!.content.toString())).toEqual({ crash: true });
    expect(dead!.properties.headers![REJECTION_REASON_HEADER]).toBe(
      `delivered ${MAX_ATTEMPTS + 1} times without being settled: each consumer holding it crashed or lost its connection (poison message?)`,
    );
    expect(await depth(q)).toBe(0);
  });

  it('a handler that keeps failing is dead-lettered after maxAttempts in total, although every attempt ran in a new consumer', async () => {
    const q = await queue('poison.handler');
    let calls = 0;
    const attemptsSeen: number[] = [];
    await publisher.publishJson(EX, q, { n: 1 }, { messageId: 'always-fails', correlationId: 'c' });
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const consumer = consumeJson(
        rabbit,
        q,
        // A backoff (capped at 10 s) far longer than the 100 ms poll: the requeue happens only when cancel() wakes the retry, after the
        // basic.cancel, so each attempt is delivered to the next consumer (with 10 ms the failing consumer could
        // take its own redelivery before the test cancelled it, and run attempts 2 and 3 itself).
        { prefetch: 1, publisher, logger: log, maxAttempts: MAX_ATTEMPTS, retryDelayMs: 600_000 },
        (ctx) => {
          calls++;
          attemptsSeen.push(ctx.attempt);
          throw new Error('downstream unavailable');
        },
      );
      await consumer.ready();
      await waitFor(`attempt ${i + 1}`, () => calls === i + 1);
      await consumer.cancel(); // a fresh consumer (no memory of attempts) takes the next delivery
    }
    const [dead] = await drain(dlqName(q), 1);
    expect(attemptsSeen).toEqual([1, 2, 3]);
    expect(dead!.properties.headers![REJECTION_REASON_HEADER]).toBe(
      `failed after ${MAX_ATTEMPTS} attempts: downstream unavailable`,
    );
    expect(await depth(q)).toBe(0);
  });

  it("the broker's own x-delivery-limit dead-letters a message no consumer settles (reason delivery_limit)", async () => {
    const q = await queue('poison.raw');
    await publisher.publishJson(EX, q, { n: 1 }, { messageId: 'never-settled', correlationId: 'c' });
    let deliveries = 0;
    // A consumer that dies holding the message, every time, without our consumer's bookkeeping.
    for (let i = 0; i < LIMIT + 3; i++) {
      const got = await withChannel(rabbit.connection!, (ch) => ch.get(q, { noAck: false }));
      if (got) deliveries++;
    }
    const [dead] = await drain(dlqName(q), 1);
    expect(deliveries).toBe(LIMIT + 1);
    expect(dead!.properties.messageId).toBe('never-settled');
    expect(dead!.properties.headers).toMatchObject({
      'x-first-death-reason': 'delivery_limit',
      'x-first-death-queue': q,
    });
  });

  it('a classic queue left by an older version: start() fails fast naming the fix; the migration keeps every message', async () => {
    const old = await createPrivateVhost('sat-migrate');
    const conn = new RabbitConnection({ url: old.url, name: 'test-migrate', logger: log });
    try {
      await conn.start();
      // The previous version's declarations: classic v2 queues with the dead-letter arguments.
      await withChannel(conn.connection!, async (ch) => {
        await ch.assertExchange(TRADE_SIGNALS_EXCHANGE, 'topic', { durable: true });
        await ch.assertExchange(DEAD_LETTER_EXCHANGE, 'direct', { durable: true });
        const dlq = dlqName(INTAKE_SIGNALS_QUEUE);
        await ch.assertQueue(dlq, { durable: true, arguments: { 'x-queue-version': 2 } });
        await ch.bindQueue(dlq, DEAD_LETTER_EXCHANGE, INTAKE_SIGNALS_QUEUE);
        await ch.assertQueue(INTAKE_SIGNALS_QUEUE, {
          durable: true,
          arguments: {
            'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE,
            'x-dead-letter-routing-key': INTAKE_SIGNALS_QUEUE,
            'x-queue-version': 2,
          },
        });
        await ch.bindQueue(INTAKE_SIGNALS_QUEUE, TRADE_SIGNALS_EXCHANGE, 'signal.#');
      });
      const ids = Array.from({ length: 25 }, (_, i) => `waiting-${i}`);
      await withChannel(conn.connection!, async (ch) => {
        for (const id of ids) {
          ch.publish(TRADE_SIGNALS_EXCHANGE, 'signal.test.NVDA', Buffer.from(JSON.stringify({ id })), {
            messageId: id,
            persistent: true,
            headers: { 'x-kept': id },
          });
        }
        await new Promise((r) => setTimeout(r, 200));
      });
      await waitFor('the old queue to hold the messages', async () => {
        const d = await withChannel(
          conn.connection!,
          async (ch) => (await ch.checkQueue(INTAKE_SIGNALS_QUEUE)).messageCount,
        );
        return d === ids.length;
      });

      // This version refuses to start on it, at once, and says what to do.
      const starting = new RabbitConnection({
        url: old.url,
        name: 'test-migrate-new',
        logger: log,
        setup: (c) => withChannel(c, (ch) => assertTopology(ch)),
      });
      const err = await starting.start().catch((e: unknown) => e);
      await starting.close();
      expect(err).toBeInstanceOf(QueueDeclarationError);
      expect((err as Error).message).toMatch(/older version \(a classic queue\).*`npm run rabbitmq:migrate-queues`/s);

      const results = await migrateQueues(conn.connection!, {});
      expect(results).toEqual(
        expect.arrayContaining([
          { queue: INTAKE_SIGNALS_QUEUE, action: 'migrated', reason: expect.any(String), moved: ids.length },
          { queue: dlqName(INTAKE_SIGNALS_QUEUE), action: 'migrated', reason: expect.any(String), moved: 0 },
        ]),
      );
      const oldMgmt = new RabbitManagement({
        host: old.config.rabbitmq.host,
        port: old.config.rabbitmq.managementPort,
        user: old.config.rabbitmq.user,
        pass: old.config.env.RABBITMQ_PASS,
        vhost: old.vhost,
      });
      expect(await oldMgmt.queue(INTAKE_SIGNALS_QUEUE)).toMatchObject({ type: 'quorum' });
      expect(await oldMgmt.queue(`${INTAKE_SIGNALS_QUEUE}.migrating`)).toBeUndefined();
      // Now this version starts, and every waiting message is still there, with its properties.
      const after = new RabbitConnection({
        url: old.url,
        name: 'test-migrate-after',
        logger: log,
        setup: (c) => withChannel(c, (ch) => assertTopology(ch)),
      });
      await after.start();
      await after.close();
      const moved = await withChannel(conn.connection!, async (ch) => {
        const out: Message[] = [];
        for (;;) {
          const m = await ch.get(INTAKE_SIGNALS_QUEUE, { noAck: true });
          if (!m) return out;
          out.push(m);
        }
      });
      expect(moved.map((m) => m.properties.messageId as string).sort()).toEqual([...ids].sort());
      for (const m of moved) expect(m.properties.headers!['x-kept']).toBe(m.properties.messageId);
      // A second run finds nothing to do.
      expect((await migrateQueues(conn.connection!, {})).every((r) => r.action === 'unchanged')).toBe(true);
    } finally {
      await conn.close();
      await old.drop();
    }
  });
});
