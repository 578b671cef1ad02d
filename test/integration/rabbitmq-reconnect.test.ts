import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config';
import { createLogger } from '../../src/logging';
import {
  ConfirmPublisher,
  PublishError,
  RabbitConnection,
  RabbitManagement,
  assertConsumerQueue,
  consumeJson,
  dlqName,
  withChannel,
  type ChannelModel,
  type RabbitState,
} from '../../src/adapters/rabbitmq';
import { sleep } from '../../src/lib/sleep';

/**
 * Recovery on the real broker: the connections are force-closed through the management API (what an operator or
 * a broker restart does: 320 CONNECTION_FORCED), twice, while messages are being published and consumed. The
 * RabbitConnections must reconnect on their own, re-run their setups (re-declare, re-subscribe, new confirm
 * channel), and every message must arrive: publishes that were in flight at the cut reject (never a false
 * success) and are retried; deliveries that were un-acked at the cut are redelivered.
 */
const cfg = parseEnv(process.env);
const log = createLogger('test-rabbitmq-reconnect', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const mgmt = new RabbitManagement({
  host: cfg.rabbitmq.host,
  port: cfg.rabbitmq.managementPort,
  user: cfg.rabbitmq.user,
  pass: cfg.env.RABBITMQ_PASS,
  vhost: cfg.rabbitmq.vhost,
});
const suffix = randomBytes(4).toString('hex');
const EX = `test.reconnect.${suffix}`;
const QUEUE = `test.reconnect.${suffix}`;
const NAME = `test-reconnect-${suffix}`;
const toClose: Array<{ close(): Promise<void> }> = [];

function declare(conn: ChannelModel): Promise<void> {
  return withChannel(conn, async (ch) => {
    await ch.assertExchange(EX, 'topic', { durable: true });
    await assertConsumerQueue(ch, { queue: QUEUE, exchange: EX, bindingKeys: ['#'] });
  });
}

function track(rabbit: RabbitConnection): RabbitState[] {
  const states: RabbitState[] = [];
  rabbit.on('state', (s: RabbitState) => states.push(s));
  return states;
}

afterAll(async () => {
  for (const c of toClose.reverse()) await c.close().catch(() => undefined);
  const admin = new RabbitConnection({
    url: cfg.rabbitmq.url,
    name: `${NAME}-cleanup`,
    logger: log,
    maxInitialAttempts: 5,
  });
  await admin.start();
  await withChannel(admin.connection!, async (ch) => {
    await ch.deleteQueue(QUEUE);
    await ch.deleteQueue(dlqName(QUEUE));
    await ch.deleteExchange(EX);
  });
  await admin.close();
});

describe('RabbitConnection recovery', () => {
  it('reconnects after forced closes; publishing and consuming resume and nothing is lost', async () => {
    const opts = {
      url: cfg.rabbitmq.url,
      logger: log,
      initialDelayMs: 100,
      maxDelayMs: 1000,
      maxInitialAttempts: 20,
      setup: declare,
    };
    const pubConn = new RabbitConnection({ ...opts, name: `${NAME}-pub` });
    const conConn = new RabbitConnection({ ...opts, name: `${NAME}-con` });
    toClose.push(conConn, pubConn);
    const pubStates = track(pubConn);
    const conStates = track(conConn);
    const publisher = new ConfirmPublisher(pubConn, { logger: log, confirmTimeoutMs: 10_000, channelWaitMs: 30_000 });
    toClose.unshift(publisher);

    const received = new Map<string, number>();
    const consumer = consumeJson(conConn, QUEUE, { prefetch: 20, logger: log }, async (ctx) => {
      await sleep(1); // keep deliveries in flight so the cut catches some un-acked
      const id = ctx.msg.properties.messageId as string;
      received.set(id, (received.get(id) ?? 0) + 1);
    });
    toClose.unshift({ close: () => consumer.cancel() });
    await Promise.all([pubConn.start(), conConn.start()]);
    await consumer.ready();

    const WINDOW = 20;
    let rejected = 0;
    const failureReasons = new Set<string>();
    // The dataflow's pattern: keep a window of publishes in flight; a rejected one is retried (same id) until confirmed.
    const publishUntilConfirmed = async (i: number): Promise<void> => {
      for (;;) {
        try {
          await publisher.publishJson(EX, `k.${i % 5}`, { i }, { messageId: `msg-${i}`, correlationId: `c-${i}` });
          return;
        } catch (err) {
          if (!(err instanceof PublishError)) throw err;
          rejected++;
          failureReasons.add(err.reason);
          await sleep(50);
        }
      }
    };
    // Publish continuously (about 100 msg/s) until both cuts are done and 150 more have gone out after the last.
    let cutsDone = false;
    let sent = 0;
    let sentAtLastCut = 0;
    const publishing = (async () => {
      const inFlight = new Set<Promise<void>>();
      while (!cutsDone || sent < sentAtLastCut + 150) {
        const p = publishUntilConfirmed(sent++);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= WINDOW) await Promise.race(inFlight);
        await sleep(10);
      }
      await Promise.all(inFlight);
    })();

    let kills = 0;
    const bothConnected = () => pubConn.state === 'connected' && conConn.state === 'connected';
    for (const atLeast of [100, 250]) {
      while (received.size < atLeast || !bothConnected()) await sleep(20);
      // The management API lists a fresh connection a few seconds late; this waits for both to show, then cuts.
      kills += await mgmt.closeConnectionsNamed(NAME, 2);
      sentAtLastCut = sent;
    }
    cutsDone = true;
    await publishing;
    const N = sent;
    expect(sent - sentAtLastCut).toBeGreaterThanOrEqual(150);

    const deadline = Date.now() + 60_000;
    while (received.size < N && Date.now() < deadline) await sleep(100);

    const missing = Array.from({ length: N }, (_, i) => `msg-${i}`).filter((id) => !received.has(id));
    expect(missing).toEqual([]);
    expect(kills).toBeGreaterThanOrEqual(4); // two connections, cut twice
    // Both connections went through reconnecting → connected at least twice.
    expect(pubStates.filter((s) => s === 'reconnecting').length).toBeGreaterThanOrEqual(2);
    expect(conStates.filter((s) => s === 'reconnecting').length).toBeGreaterThanOrEqual(2);
    await sleep(500);
    expect(bothConnected()).toBe(true);
    expect(publisher.ready).toBe(true);
    expect(consumer.active).toBe(true);
    // Rejections are only ever "not confirmed" kinds, never silent; duplicates (redeliveries) are allowed.
    for (const r of failureReasons) expect(['channel-closed', 'unavailable', 'timeout']).toContain(r);
    const duplicates = [...received.values()].filter((n) => n > 1).length;
    log.info({ rejected, duplicates, kills }, 'reconnect run');

    // After recovery the queue drains completely: everything was acked on the new channels.
    await sleep(200);
    // (checked on a channel: the management API's message counters lag by seconds)
    const depth = (q: string) => withChannel(pubConn.connection!, async (ch) => (await ch.checkQueue(q)).messageCount);
    expect(await depth(QUEUE)).toBe(0);
    expect(await depth(dlqName(QUEUE))).toBe(0);
  });

  it('gives up the initial connect after maxInitialAttempts when the broker is unreachable', async () => {
    const bad = new RabbitConnection({
      url: 'amqp://u:p@127.0.0.1:1/x',
      name: `${NAME}-bad`,
      logger: log,
      initialDelayMs: 10,
      maxDelayMs: 20,
      maxInitialAttempts: 3,
      connectTimeoutMs: 500,
    });
    const states = track(bad);
    await expect(bad.start()).rejects.toThrow(/after 3 attempts/);
    expect(states[0]).toBe('connecting');
    await bad.close();
    expect(bad.state).toBe('closed');
  });

  it('close() is graceful and final: no reconnect afterwards, publishes reject as closed', async () => {
    const rabbit = new RabbitConnection({
      url: cfg.rabbitmq.url,
      name: `${NAME}-close`,
      logger: log,
      maxInitialAttempts: 20,
    });
    const publisher = new ConfirmPublisher(rabbit, { logger: log });
    await rabbit.start();
    await publisher.close();
    await rabbit.close();
    expect(rabbit.state).toBe('closed');
    await sleep(300);
    expect(rabbit.state).toBe('closed');
    const err = await publisher
      .publishJson(EX, 'k', {}, { messageId: 'x', correlationId: 'y' })
      .catch((e: unknown) => e);
    expect((err as PublishError).reason).toBe('closed');
  });
});
