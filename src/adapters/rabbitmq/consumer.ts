import { setMaxListeners } from 'node:events';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { createLogger, withCorrelation, type Logger } from '../../logging';
import { backoffDelay } from '../../lib/backoff';
import { sleep } from '../../lib/sleep';
import { settleWithin, type RabbitConnection } from './connection';
import { deadLetter } from './dead-letter';
import { deadLetters, reasonKind } from '../../metrics';
import { ConfirmPublisher } from './publisher';
import { DELIVERY_COUNT_HEADER } from './topology';
import { AckBatcher, UNSETTLED, type AckEntry } from './ack-batcher';

/**
 * A manual-ack JSON consumer on its own channel that re-subscribes after every reconnect.
 *
 * Delivery is at-least-once: a message is acked only when its handler has finished (and, for dead-lettering,
 * only after the dead-letter copy is confirmed). Anything un-acked when a channel or connection dies is
 * redelivered by the broker, so handlers must be idempotent (the project's deterministic ids make them so).
 * Acks go out batched (`ackBatch`, ack-batcher.ts): one `multiple` ack per event-loop turn covers every
 * delivery whose handler is done, and never one whose handler is still running.
 *
 * Poison messages never loop forever: invalid JSON is dead-lettered at once with the parse error as reason; a
 * handler that throws (or calls `retry`) gets the message back up to `maxAttempts` times, with backoff, and then
 * it is dead-lettered with the last error as reason. Attempts are counted by the broker, not in this process:
 * a quorum queue stamps every delivery with `x-delivery-count` (returns so far), so the count survives consumer
 * restarts and crashes. A message that comes back `maxAttempts` times without any recorded failure (its
 * consumer crashed or lost its connection while handling it, each time) is dead-lettered before the handler
 * sees it again; the queue's own `x-delivery-limit` is the last safety net (broker-side dead-lettering,
 * `x-first-death-reason: delivery_limit`).
 *
 * Ordering: the handler is called synchronously from the delivery callback, so everything a handler does before
 * its first `await` runs in delivery order (the quant relies on this to feed bars to its strategies in order
 * while their signal publishes overlap).
 */

export interface ConsumeContext {
  msg: ConsumeMessage;
  /** The parsed JSON body. */
  body: unknown;
  /** 1 on the first delivery; the broker's `x-delivery-count` + 1 after (any consumer, any process). */
  attempt: number;
  /** The broker's redelivered flag (a previous delivery was not acked, e.g. a consumer died). */
  redelivered: boolean;
  /** A logger carrying the message's correlation_id and message_id. */
  log: Logger;
  /** Done with this message. Idempotent; a no-op after any other settle. */
  ack(): void;
  /** Confirm-publish a copy with the reason to `<queue>.dlq`, then ack the original. */
  deadLetter(reason: string): Promise<void>;
  /** Transient failure: requeue after a backoff delay, or dead-letter once `maxAttempts` is reached. */
  retry(reason: string): Promise<void>;
  /** Raw nack. requeue=false routes to the queue's DLX (without a reason header); prefer `deadLetter`. */
  nack(requeue: boolean): void;
  /** Whether the message has been settled by one of the above. */
  readonly settled: boolean;
}

/**
 * Return normally → the message is acked (unless the handler settled it itself).
 * Throw → `retry(error.message)`.
 */
export type JsonHandler = (ctx: ConsumeContext) => Promise<void> | void;

export interface ConsumeJsonOptions {
  /** Un-acked deliveries in flight on this consumer's channel. */
  prefetch: number;
  /** Used for dead-lettering. If omitted the consumer opens its own ConfirmPublisher on the same connection. */
  publisher?: ConfirmPublisher;
  logger?: Logger;
  /**
   * Deliveries before a failing message is dead-lettered with its reason. Default 5. Keep it at or below the
   * queue's `x-delivery-limit` (RABBITMQ_DELIVERY_LIMIT, default 20), or the broker dead-letters first, without
   * the reason. Counted by the broker: needs a quorum queue (a classic queue has no `x-delivery-count`).
   */
  maxAttempts?: number;
  /** Base of the requeue backoff. Default 500 ms (doubling, capped at 10 s, jittered). */
  retryDelayMs?: number;
  /**
   * Settled deliveries acknowledged by one `basic.ack` with `multiple=true` (ack-batcher.ts). Acks wait at most
   * until the next turn of the event loop, or until this many are due. Default: half the prefetch, at most 256
   * (the broker keeps delivering while acks wait). 1 = one ack per message, at once.
   */
  ackBatch?: number;
}

export interface ConsumerStats {
  /** Deliveries received (redeliveries count again). */
  delivered: number;
  acked: number;
  /** Confirmed copies written to `<queue>.dlq` (invalid JSON, ctx.deadLetter, exhausted retries). */
  deadLettered: number;
  /** Requeued for another attempt (retry / handler error / failed dead-lettering). */
  requeued: number;
}

export interface ConsumerHandle {
  readonly queue: string;
  readonly stats: Readonly<ConsumerStats>;
  /** Handlers currently running. */
  readonly inFlight: number;
  /** True while subscribed. */
  readonly active: boolean;
  /** Resolves once the consumer is subscribed (the first time). */
  ready(timeoutMs?: number): Promise<void>;
  /**
   * Graceful stop: cancel the subscription (no new deliveries), wait (bounded) for running handlers to settle
   * their messages, then close the channel (anything still un-acked is requeued by the broker).
   */
  cancel(timeoutMs?: number): Promise<void>;
}

export function consumeJson(
  rabbit: RabbitConnection,
  queue: string,
  options: ConsumeJsonOptions,
  handler: JsonHandler,
): ConsumerHandle {
  const consumer = new JsonConsumer(rabbit, queue, options, handler);
  consumer.register();
  return consumer;
}

interface Sub {
  ch: Channel;
  conn: ChannelModel;
  open: boolean;
  consumerTag?: string;
  /** This channel's acks (delivery tags are per channel). */
  acks: AckBatcher;
}

class JsonConsumer implements ConsumerHandle {
  private readonly log: Logger;
  private readonly publisher: ConfirmPublisher;
  private readonly ownsPublisher: boolean;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  readonly stats: ConsumerStats = { delivered: 0, acked: 0, deadLettered: 0, requeued: 0 };
  private readonly running = new Set<Promise<void>>();
  private sub: Sub | undefined;
  private subscribing: ChannelModel | undefined;
  private stopped = false;
  private unregister: (() => void) | undefined;
  private readonly stop = new AbortController();
  private readyWaiters: Array<() => void> = [];
  private readonly scope: DeliveryScope;
  private readonly ackBatch: number;

  constructor(
    private readonly rabbit: RabbitConnection,
    readonly queue: string,
    private readonly options: ConsumeJsonOptions,
    private readonly handler: JsonHandler,
  ) {
    this.log = (options.logger ?? createLogger('rabbitmq')).child({ component: 'consumer', queue });
    this.ownsPublisher = !options.publisher;
    this.publisher = options.publisher ?? new ConfirmPublisher(rabbit, { logger: options.logger });
    this.maxAttempts = options.maxAttempts ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.ackBatch = Math.max(1, options.ackBatch ?? Math.min(256, Math.ceil(options.prefetch / 2)));
    // Every delivery backing off before its requeue listens for the stop (sleep): up to `prefetch` of them at
    // once when the broker refuses a burst of publishes. Not a leak; Node would warn beyond 10.
    setMaxListeners(0, this.stop.signal);
    this.scope = {
      log: this.log,
      publisher: this.publisher,
      queue,
      stats: this.stats,
      stopSignal: this.stop.signal,
      maxAttempts: this.maxAttempts,
      retryDelayMs: this.retryDelayMs,
    };
  }

  get inFlight(): number {
    return this.running.size;
  }

  get active(): boolean {
    return this.sub?.open === true && this.sub.consumerTag !== undefined;
  }

  register(): void {
    // Never throws: a failure to subscribe (e.g. the queue does not exist yet) is retried on this consumer's own
    // channel with backoff instead of recycling the shared connection.
    this.unregister = this.rabbit.onConnect((conn) => {
      void this.subscribeWithRetry(conn);
    });
  }

  ready(timeoutMs = 30_000): Promise<void> {
    if (this.active) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== done);
        reject(new Error(`consumer on ${this.queue} not subscribed within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      this.readyWaiters.push(done);
    });
  }

  async cancel(timeoutMs = 30_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unregister?.();
    const sub = this.sub;
    // basic.cancel goes out before the stop signal wakes handlers sleeping in a retry backoff: their requeue
    // (nack) then reaches the broker after the cancel, on the same channel, so the message goes to another
    // consumer and never back to this one while it stops.
    const cancelled =
      sub?.open && sub.consumerTag
        ? sub.ch.cancel(sub.consumerTag).catch((err: unknown) => this.log.debug({ err }, 'basic.cancel failed'))
        : undefined;
    this.stop.abort();
    await cancelled;
    await settleWithin(Promise.allSettled([...this.running]), timeoutMs);
    // Acks still waiting for their turn go out before the channel closes (closing would requeue them).
    if (sub?.open) sub.acks.flush();
    if (this.running.size > 0)
      this.log.warn(
        { in_flight: this.running.size },
        'handlers still running at cancel; their messages will be redelivered',
      );
    this.sub = undefined;
    if (sub?.open) await sub.ch.close().catch(() => undefined);
    if (this.ownsPublisher) await this.publisher.close();
  }

  private async subscribeWithRetry(conn: ChannelModel): Promise<void> {
    // One subscribe loop per connection at a time: a failed attempt closes its channel, whose close handler
    // would otherwise start a second loop and end with two subscriptions (one of which cancel() would miss).
    if (this.subscribing === conn) return;
    this.subscribing = conn;
    try {
      for (let attempt = 0; !this.stopped && this.rabbit.connection === conn; attempt++) {
        if (this.sub?.open && this.sub.conn === conn) return;
        try {
          await this.subscribe(conn);
          return;
        } catch (err) {
          const delay = backoffDelay(attempt, 200, 10_000);
          this.log.warn({ err, attempt, retry_in_ms: delay }, 'subscribe failed; retrying');
          await sleep(delay, this.stop.signal);
        }
      }
    } finally {
      if (this.subscribing === conn) this.subscribing = undefined;
    }
  }

  private async subscribe(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel();
    const { stats, log } = this;
    const acks = new AckBatcher(
      ch,
      this.ackBatch,
      (n) => (stats.acked += n),
      (err) => log.debug({ err }, 'ack failed (channel closing); unacked messages will be redelivered'),
    );
    const sub: Sub = { ch, conn, open: true, acks };
    ch.on('error', (err: Error) => this.log.warn({ err }, 'consumer channel error'));
    ch.on('close', () => {
      sub.open = false;
      acks.close();
      if (this.sub === sub) this.sub = undefined;
      // Channel-only closure (connection alive): re-subscribe here. Connection loss: RabbitConnection calls us again.
      // Checked on the next turn: when the whole connection dies, its channels close just before it does.
      setImmediate(() => {
        if (!this.stopped && this.rabbit.connection === conn) void this.subscribeWithRetry(conn);
      });
    });
    try {
      await ch.prefetch(this.options.prefetch);
      this.sub = sub;
      const { consumerTag } = await ch.consume(this.queue, (m) => this.onDelivery(sub, m), { noAck: false });
      sub.consumerTag = consumerTag;
    } catch (err) {
      if (this.sub === sub) this.sub = undefined;
      if (sub.open) await ch.close().catch(() => undefined);
      throw err;
    }
    if (this.stopped) {
      await ch.close().catch(() => undefined);
      return;
    }
    this.log.info({ prefetch: this.options.prefetch }, 'consuming');
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w();
  }

  private onDelivery(sub: Sub, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled us (queue deleted). Close the channel; its close handler re-subscribes with backoff.
      this.log.warn('consumer cancelled by the broker; re-subscribing');
      sub.ch.close().catch(() => undefined);
      return;
    }
    this.stats.delivered++;
    const p = this.handle(sub, msg);
    if (p === undefined) return; // handled and settled synchronously: nothing to wait for at cancel()
    this.running.add(p);
    p.then(
      () => this.running.delete(p),
      () => this.running.delete(p),
    );
  }

  /** Undefined when the handler returned synchronously and the delivery is already settled. */
  private handle(sub: Sub, msg: ConsumeMessage): Promise<void> | undefined {
    const d = new Delivery(this.scope, sub, msg);
    try {
      d.body = JSON.parse(msg.content.toString('utf8'));
    } catch (err) {
      return d.deadLetter(`invalid JSON: ${(err as Error).message}`);
    }
    if (d.attempt > this.maxAttempts) {
      // Every earlier delivery ended without a settle: the consumer holding it died or lost its connection
      // (a handler failure would have been counted and dead-lettered at maxAttempts). Likely a message that
      // crashes its consumer: do not hand it to the handler again.
      return d.deadLetter(
        `delivered ${d.attempt} times without being settled: each consumer holding it crashed or lost its ` +
          `connection (poison message?)`,
      );
    }
    let result: Promise<void> | void;
    try {
      // Synchronous call: the handler's code up to its first await runs in delivery order.
      result = this.handler(d);
    } catch (err) {
      return d.retry(errorMessage(err));
    }
    if (typeof (result as PromiseLike<void> | undefined)?.then !== 'function') {
      // A synchronous handler (the market-data consumers) is done when it returns: ack in this turn, without a
      // promise and two callbacks per message (bench:ingest).
      if (!d.settled) d.ack();
      return undefined;
    }
    return Promise.resolve(result).then(
      () => {
        if (!d.settled) d.ack();
      },
      (err: unknown) => d.retry(errorMessage(err)),
    );
  }
}

/** What a delivery needs of its consumer. */
interface DeliveryScope {
  log: Logger;
  publisher: ConfirmPublisher;
  queue: string;
  stats: ConsumerStats;
  stopSignal: AbortSignal;
  maxAttempts: number;
  retryDelayMs: number;
}

/**
 * One delivery and the ways to settle it: the handler's ConsumeContext. A class (methods on the prototype) rather
 * than a record of closures per message: on the market-data path the closures, each named at run time under tsx,
 * cost more than the rest of the consumer's bookkeeping (bench:ingest). Settling is once only: the first of ack,
 * nack, dead-letter or retry wins; the others are no-ops.
 */
class Delivery implements ConsumeContext, AckEntry {
  body: unknown = undefined;
  ackState = UNSETTLED;
  readonly attempt: number;
  readonly redelivered: boolean;
  private isSettled = false;
  /**
   * The per-message logger (a pino child carrying correlation and message ids), built on first use: most
   * deliveries are acked without a log line, and building a child costs more than the rest of the consumer's
   * own bookkeeping on the market-data path (bench:ingest).
   */
  private childLog: Logger | undefined;

  constructor(
    private readonly scope: DeliveryScope,
    private readonly sub: Sub,
    readonly msg: ConsumeMessage,
  ) {
    this.attempt = deliveryCount(msg) + 1;
    this.redelivered = msg.fields.redelivered;
    sub.acks.track(this);
  }

  get log(): Logger {
    return (this.childLog ??= withCorrelation(this.scope.log, this.msg.properties.correlationId as string | undefined, {
      message_id: this.msg.properties.messageId as string | undefined,
    }));
  }

  get settled(): boolean {
    return this.isSettled;
  }

  /** Settle once, on the channel the message came on. */
  private settle(what: 'ack' | 'nack', requeue: boolean): void {
    if (this.isSettled) return;
    this.isSettled = true;
    if (!this.sub.open) {
      // Delivery tags are per channel: never settle on a different channel. The broker redelivers it.
      this.log.debug({ what }, 'channel closed before settle; message will be redelivered');
      return;
    }
    // Counted in stats when the ack is written (AckBatcher's onSent); a nack is written at once.
    if (what === 'ack') this.sub.acks.ack(this);
    else {
      this.sub.acks.nack(this, requeue);
      if (requeue) this.scope.stats.requeued++;
    }
  }

  ack(): void {
    this.settle('ack', false);
  }

  nack(requeue: boolean): void {
    this.settle('nack', requeue);
  }

  async deadLetter(reason: string): Promise<void> {
    if (this.isSettled) return;
    const { scope } = this;
    try {
      await deadLetter(scope.publisher, scope.queue, this.msg, reason);
    } catch (err) {
      // Could not store the copy with its reason. Do not ack (that would lose it) and do not nack without
      // requeue (if the DLQ is unroutable the broker would drop it). Requeue after a pause and try again.
      this.log.error({ err, reason }, 'dead-lettering failed; requeueing the message');
      await sleep(backoffDelay(this.attempt, scope.retryDelayMs, 10_000), scope.stopSignal);
      this.nack(true);
      return;
    }
    this.log.warn({ reason, routing_key: this.msg.fields.routingKey }, 'message dead-lettered');
    scope.stats.deadLettered++;
    deadLetters.inc({ queue: scope.queue, reason: reasonKind(reason) });
    this.ack();
  }

  async retry(reason: string): Promise<void> {
    if (this.isSettled) return;
    if (this.attempt >= this.scope.maxAttempts) {
      await this.deadLetter(`failed after ${this.attempt} attempts: ${reason}`);
      return;
    }
    const delay = backoffDelay(this.attempt - 1, this.scope.retryDelayMs, 10_000);
    this.log.warn({ reason, attempt: this.attempt, retry_in_ms: delay }, 'handler failed; requeueing');
    await sleep(delay, this.scope.stopSignal);
    this.nack(true);
  }
}

/** Returns of this message before this delivery, as the quorum queue counts them (0 when absent). */
export function deliveryCount(msg: ConsumeMessage): number {
  const v = (msg.properties.headers as Record<string, unknown> | undefined)?.[DELIVERY_COUNT_HEADER];
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : 0;
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
